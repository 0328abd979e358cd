"""Tearing a cluster down: instances first (AWS refuses to delete a cluster that has any), then the cluster.

Serves RetiringPrevious (the replaced cluster, with a final snapshot, keeping its automated backups), cleanup
after a failure or a cancel (the temporary cluster) and deletionPolicy Delete (the restored cluster, when the
AuroraRestore is deleted).
"""

from dataclasses import dataclass, field
from typing import Any

from ..aws.rds import AVAILABLE, FAILED_STATUSES, RdsGateway
from ..errors import TerminalError
from .context import RestoreContext

DELETING = "deleting"
DELETION_PROTECTED = "DeletionProtected"


@dataclass(frozen=True)
class TearDownPass:
    """What one pass did: the instances whose deletion it started, and what is being waited for now."""

    message: str
    deleted_instances: list[str] = field(default_factory=list)


def tear_down_cluster(
    rds: RdsGateway,
    cluster: dict[str, Any],
    final_snapshot_identifier: str | None,
    label: str = "cluster",
    keep_automated_backups: bool = False,
    instances: list[dict[str, Any]] | None = None,
) -> TearDownPass:
    """One pass of deleting `cluster` and its instances; the caller sees it is done when the cluster is gone.

    Re-running a pass is harmless: instances and clusters already `deleting` are only waited for. A cluster with
    deletion protection on is not touched at all (DeletionProtected): AWS would refuse DeleteDBCluster only after
    its instances were gone, and the operator never turns protection off, since someone turned it on to keep it.
    """
    identifier = cluster["DBClusterIdentifier"]
    status = cluster.get("Status")
    if status == DELETING:
        return TearDownPass(f"waiting for {label} {identifier} to be deleted")
    if cluster.get("DeletionProtection"):
        raise protected(label, identifier)
    if status != AVAILABLE and status not in FAILED_STATUSES:
        # renaming, creating, backing-up (also the final snapshot of a delete already sent)...: AWS refuses
        # DeleteDBCluster until it settles, so look again rather than ask.
        return TearDownPass(f"waiting for {label} {identifier} ({status}) to settle before deleting it")
    if instances is None:  # else the caller listed them in this pass
        instances = rds.list_cluster_instances(identifier)
    live = [i["DBInstanceIdentifier"] for i in instances if i.get("DBInstanceStatus") != DELETING]
    for instance in live:
        rds.delete_instance(instance)
    if live:
        return TearDownPass(f"deleting instances {', '.join(live)} of {label} {identifier}", live)
    if instances:
        return TearDownPass(f"waiting for {len(instances)} instance(s) of {label} {identifier} to be deleted")
    try:
        rds.delete_cluster(identifier, final_snapshot_identifier, keep_automated_backups=keep_automated_backups)
    except TerminalError as error:
        # Protection turned on after this pass's describe: AWS refuses (InvalidParameterCombination, "Cannot
        # delete protected Cluster"); said the same way as when the describe showed it.
        now = rds.describe_cluster(identifier) if error.reason == "InvalidParameterCombination" else None
        if now is not None and now.get("DeletionProtection"):
            raise protected(label, identifier) from None
        raise
    detail = f" after final snapshot {final_snapshot_identifier}" if final_snapshot_identifier else ""
    return TearDownPass(f"deleting {label} {identifier}{detail}")


def protected(label: str, identifier: str) -> TerminalError:
    return TerminalError(DELETION_PROTECTED, f"{label} {identifier!r} has deletion protection on, so it is left as "
                         f"it is; turn it off (ModifyDBCluster DeletionProtection false) to let the operator delete "
                         f"it, or delete it yourself")


def delete_restored_cluster(ctx: RestoreContext) -> str | None:
    """deletionPolicy Delete: one pass; None once the restored cluster is gone, else what is waited for.

    Only a cluster tagged with this restore's UID is touched: a cluster of the same name created by anyone
    else is left alone. No final snapshot: the user asked for it to be deleted.
    """
    cluster = ctx.target.rds.describe_cluster(ctx.target_identifier)
    if cluster is None or not ctx.owns(cluster):
        return None
    return tear_down_cluster(ctx.target.rds, cluster, final_snapshot_identifier=None).message
