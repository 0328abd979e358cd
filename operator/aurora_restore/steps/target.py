"""ReplacingTarget: make sure the target identifier is free, replacing an existing cluster only when told to."""

from ..api.models import ReplacedClusterStatus
from ..api.phase import Phase
from ..errors import TerminalError
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait

DELETING = "deleting"


def replace_target(ctx: RestoreContext) -> Outcome:
    """Free the target identifier, or refuse.

    Runs after the snapshot is ready, so nothing is deleted before the restore can start. With policy Fail an
    existing cluster fails the restore and nothing changes. With policy Replace: DeleteDBInstance for each of its
    instances, then DeleteDBCluster with a final snapshot (unless finalSnapshot is false), waiting until it is
    gone. Next: RestoringCluster.
    """
    identifier = ctx.spec.target.cluster_identifier
    region = ctx.spec.target_region
    cluster = ctx.target_rds.describe_cluster(identifier)
    if cluster is None:
        message = (
            f"existing cluster {identifier} deleted" if ctx.status.replaced_cluster else "target identifier is free"
        )
        return Advance(Phase.RESTORING_CLUSTER, message)
    if ctx.owns(cluster):  # this restore already started the restore before a restart
        return Advance(Phase.RESTORING_CLUSTER, f"cluster {identifier} was restored by this restore earlier")

    policy = ctx.spec.existing_target
    if policy.policy == "Fail":
        raise TerminalError(
            "TargetExists",
            f"target cluster {identifier!r} already exists in {region}; nothing was changed. Set "
            f"spec.existingTarget.policy to Replace to replace it, or choose another spec.target.clusterIdentifier",
        )
    if cluster.get("DeletionProtection") and cluster.get("Status") != DELETING:
        raise TerminalError(
            "TargetDeletionProtected",
            f"target cluster {identifier!r} in {region} has deletion protection enabled; turn it off to replace it",
        )

    record = ctx.status.replaced_cluster or ReplacedClusterStatus(
        identifier=identifier,
        arn=cluster.get("DBClusterArn"),
        final_snapshot_identifier=ctx.final_snapshot_identifier if policy.final_snapshot else None,
    )
    if cluster.get("Status") == DELETING:
        return Wait(f"waiting for existing cluster {identifier} to be deleted", updates={"replaced_cluster": record})

    instances = ctx.target_rds.list_cluster_instances(identifier)
    live = [i["DBInstanceIdentifier"] for i in instances if i.get("DBInstanceStatus") != DELETING]
    if live:
        for instance in live:
            ctx.target_rds.delete_instance(instance)
        deleted = sorted(set(record.deleted_instances) | set(live))
        record = record.model_copy(update={"deleted_instances": deleted})
        return Wait(
            f"deleting instances {', '.join(live)} of existing cluster {identifier}",
            updates={"replaced_cluster": record},
        )
    if instances:
        return Wait(
            f"waiting for {len(instances)} instance(s) of existing cluster {identifier} to be deleted",
            updates={"replaced_cluster": record},
        )

    ctx.target_rds.delete_cluster(identifier, record.final_snapshot_identifier)
    detail = f" after final snapshot {record.final_snapshot_identifier}" if record.final_snapshot_identifier else ""
    return Wait(f"deleting existing cluster {identifier}{detail}", updates={"replaced_cluster": record})
