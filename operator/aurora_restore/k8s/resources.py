"""Reading the operator's custom resources and writing their status through the Kubernetes API."""

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..api import GROUP, PLURAL, VERSION


class StatusConflict(Exception):
    """The object changed since it was read: a status computed from that read must not be written."""


class CustomResources:
    """The objects of one of the operator's namespaced kinds (`plural`), as plain dicts."""

    plural = PLURAL

    def __init__(self, api_client: client.ApiClient):
        self.api = client.CustomObjectsApi(api_client)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, self.plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (absent keys are left alone, None values remove keys), only if the
        object is still at `resource_version`, the version the status was computed from: a stale writer (a
        replica that lost its lease, a turn that read before another wrote) gets StatusConflict instead of
        overwriting newer records. None writes unconditionally (only for objects nobody else writes)."""
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            return self.api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, self.plural, name, body)
        except ApiException as error:
            if error.status == 409:
                raise StatusConflict(f"{namespace}/{name} changed since resourceVersion {resource_version}") from None
            raise


class AuroraRestores(CustomResources):
    """The AuroraRestore objects of the cluster, as plain dicts."""

    def delete(self, namespace: str, name: str, uid: str) -> None:
        """Delete the AuroraRestore (spec.ttlSecondsAfterFinished), only the one with `uid`: a new restore created
        under the same name meanwhile is not touched. Gone already: nothing to do."""
        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                     body=client.V1DeleteOptions(
                                                         preconditions=client.V1Preconditions(uid=uid)))
        except ApiException as error:
            if error.status not in (404, 409):
                raise
