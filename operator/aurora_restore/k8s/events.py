"""Kubernetes Events for phase transitions: what `kubectl describe ar` and `kubectl get events` show."""

import logging
from datetime import datetime, timezone
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..api import GROUP, KIND, VERSION

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 1024


class EventRecorder:
    """Posts core/v1 Events about AuroraRestores (and schedules); a failure to post is logged, never fatal."""

    def __init__(self, api_client: client.ApiClient, component: str):
        self.api = client.CoreV1Api(api_client)
        self.component = component

    def record(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        metadata = obj["metadata"]
        now = datetime.now(timezone.utc)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{metadata['name']}.", namespace=metadata["namespace"]),
            involved_object=client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind=obj.get("kind") or KIND,  # AuroraRestore, or AuroraRestoreSchedule
                name=metadata["name"],
                namespace=metadata["namespace"],
                uid=metadata["uid"],
            ),
            reason=reason,
            message=message[:MESSAGE_LIMIT],
            type=event_type,
            source=client.V1EventSource(component=self.component),
            reporting_component=self.component,
            reporting_instance=self.component,
            first_timestamp=now,
            last_timestamp=now,
            event_time=None,
            count=1,
        )
        try:
            self.api.create_namespaced_event(metadata["namespace"], event)
        except ApiException as error:
            log.warning("could not post event %s for %s: %s", reason, metadata["name"], error.reason)
