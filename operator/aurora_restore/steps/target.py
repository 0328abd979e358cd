"""ReplacingTarget: make sure the target identifier is free, replacing an existing cluster only when told to."""

from ..api.models import ReplacedClusterStatus
from ..api.phase import Phase
from ..errors import TerminalError
from .context import RestoreContext
from .deletion import DELETING, tear_down_cluster
from .outcomes import Advance, Outcome, Wait


def target_exists_message(identifier: str, region: str) -> str:
    """Why policy Fail refuses, and what to do (Preflight reports it first; this step again if it appears later)."""
    return (
        f"target cluster {identifier!r} already exists in {region}; nothing was changed. Set "
        f"spec.existingTarget.policy to Replace to replace it, or choose another spec.target.clusterIdentifier"
    )


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
        raise TerminalError("TargetExists", target_exists_message(identifier, region))
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
    teardown = tear_down_cluster(ctx.target_rds, cluster, record.final_snapshot_identifier, "existing cluster")
    if teardown.deleted_instances:
        deleted = sorted(set(record.deleted_instances) | set(teardown.deleted_instances))
        record = record.model_copy(update={"deleted_instances": deleted})
    return Wait(teardown.message, updates={"replaced_cluster": record})
