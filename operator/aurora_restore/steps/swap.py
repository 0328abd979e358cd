"""SwappingTarget and RetiringPrevious: the only steps that ever touch a cluster the user asked to replace.

They run after the new cluster, restored under a temporary identifier, has its instances, its access and has
passed verification. The swap is two renames (ModifyDBCluster NewDBClusterIdentifier, ApplyImmediately): the
existing target to `<target>-previous-<uid8>`, then the new cluster to the target identifier. Clients see the
target's endpoints go away during the two renames (the downtime window, docs/usage.md). Every pass observes
which renames have happened, so a restart at any instant carries on; once `swap_started_at` is recorded
spec.timeout no longer applies and a cancel finishes the swap; a swap that cannot finish (the new cluster gone
or broken, a rename refused) is rolled back by renaming the previous cluster back.

The previous cluster is recognised by its DbClusterResourceId (a rename keeps it), never by name alone, and is
deleted only here: its instances, then the cluster with a final snapshot (unless finalSnapshot is false) and
with DeleteAutomatedBackups=False, so its automated backups stay restorable.
"""

from datetime import datetime
from typing import Any

from ..api.duration import parse_duration
from ..api.models import ReplacedClusterStatus
from ..api.phase import Phase
from ..aws.rds import AVAILABLE, FAILED_STATUSES, tags_of
from ..errors import RetryableError, TerminalError
from .cluster import cluster_status
from .context import SNAPSHOT_ROLE_TAG, RestoreContext
from .deletion import DELETING, DELETION_PROTECTED, tear_down_cluster
from .outcomes import Advance, Outcome, Wait
from .policy import allowing_policy
from .rds_statuses import status_failure


def swap_target(ctx: RestoreContext) -> Outcome:
    """Rename the existing target away, wait, rename the new cluster to the target identifier, wait.

    Each pass first makes sure the new cluster is there, ours and available, so the target is never renamed
    away without its successor ready. Next: RetiringPrevious, or Publishing with keepPrevious (the previous
    cluster is then deleted when status.replacedCluster.deleteAfter has passed, after Succeeded). Fails when
    the new cluster is gone or broken, a stranger holds the target's name, or (NotAllowedByPolicy, checked
    before the first rename) no policy allows the replace any more; after the first rename the failure cleanup
    (or a cancel) renames the previous cluster back.
    """
    record = ctx.status.replaced_cluster
    target, previous, temporary = ctx.target_identifier, record.renamed_to, ctx.temporary_cluster_identifier
    rds = ctx.target.rds
    at_target = rds.describe_cluster(target)

    if at_target is not None and ctx.owns(at_target):  # the second rename was sent
        if at_target.get("Status") in FAILED_STATUSES:  # broken after the rename: waiting would never end
            raise status_failure("cluster", target, at_target["Status"],
                                 f"the operator deletes it and renames the replaced cluster {previous!r} back to "
                                 f"{target!r}", at_target.get("KmsKeyId"))
        if at_target.get("Status") != AVAILABLE:
            return Wait(f"renaming the restored cluster to {target}: {at_target.get('Status')}")
        return _swapped(ctx, record, at_target)

    restored = rds.describe_cluster(temporary)
    if restored is None or not ctx.owns(restored):
        raise TerminalError("ClusterNotFound", f"restored cluster {temporary!r} no longer exists in "
                            f"{ctx.spec.target_region}")
    if restored.get("Status") in FAILED_STATUSES:
        raise status_failure("cluster", temporary, restored["Status"],
                             f"the operator deletes the temporary cluster {temporary!r}", restored.get("KmsKeyId"))
    if restored.get("Status") != AVAILABLE:
        return Wait(f"waiting for restored cluster {temporary} ({restored.get('Status')}) to be available")

    if record.swap_started_at is None:
        # The point of no return: the policies as they are now must still allow replacing the target.
        allowing_policy(ctx, at_target, ask_aws=True)
        # Recorded before the first rename, so that a timeout or a cancel seen later settles the swap.
        return Wait(f"swapping {target}: renaming it to {previous}", delay=0,
                    updates={"replaced_cluster": record.model_copy(update={"swap_started_at": ctx.now})})

    if at_target is not None:  # the existing target still has its name: the first rename
        if not is_previous(record, at_target):
            raise TerminalError("TargetChanged", f"cluster {target!r} is no longer the cluster this restore was "
                                f"to replace (its resource id changed); nothing was renamed")
        if at_target.get("Status") != AVAILABLE:
            return Wait(f"waiting for cluster {target} ({at_target.get('Status')}) to be available to rename it")
        rename(rds, target, previous)
        return Wait(f"renaming cluster {target} to {previous}")

    renamed_away = rds.describe_cluster(previous)
    if renamed_away is not None and renamed_away.get("Status") != AVAILABLE:
        return Wait(f"renaming cluster {target} to {previous}: {renamed_away.get('Status')}")
    rename(rds, temporary, target)
    return Wait(f"renaming restored cluster {temporary} to {target}")


def swap_begun(ctx: RestoreContext) -> bool:
    """The first rename may have been sent: from then on spec.timeout no longer applies (the swap, and what
    follows it, is finished rather than left halfway)."""
    record = ctx.status.replaced_cluster
    return record is not None and record.swap_started_at is not None


def swap_in_progress(ctx: RestoreContext) -> bool:
    """The swap began and has neither finished nor been rolled back: it must be settled before anything else."""
    record = ctx.status.replaced_cluster
    return swap_begun(ctx) and record.swapped_at is None and record.rolled_back_at is None


def roll_back_swap(ctx: RestoreContext) -> tuple[str | None, dict[str, Any]]:
    """After a failure or a cancel mid-swap: give the previous cluster its name back.

    Returns (what is being waited for, or None once the swap is settled; the status updates): the previous
    cluster back at the target identifier (rolledBackAt), or the new one found there (the swap had completed).
    A new cluster that broke under the target identifier before the swap was seen complete is no successor: when
    the previous cluster is still there to take its name back, the broken one (the restore's own; the restore has
    failed either way) is deleted, then the previous one is renamed back, so the target's endpoints lead to the
    cluster that worked. Without a previous cluster to return, nothing is deleted.
    """
    record = ctx.status.replaced_cluster
    rds = ctx.target.rds
    at_target = rds.describe_cluster(ctx.target_identifier)
    if at_target is not None:
        if ctx.owns(at_target) and record.swapped_at is None and (
                at_target.get("Status") in FAILED_STATUSES or at_target.get("Status") == DELETING):
            previous = rds.describe_cluster(record.renamed_to)
            if previous is not None and is_previous(record, previous):
                teardown = tear_down_cluster(rds, at_target, final_snapshot_identifier=None,
                                             label="broken restored cluster")
                return f"rolling back the swap: {teardown.message}", {}
        if ctx.owns(at_target):
            return None, {"replaced_cluster": record.model_copy(update={"swapped_at": ctx.now})}
        if is_previous(record, at_target) and at_target.get("Status") != AVAILABLE:
            return f"rolling back the swap: {ctx.target_identifier} is {at_target.get('Status')}", {}
        return None, {"replaced_cluster": record.model_copy(update={"rolled_back_at": ctx.now})}
    previous = rds.describe_cluster(record.renamed_to)
    if previous is None or not is_previous(record, previous):
        return None, {"replaced_cluster": record.model_copy(update={"rolled_back_at": ctx.now})}
    if previous.get("Status") != AVAILABLE:
        return f"rolling back the swap: waiting for {record.renamed_to} ({previous.get('Status')})", {}
    rename(rds, record.renamed_to, ctx.target_identifier)
    return f"rolling back the swap: renaming {record.renamed_to} back to {ctx.target_identifier}", {}


def _swapped(ctx: RestoreContext, record: ReplacedClusterStatus, cluster: dict[str, Any]) -> Advance:
    keep = ctx.spec.existing_target.keep_previous
    update: dict[str, Any] = {"swapped_at": ctx.now}
    if keep:
        update["delete_after"] = ctx.now + parse_duration(keep)
    record = record.model_copy(update=update)
    updates = {"replaced_cluster": record, "cluster": cluster_status(cluster)}
    if keep:
        return Advance(Phase.PUBLISHING, f"{ctx.target_identifier} is the restored cluster; the previous one is "
                       f"kept as {record.renamed_to} until {record.delete_after.isoformat()}", updates=updates)
    return Advance(Phase.RETIRING_PREVIOUS, f"{ctx.target_identifier} is the restored cluster; the previous one "
                   f"is {record.renamed_to}", updates=updates)


def rename(rds, identifier: str, new_identifier: str) -> None:
    try:
        rds.rename_cluster(identifier, new_identifier)
    except TerminalError as error:
        if error.reason == "DBClusterAlreadyExistsFault":  # the name is still being released: look again
            raise RetryableError("RenamePending", error.message) from None
        if error.reason == "DBClusterNotFoundFault" and rds.describe_cluster(new_identifier) is not None:
            # The rename took effect but its answer was lost (a 5xx or a broken connection after the work was
            # done), and botocore's retry found the old name gone: the next pass observes the cluster under its
            # new name and carries on from there.
            return
        raise


def is_previous(record: ReplacedClusterStatus, cluster: dict[str, Any]) -> bool:
    """Whether `cluster` is the one this restore replaces (same DbClusterResourceId, which a rename keeps)."""
    return record.resource_id is None or cluster.get("DbClusterResourceId") == record.resource_id


def retire_previous(ctx: RestoreContext) -> Outcome:
    """Delete the previous cluster's instances, then the cluster with a final snapshot (unless finalSnapshot is
    false) and DeleteAutomatedBackups=False; tag the final snapshot with the restore's UID once it exists.

    The RetiringPrevious phase, or (keepPrevious) the Succeeded restore's daemon once deleteAfter has passed.
    Advances to Publishing once the previous cluster is gone, or at once, leaving it (retirementError), if it has
    deletion protection on by now. Fails, leaving it, if the cluster under the previous name is not the one this
    restore renamed away, or (NotAllowedByPolicy) if no policy allows replacing it any more (checked before the
    first deletion).
    """
    record = ctx.status.replaced_cluster
    rds = ctx.target.rds
    previous = rds.describe_cluster(record.renamed_to)
    if previous is not None:
        if not is_previous(record, previous):
            raise TerminalError("PreviousChanged", f"cluster {record.renamed_to!r} is not the cluster this restore "
                                f"renamed away; left untouched")
        instances = rds.list_cluster_instances(record.renamed_to)
        begun = record.deleted_instances or previous.get("Status") == DELETING or any(
            i.get("DBInstanceStatus") == DELETING for i in instances)
        if not begun:  # deleting what the restore did not create: the policies as they are now must allow it
            allowing_policy(ctx, previous, ask_aws=True, instances=instances)
        try:
            teardown = tear_down_cluster(rds, previous, record.final_snapshot_identifier, "previous cluster",
                                         keep_automated_backups=True, instances=instances)
        except TerminalError as error:
            if error.reason != DELETION_PROTECTED:
                raise
            # Protected since Preflight checked it: the user wants it kept. The restore itself is done; the
            # previous cluster stays, named in status.replacedCluster.retirementError.
            record = record.model_copy(update={"retirement_error": error.message})
            return Advance(Phase.PUBLISHING, f"the previous cluster is left in place: {error.message}",
                           updates={"replaced_cluster": record})
        deleted = sorted(set(record.deleted_instances) | set(teardown.deleted_instances))
        return Wait(teardown.message, updates={"replaced_cluster": record.model_copy(
            update={"deleted_instances": deleted})})
    _tag_final_snapshot(ctx, record)
    record = record.model_copy(update={"deleted_at": record.deleted_at or ctx.now})
    detail = f" after final snapshot {record.final_snapshot_identifier}" if record.final_snapshot_identifier else ""
    return Advance(Phase.PUBLISHING, f"previous cluster {record.renamed_to} deleted{detail}",
                   updates={"replaced_cluster": record})


def _tag_final_snapshot(ctx: RestoreContext, record: ReplacedClusterStatus) -> None:
    """DeleteDBCluster cannot tag the snapshot it takes; AddTagsToResource does, so the final snapshot is
    recognisable as the operator's (`latest` skips it) and carries the UID of the restore that took it."""
    if not record.final_snapshot_identifier:
        return
    snapshot = ctx.target.rds.describe_snapshot(record.final_snapshot_identifier)
    if snapshot is not None and SNAPSHOT_ROLE_TAG not in tags_of(snapshot):  # taken before the cluster went
        ctx.target.rds.add_tags(snapshot["DBClusterSnapshotArn"], ctx.snapshot_tags("final"))


def retirement_due(ctx: RestoreContext) -> datetime | None:
    """When a Succeeded restore with keepPrevious still owes the deletion of the previous cluster: its time."""
    record = ctx.status.replaced_cluster
    if record is None or record.delete_after is None or record.deleted_at or record.retirement_error:
        return None
    return record.delete_after
