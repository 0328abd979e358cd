"""One coordination.k8s.io Lease per target cluster, so two restores never work on the same target at once.

The holder is the AuroraRestore's namespace/name/uid. A Lease whose holder no longer exists or has finished is
taken over, so a deleted or crashed restore never blocks its target forever. Releasing clears the holder and
keeps the Lease (one small object per target ever restored), so every hand-over is one optimistic update. A
drill's target is a cluster named after its own UID that no later restore will ask for: its Lease is deleted on
release instead (`delete_on_release`), or one Lease per drill ever run would stay.
"""

import hashlib
import re
from datetime import datetime, timezone
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..api.phase import TERMINAL_PHASES
from .resources import AuroraRestores


def lease_name(region: str, cluster_identifier: str) -> str:
    """A valid, readable Lease name for a target; long identifiers get a hash suffix to stay unique."""
    readable = re.sub(r"[^a-z0-9-]", "-", f"aurora-restore-{region}-{cluster_identifier}".lower())
    if len(readable) <= 63:
        return readable
    digest = hashlib.sha256(readable.encode()).hexdigest()[:10]
    return f"{readable[:52].rstrip('-')}-{digest}"


class TargetLease:
    """The lock for one target cluster, held on behalf of one AuroraRestore."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        region: str,
        cluster_identifier: str,
        holder: str,
        restores: AuroraRestores,
        delete_on_release: bool = False,
    ):
        self.api = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = lease_name(region, cluster_identifier)
        self.holder = holder
        self.restores = restores
        self.delete_on_release = delete_on_release

    def acquire(self) -> str | None:
        """Take the Lease; None when this restore holds it, else the "namespace/name" of the restore holding it."""
        now = datetime.now(timezone.utc)
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(
                    name=self.name, labels={"app.kubernetes.io/managed-by": "aurora-restore-operator"}
                ),
                spec=client.V1LeaseSpec(holder_identity=self.holder, acquire_time=now, renew_time=now),
            )
            try:
                self.api.create_namespaced_lease(self.namespace, body)
                return None
            except ApiException as create_error:
                if create_error.status == 409:
                    return "another restore (just now)"
                raise
        current = lease.spec.holder_identity
        if current == self.holder:
            return None
        if current and self._holder_active(current):
            return current.rsplit("/", 1)[0]
        lease.spec.holder_identity = self.holder
        lease.spec.acquire_time = now
        lease.spec.renew_time = now
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, lease)  # resourceVersion guards races
            return None
        except ApiException as error:
            if error.status == 409:
                return "another restore (just now)"
            raise

    def release(self) -> None:
        """Give the Lease up if this restore holds it: clear the holder, or (delete_on_release) delete the Lease;
        either only in the version read (resourceVersion guards races: one taken over meanwhile stays)."""
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.holder:
                return
            if self.delete_on_release:
                self.api.delete_namespaced_lease(self.name, self.namespace, body=client.V1DeleteOptions(
                    preconditions=client.V1Preconditions(
                        uid=lease.metadata.uid, resource_version=lease.metadata.resource_version)))
                return
            lease.spec.holder_identity = None
            lease.spec.renew_time = datetime.now(timezone.utc)
            self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def _holder_active(self, holder: str) -> bool:
        """True while the holding AuroraRestore still exists (same UID) and has not finished."""
        try:
            namespace, name, uid = holder.split("/")
        except ValueError:
            return False
        other: dict[str, Any] | None = self.restores.get(namespace, name)
        if other is None or other["metadata"].get("uid") != uid:
            return False
        return (other.get("status") or {}).get("phase") not in TERMINAL_PHASES
