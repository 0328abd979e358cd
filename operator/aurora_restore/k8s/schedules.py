"""AuroraRestoreSchedules and their runs (AuroraRestores labelled with the schedule) through the Kubernetes API."""

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..api import GROUP, PLURAL, VERSION
from ..api.schedule import SCHEDULE_LABEL, SCHEDULE_PLURAL
from .resources import CustomResources


def api_status(error: ApiException) -> dict[str, Any]:
    """The apiserver's Status object of a refusal (reason AlreadyExists, Conflict, Forbidden..., its message), or
    {} when the body is not one."""
    try:
        status = json.loads(error.body or "{}")
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


class AuroraRestoreSchedules(CustomResources):
    """The AuroraRestoreSchedule objects, as plain dicts."""

    plural = SCHEDULE_PLURAL


class ScheduleRuns(CustomResources):
    """The AuroraRestores a schedule created: listed by its label, created under a deterministic name."""

    def list(self, namespace: str, schedule: str) -> list[dict[str, Any]]:
        return self.api.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, label_selector=f"{SCHEDULE_LABEL}={schedule}")["items"]

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The created run, or None when one of that name exists already (an earlier turn made it, or another
        object took the name: the caller looks at its owner). Other refusals (another 409, 403) are raised."""
        try:
            return self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        except ApiException as error:
            if error.status == 409 and api_status(error).get("reason") == "AlreadyExists":
                return None
            raise

    def delete(self, namespace: str, name: str) -> None:
        """Delete a run (its finalizer makes the operator cancel it or apply its deletionPolicy); gone is fine."""
        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status != 404:
                raise
