"""Cluster snapshots shared by another account, used by their ARN as AWS allows.

An account can share a manual cluster snapshot (ModifyDBClusterSnapshotAttribute, attribute
"restore"); the accounts it names can then describe, restore and copy it by its ARN, in the
snapshot's region. moto lists such snapshots (SnapshotType="shared") but looks every
identifier up in the caller's own account, so the ARN is "not found". These hooks find the
snapshot in the sharing account and let moto's own restore and copy code use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from moto.core.responses import ActionResult
from moto.rds.exceptions import DBClusterSnapshotNotFoundError
from moto.rds.models import DBClusterSnapshot, RDSBackend, rds_backends

from . import rulebook
from .arns import RdsArn
from .rds_hooks import Proceed, RdsHooks, RdsRequest

# Action -> the parameter that may hold the ARN of a shared snapshot.
SHARED_SNAPSHOT_PARAMETERS = {
    "describe_db_cluster_snapshots": "DBClusterSnapshotIdentifier",
    "restore_db_cluster_from_snapshot": "SnapshotIdentifier",
    "copy_db_cluster_snapshot": "SourceDBClusterSnapshotIdentifier",
}


def register(hooks: RdsHooks) -> None:
    for action, parameter in SHARED_SNAPSHOT_PARAMETERS.items():
        hooks.around(action, _using_shared_snapshot(parameter))
    hooks.around("describe_db_cluster_snapshots", include_shared)


def include_shared(request: RdsRequest, proceed: Proceed) -> ActionResult:
    """Rulebook `describe-snapshots-shared`: without SnapshotType, IncludeShared adds the snapshots other
    accounts shared with the caller (moto listed them only for SnapshotType="shared"), of the cluster asked for."""
    result = proceed()
    include = rulebook.includes_shared(request.params.get("SnapshotType"), _true(request.params.get("IncludeShared")))
    if request.params.get("SnapshotType") or not include or request.params.get("DBClusterSnapshotIdentifier"):
        return result  # moto lists SnapshotType="shared" itself
    cluster = request.params.get("DBClusterIdentifier")
    shared = [
        snapshot
        for snapshot in request.backend.get_shared_db_cluster_snapshots()
        if cluster is None or snapshot.db_cluster_identifier == cluster
    ]
    listed = list(result.result.get("DBClusterSnapshots") or [])
    return ActionResult({**result.result, "DBClusterSnapshots": listed + shared})


def _true(value: object) -> bool:
    return value is True or str(value).lower() == "true"


def find_cluster_snapshot(request: RdsRequest, identifier: str) -> DBClusterSnapshot | None:
    """The snapshot an identifier or ARN names for this caller, or None.

    Own snapshots by identifier or ARN (of any region, as moto resolves them), and snapshots
    of other accounts shared with the caller, by ARN.
    """
    arn = RdsArn.parse(identifier)
    if arn is not None and arn.account != request.account:
        return shared_snapshot(arn, request.account, request.region)
    try:
        return request.backend.get_db_cluster_snapshot(identifier)
    except (DBClusterSnapshotNotFoundError, KeyError):  # KeyError: an ARN's unknown region
        return None


def shared_snapshot(arn: RdsArn, account: str, region: str) -> DBClusterSnapshot | None:
    """The snapshot `arn` names if its owner shared it with `account` (or with "all") and
    it is in `region`; AWS only uses shared snapshots in their own region."""
    if arn.resource_type != "cluster-snapshot" or arn.region != region:
        return None
    owner_regions = dict.get(rds_backends, arn.account)  # never create an account's backends
    owner = dict.get(owner_regions, arn.region) if owner_regions is not None else None
    snapshot = owner.cluster_snapshots.get(arn.name) if owner is not None else None
    if snapshot is None:
        return None
    shared_with = snapshot.attributes.get("restore", [])
    return snapshot if account in shared_with or "all" in shared_with else None


def _using_shared_snapshot(parameter: str):
    def use_shared_snapshot(request: RdsRequest, proceed: Proceed) -> ActionResult:
        identifier = request.params.get(parameter)
        arn = RdsArn.parse(identifier) if isinstance(identifier, str) else None
        if arn is None or arn.account == request.account:
            return proceed()
        snapshot = shared_snapshot(arn, request.account, request.region)
        if snapshot is None:
            raise DBClusterSnapshotNotFoundError(identifier)
        if request.action == "describe_db_cluster_snapshots":
            return ActionResult({"DBClusterSnapshots": [snapshot]})
        with _found_by_moto(request.backend, snapshot):
            return proceed()

    return use_shared_snapshot


@contextlib.contextmanager
def _found_by_moto(backend: RDSBackend, snapshot: DBClusterSnapshot) -> Iterator[None]:
    """Make moto's snapshot lookups in `backend` return `snapshot` for one call.

    moto's restore looks the snapshot up with describe_db_cluster_snapshots, its copy with
    get_db_cluster_snapshot; instance attributes shadow both methods. RDS requests run one at
    a time (see middleware), so no other request sees the shadowing.
    """
    backend.get_db_cluster_snapshot = lambda _identifier: snapshot
    backend.describe_db_cluster_snapshots = lambda *_args, **_kwargs: [snapshot]
    try:
        yield
    finally:
        del backend.get_db_cluster_snapshot
        del backend.describe_db_cluster_snapshots
