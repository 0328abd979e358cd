"""AuroraRestoreSchedules and their runs (AuroraRestores labelled with the schedule) through the Kubernetes API."""

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..api import GROUP, PLURAL, VERSION
from ..api.schedule import SCHEDULE_LABEL, SCHEDULE_PLURAL
from .resources import StatusConflict


def _reason(error: ApiException) -> str | None:
    """The reason of the apiserver's Status (AlreadyExists, Conflict, Forbidden...)."""
    try:
        return (json.loads(error.body or "{}") or {}).get("reason")
    except (ValueError, AttributeError):
        return None


class AuroraRestoreSchedules:
    """The AuroraRestoreSchedule objects, as plain dicts."""

    def __init__(self, api_client: client.ApiClient):
        self.api = client.CustomObjectsApi(api_client)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, SCHEDULE_PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any], resource_version: str) -> dict[str, Any]:
        """Merge-patch the status, only if the schedule is still at `resource_version` (else StatusConflict): a
        turn computed from an older read must not overwrite a newer one."""
        body = {"status": status, "metadata": {"resourceVersion": resource_version}}
        try:
            return self.api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, SCHEDULE_PLURAL, name, body)
        except ApiException as error:
            if error.status == 409:
                raise StatusConflict(f"{namespace}/{name} changed since resourceVersion {resource_version}") from None
            raise


class ScheduleRuns:
    """The AuroraRestores a schedule created: listed by its label, created under a deterministic name."""

    def __init__(self, api_client: client.ApiClient):
        self.api = client.CustomObjectsApi(api_client)

    def list(self, namespace: str, schedule: str) -> list[dict[str, Any]]:
        return self.api.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, label_selector=f"{SCHEDULE_LABEL}={schedule}")["items"]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The created run, or None when one of that name exists already (an earlier turn made it, or another
        object took the name: the caller looks at its owner). Other refusals (another 409, 403) are raised."""
        try:
            return self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        except ApiException as error:
            if error.status == 409 and _reason(error) == "AlreadyExists":
                return None
            raise

    def delete(self, namespace: str, name: str) -> None:
        """Delete a run (its finalizer makes the operator cancel it or apply its deletionPolicy); gone is fine."""
        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status != 404:
                raise
