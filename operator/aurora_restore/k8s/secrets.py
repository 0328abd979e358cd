"""Kubernetes Secrets: reading password keys the user points at, writing connection Secrets atomically."""

import base64
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..api import GROUP, KIND, VERSION
from ..errors import TerminalError

MANAGED_BY = {"app.kubernetes.io/managed-by": "aurora-restore-operator"}


class SecretKeyMissing(TerminalError):
    """The Secret exists but lacks the key, or the value is empty: waiting will not fix it."""


class Secrets:
    """Secrets of one namespace, on behalf of one AuroraRestore."""

    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.api = client.CoreV1Api(api_client)
        self.namespace = namespace

    def read_key(self, name: str, key: str, field: str) -> str | None:
        """The decoded value of `key`; None while the Secret does not exist. `field` names the spec field."""
        try:
            secret = self.api.read_namespaced_secret(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        data = secret.data or {}
        if key not in data:
            raise SecretKeyMissing(
                "SecretKeyMissing", f"{field}: Secret {self.namespace}/{name} has no key {key!r}"
            )
        try:
            value = base64.b64decode(data[key]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise SecretKeyMissing(
                "SecretMalformed", f"{field}: key {key!r} of Secret {self.namespace}/{name} is not UTF-8 text"
            ) from None
        if not value:
            raise SecretKeyMissing("SecretKeyEmpty", f"{field}: key {key!r} of Secret {self.namespace}/{name} is empty")
        return value

    def write(self, name: str, data: dict[str, str], owner: dict[str, Any] | None) -> None:
        """Create or replace the whole Secret in one request, so a crash never leaves it half-written.

        `owner` (the AuroraRestore) becomes an ownerReference only when it should be garbage-collected with it.
        """
        metadata = client.V1ObjectMeta(name=name, namespace=self.namespace, labels=dict(MANAGED_BY))
        if owner is not None:
            metadata.owner_references = [
                client.V1OwnerReference(
                    api_version=f"{GROUP}/{VERSION}",
                    kind=KIND,
                    name=owner["metadata"]["name"],
                    uid=owner["metadata"]["uid"],
                    controller=True,
                    block_owner_deletion=False,
                )
            ]
        body = client.V1Secret(metadata=metadata, type="Opaque", string_data=data)
        try:
            existing = self.api.read_namespaced_secret(name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            self.api.create_namespaced_secret(self.namespace, body)
            return
        if (existing.metadata.labels or {}).get("app.kubernetes.io/managed-by") != MANAGED_BY[
            "app.kubernetes.io/managed-by"
        ]:
            raise TerminalError(
                "SecretNotOurs",
                f"Secret {self.namespace}/{name} exists and was not written by this operator; left untouched",
            )
        metadata.resource_version = existing.metadata.resource_version
        self.api.replace_namespaced_secret(name, self.namespace, body)
