"""Job hooks' Kubernetes objects: the Job and the connection Secret made for it, in the restore's namespace.

Both carry the operator's managed-by label, the restore's UID (RESTORE_UID_LABEL) and the hook's name
(HOOK_LABEL). Their names are derived from the restore and the hook (steps/hooks.py), so the restore's cleanup
finds them by name whatever status managed to record, and an object of such a name that lacks these marks is
never touched. Objects are plain dicts in the API's camelCase.
"""

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..api import GROUP
from ..errors import TerminalError
from .secrets import MANAGED_BY, RESTORE_UID_LABEL

HOOK_LABEL = f"{GROUP}/hook"


class NotOurs(TerminalError):
    """An object of the deterministic name exists and was not made by this restore for this hook."""


def restore_labels(uid: str, hook: str) -> dict[str, str]:
    return {**MANAGED_BY, RESTORE_UID_LABEL: uid, HOOK_LABEL: hook}


def is_ours(obj: dict[str, Any], uid: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (labels.get(RESTORE_UID_LABEL) == uid and HOOK_LABEL in labels
            and all(labels.get(key) == value for key, value in MANAGED_BY.items()))


class HookJobs:
    """Jobs and their connection Secrets in one namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.api_client = api_client
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace

    def create_secret(self, body: dict[str, Any], uid: str) -> None:
        """Create the Secret; one of that name already made by this restore for a hook is taken as it is (a
        re-run after a crash); any other raises NotOurs."""
        name = body["metadata"]["name"]
        try:
            self.core.create_namespaced_secret(self.namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            existing = self._dict(self._read(self.core.read_namespaced_secret, name))
            if existing is None or not is_ours(existing, uid):
                raise NotOurs("HookResourceNotOurs", f"Secret {self.namespace}/{name} exists and was not made by "
                              "this restore for its hook; left untouched") from None

    def create_job(self, body: dict[str, Any], uid: str) -> dict[str, Any]:
        """Create the Job, or find the one this restore made already; returns it. The apiserver refusing the
        Job (a template it does not take) raises TerminalError InvalidHookJob with its words."""
        name = body["metadata"]["name"]
        try:
            return self._dict(self.batch.create_namespaced_job(self.namespace, body))
        except ApiException as error:
            if error.status in (400, 422):
                raise TerminalError("InvalidHookJob", f"the apiserver refused Job {self.namespace}/{name}: "
                                    f"{_api_message(error)}") from None
            if error.status != 409:
                raise
        existing = self.read_job(name)
        if existing is None or not is_ours(existing, uid):
            raise NotOurs("HookResourceNotOurs", f"Job {self.namespace}/{name} exists and was not made by this "
                          "restore for its hook; left untouched")
        return existing

    def read_job(self, name: str) -> dict[str, Any] | None:
        return self._dict(self._read(self.batch.read_namespaced_job, name))

    def delete_job(self, name: str, uid: str) -> None:
        """Delete the Job (its Pods go too: propagation Background), only if this restore made it."""
        job = self.read_job(name)
        if job is None or not is_ours(job, uid):
            return
        self._delete(self.batch.delete_namespaced_job, name, job)

    def delete_secret(self, name: str, uid: str) -> None:
        """Delete the Secret, only if this restore made it for a hook; gone already: nothing to do."""
        secret = self._dict(self._read(self.core.read_namespaced_secret, name))
        if secret is None or not is_ours(secret, uid):
            return
        self._delete(self.core.delete_namespaced_secret, name, secret)

    def _delete(self, delete, name: str, obj: dict[str, Any]) -> None:
        options = client.V1DeleteOptions(propagation_policy="Background",
                                         preconditions=client.V1Preconditions(uid=obj["metadata"]["uid"]))
        try:
            delete(name, self.namespace, body=options)
        except ApiException as error:
            if error.status not in (404, 409):  # gone, or replaced by another object of that name meanwhile
                raise

    def _read(self, read, name: str):
        try:
            return read(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _dict(self, obj) -> dict[str, Any] | None:
        return None if obj is None else self.api_client.sanitize_for_serialization(obj)


def _api_message(error: ApiException) -> str:
    """The apiserver's message of a refusal (its body is a Status object)."""
    try:
        return json.loads(error.body or "{}").get("message") or error.reason or str(error.status)
    except ValueError:
        return error.reason or str(error.status)
