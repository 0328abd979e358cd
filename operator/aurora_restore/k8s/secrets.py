"""Kubernetes Secrets: reading password keys the user points at, writing connection Secrets atomically.

A connection Secret belongs to the restore that wrote it last: the Secret carries that restore's UID (label
RESTORE_UID_LABEL) and name (annotation RESTORE_NAME_ANNOTATION). Who may take it over is decided by the step
(steps/publish.py); this module reads those marks and writes them, replacing only the version that was checked.
"""

import base64
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..api import GROUP, KIND, VERSION
from ..errors import RetryableError, TerminalError

MANAGED_BY = {"app.kubernetes.io/managed-by": "aurora-restore-operator"}
RESTORE_UID_LABEL = f"{GROUP}/restore-uid"  # the same key as the UID tag on AWS resources
RESTORE_NAME_ANNOTATION = f"{GROUP}/restore"  # an annotation: restore names may be longer than a label value


class SecretKeyMissing(TerminalError):
    """The Secret exists but lacks the key, or the value is empty: waiting will not fix it."""


@dataclass(frozen=True)
class SecretHolder:
    """What an existing Secret says about who wrote it; `version` (its resourceVersion) guards the write."""

    managed: bool  # carries the operator's managed-by label
    restore_uid: str | None  # the restore that wrote it; None for a Secret written before Secrets carried it
    restore_name: str | None
    version: str | None = None


@dataclass(frozen=True)
class SecretWriter:
    """The restore writing a connection Secret, as its marks name it."""

    uid: str
    name: str


def holder_from(metadata: client.V1ObjectMeta) -> SecretHolder:
    """The marks of a Secret. One written with deletionPolicy Delete before Secrets carried the UID label names
    its restore in its ownerReference, which counts the same."""
    labels = metadata.labels or {}
    annotations = metadata.annotations or {}
    uid, name = labels.get(RESTORE_UID_LABEL), annotations.get(RESTORE_NAME_ANNOTATION)
    if uid is None:
        reference = next((ref for ref in metadata.owner_references or [] if _is_restore(ref)), None)
        if reference is not None:
            uid, name = reference.uid, reference.name
    return SecretHolder(
        managed=labels.get("app.kubernetes.io/managed-by") == MANAGED_BY["app.kubernetes.io/managed-by"],
        restore_uid=uid,
        restore_name=name,
        version=metadata.resource_version,
    )


def refuse_overwrite(secret: str, found: SecretHolder, writer: SecretWriter | None,
                     checked: SecretHolder | None) -> None:
    """At write time: never a Secret the operator did not write; one another restore holds only in the version
    the caller checked (a later write by that restore means deciding again)."""
    if not found.managed:
        raise TerminalError("SecretNotOurs",
                            f"Secret {secret} exists and was not written by this operator; left untouched")
    held_elsewhere = found.restore_uid is not None and (writer is None or found.restore_uid != writer.uid)
    if held_elsewhere and (checked is None or checked.version != found.version):
        raise RetryableError("ConnectionSecretChanged", f"Secret {secret} was written by another restore meanwhile")


def _is_restore(reference: client.V1OwnerReference) -> bool:
    return reference.kind == KIND and reference.api_version.split("/")[0] == GROUP


class Secrets:
    """Secrets of one namespace, on behalf of one AuroraRestore."""

    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.api = client.CoreV1Api(api_client)
        self.namespace = namespace

    def read_key(self, name: str, key: str, field: str) -> str | None:
        """The decoded value of `key`; None while the Secret does not exist. `field` names the spec field."""
        secret = self._read(name)
        if secret is None:
            return None
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

    def holder_of(self, name: str) -> SecretHolder | None:
        """Who wrote the Secret, by its marks (its data is not looked at); None when it does not exist."""
        secret = self._read(name)
        return None if secret is None else holder_from(secret.metadata)

    def write(
        self,
        name: str,
        data: dict[str, str],
        owner: dict[str, Any] | None,
        writer: SecretWriter | None = None,
        checked: SecretHolder | None = None,
    ) -> None:
        """Create the Secret, or update it, in one request, so a crash never leaves it half-written.

        The data is replaced as a whole; labels, annotations and ownerReferences someone else added stay, and the
        writer's marks are set. A Secret another restore holds is replaced only in the very version `checked`
        (the caller read it with holder_of and decided it may take it over): one written in between raises
        RetryableError, so the caller decides again. A Secret without the operator's label is never touched.
        `owner` (the AuroraRestore) becomes an ownerReference only when it should be garbage-collected with it;
        it is the writer too when `writer` is not given.
        """
        if writer is None and owner is not None:
            writer = SecretWriter(uid=owner["metadata"]["uid"], name=owner["metadata"]["name"])
        existing = self._read(name)
        if existing is None:
            metadata = client.V1ObjectMeta(name=name, namespace=self.namespace)
        else:
            refuse_overwrite(f"{self.namespace}/{name}", holder_from(existing.metadata), writer, checked)
            metadata = existing.metadata
            metadata.managed_fields = None  # the apiserver keeps its own
        metadata.labels = {**(metadata.labels or {}), **MANAGED_BY}
        if writer is not None:
            metadata.labels[RESTORE_UID_LABEL] = writer.uid
            metadata.annotations = {**(metadata.annotations or {}), RESTORE_NAME_ANNOTATION: writer.name}
        others = [ref for ref in metadata.owner_references or [] if not _is_restore(ref)]
        if owner is not None:
            others.append(client.V1OwnerReference(
                api_version=f"{GROUP}/{VERSION}",
                kind=KIND,
                name=owner["metadata"]["name"],
                uid=owner["metadata"]["uid"],
                controller=True,
                block_owner_deletion=False,
            ))
        metadata.owner_references = others or None
        body = client.V1Secret(metadata=metadata, type=existing.type if existing else "Opaque", string_data=data)
        try:
            if existing is None:
                self.api.create_namespaced_secret(self.namespace, body)
            else:  # metadata.resourceVersion is the one read: a write in between makes this a conflict
                self.api.replace_namespaced_secret(name, self.namespace, body)
        except ApiException as error:
            if error.status == 409:
                raise RetryableError(
                    "ConnectionSecretChanged", f"Secret {self.namespace}/{name} changed while it was being written"
                ) from None
            raise

    def delete_written_by(self, name: str, uid: str) -> None:
        """Delete the Secret if the operator wrote it for the restore `uid` (its managed-by and UID labels), in the
        very version read (one rewritten meanwhile is left for the next pass); else leave it alone."""
        secret = self._read(name)
        if secret is None:
            return
        holder = holder_from(secret.metadata)
        if not holder.managed or holder.restore_uid != uid:
            return
        try:
            self.api.delete_namespaced_secret(name, self.namespace, body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(resource_version=holder.version)))
        except ApiException as error:
            if error.status == 409:
                raise RetryableError("ConnectionSecretChanged",
                                     f"Secret {self.namespace}/{name} changed while it was being deleted") from None
            if error.status != 404:
                raise

    def _read(self, name: str) -> client.V1Secret | None:
        try:
            return self.api.read_namespaced_secret(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
