"""Share grants counted in Kubernetes: one coordination.k8s.io Lease per (shared snapshot, target account).

Two restores may share one manual snapshot of another account with the same target account. The share (the
snapshot's "restore" attribute) is one thing in AWS, so the first restore's cleanup must not remove it while the
second still copies from it. The source snapshot itself is never changed to keep count (no tags on it): the
Lease's annotations hold the UIDs of the restores that need the share, whether an operator restore added it
(a share the owner made is never removed), and, while the last holder removes it, that holder's UID, so no
restore joins a share that is going away. Every change is one optimistic update (resourceVersion).
"""

import hashlib
import json
from collections.abc import Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..api import GROUP
from ..errors import RetryableError
from .resources import AuroraRestores

HOLDERS = f"{GROUP}/share-holders"
OWNED = f"{GROUP}/share-added-by-operator"
REMOVING = f"{GROUP}/share-being-removed-by"
SNAPSHOT = f"{GROUP}/shared-snapshot"


def share_lease_name(snapshot_arn: str, account_id: str) -> str:
    digest = hashlib.sha256(f"{snapshot_arn}|{account_id}".encode()).hexdigest()[:20]
    return f"aurora-restore-share-{digest}"


class ShareGrant:
    """The counting rules over a store of annotations (a Lease here; a dict in unit tests), for one share."""

    snapshot_arn: str

    def load(self) -> dict[str, str]:
        """The annotations now (empty for a share nobody counted yet)."""
        raise NotImplementedError

    def store(self, annotations: dict[str, str]) -> None:
        """Write the annotations, refusing (RetryableError) if they changed since `load`."""
        raise NotImplementedError

    def holder_alive(self, holder: str) -> bool:
        """Whether the restore `holder` ("namespace/name/uid") still exists; a deleted one no longer counts."""
        raise NotImplementedError

    def _load_live(self) -> tuple[dict[str, str], list[str]]:
        """The annotations with the holders whose restore is gone pruned (also a removal they left halfway:
        the share is then treated as still there, added by the operator)."""
        annotations = self.load()
        holders = [h for h in json.loads(annotations.get(HOLDERS, "[]")) if self.holder_alive(h)]
        if annotations.get(REMOVING) and not self.holder_alive(annotations[REMOVING]):
            annotations.pop(REMOVING)
        annotations[HOLDERS] = json.dumps(holders)
        return annotations, holders

    def join(self, holder: str, already_shared: Callable[[], bool]) -> bool:
        """Count `holder` in; returns whether an operator restore added the share (so it is removed when the
        last holder leaves). `already_shared` is asked only when there is no holder yet."""
        annotations, holders = self._load_live()
        if annotations.get(REMOVING):
            raise RetryableError("ShareBeingRemoved", "another restore is removing the share of "
                                 f"{self.snapshot_arn}; waiting to share it again")
        if holder in holders:
            return annotations.get(OWNED) == "true"
        if not holders and annotations.get(OWNED) != "true":
            # "true" with no holder left: the last one vanished before it removed the operator's share (or halfway
            # through removing it). That share is still the operator's to remove, not the owner's: not asked again.
            annotations[OWNED] = "false" if already_shared() else "true"
        annotations[HOLDERS] = json.dumps(sorted([*holders, holder]))
        self.store(annotations)
        return annotations[OWNED] == "true"

    def leave(self, holder: str, unshare: Callable[[], None], keep: bool = False) -> bool:
        """Count `holder` out; the last holder of a share an operator restore added calls `unshare` (and this
        returns True), after marking that it does, so a crash makes the next pass finish the removal. `keep`
        (copy.deleteAfterRestore false): the share is meant to stay, so nobody removes it later."""
        annotations, holders = self._load_live()
        if annotations.get(REMOVING) != holder:
            if holder not in holders:
                return False
            holders.remove(holder)
            annotations[HOLDERS] = json.dumps(holders)
            if keep:
                annotations[OWNED] = "false"
            if holders or annotations.get(OWNED) != "true":
                self.store(annotations)
                return False
            annotations[REMOVING] = holder
            self.store(annotations)
        unshare()
        annotations.pop(REMOVING, None)
        annotations[OWNED] = "false"
        self.store(annotations)
        return True


class ShareLease(ShareGrant):
    """A ShareGrant kept in a Lease of the operator's lease namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str, snapshot_arn: str, account_id: str,
                 restores: AuroraRestores):
        self.api = client.CoordinationV1Api(api_client)
        self.restores = restores
        self.namespace = namespace
        self.name = share_lease_name(snapshot_arn, account_id)
        self.snapshot_arn = snapshot_arn
        self._lease: client.V1Lease | None = None

    def load(self) -> dict[str, str]:
        try:
            self._lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            body = client.V1Lease(metadata=client.V1ObjectMeta(
                name=self.name, labels={"app.kubernetes.io/managed-by": "aurora-restore-operator"},
                annotations={SNAPSHOT: self.snapshot_arn, HOLDERS: "[]"}), spec=client.V1LeaseSpec())
            try:
                self._lease = self.api.create_namespaced_lease(self.namespace, body)
            except ApiException as create_error:
                if create_error.status == 409:
                    raise RetryableError("ShareLeaseRace", f"share lease {self.name} created concurrently") from None
                raise
        return dict(self._lease.metadata.annotations or {})

    def holder_alive(self, holder: str) -> bool:
        namespace, name, uid = (holder.split("/") + ["", "", ""])[:3]
        restore = self.restores.get(namespace, name) if namespace and name else None
        return restore is not None and restore["metadata"].get("uid") == uid

    def store(self, annotations: dict[str, str]) -> None:
        self._lease.metadata.annotations = annotations
        try:
            self._lease = self.api.replace_namespaced_lease(self.name, self.namespace, self._lease)
        except ApiException as error:
            if error.status == 409:
                raise RetryableError("ShareLeaseRace", f"share lease {self.name} changed concurrently") from None
            raise
