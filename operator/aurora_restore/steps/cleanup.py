"""CleaningUp, CleaningUpAfterFailure and Cancelling: remove what a restore made only for itself.

What to remove is found in AWS by name (names.py derives every name from the UID) and confirmed by the
restore's UID tag, so cleanup after a crash never depends on what status managed to record. Nothing without
the tag is ever deleted: never the source snapshot, never a final snapshot, never the replaced cluster (only
RetiringPrevious deletes that), never the output snapshot of a restore that succeeded (the product: only a
failed or cancelled restore removes its partial output). Each pass deletes what it can and reports what it still
waits for; AWS refusing for now (a snapshot still being created) is a RetryableError, so the step is simply run
again later.
"""

from dataclasses import replace

from ..api.models import CancellationStatus
from ..api.phase import Phase
from ..errors import TerminalError
from .clone import remove_cluster_share
from .context import RestoreContext
from .deletion import tear_down_cluster
from .drill import measure, remove_drill
from .hooks import remove_hook_objects
from .outcomes import Advance, Outcome, Wait
from .output import delete_cluster_after, output_message, remove_partial_output
from .policy import REASON as NOT_ALLOWED_BY_POLICY
from .swap import retire_previous, roll_back_swap, swap_in_progress, swap_target

# Nothing in AWS is made before these phases end: failing or cancelling in one makes no AWS call at all (a role
# the namespace may not use is never assumed, not even to look).
NOTHING_MADE_YET_PHASES = frozenset({Phase.PENDING, Phase.RESOLVING_SNAPSHOT, Phase.PREFLIGHT})
# Before these phases a direct restore's cluster is unfinished (not yet verified): a cancel removes it.
FINISHED_CLUSTER_PHASES = frozenset({Phase.SNAPSHOTTING_OUTPUT, Phase.SWAPPING_TARGET, Phase.RETIRING_PREVIOUS,
                                     Phase.PUBLISHING, Phase.CLEANING_UP})


def clean_up(ctx: RestoreContext) -> Outcome:
    """Delete the copies and the intermediate copy, remove the share grant (when copy.deleteAfterRestore) and
    finish; a drill records what it measured (steps/drill.py). With spec.output.snapshot.deleteClusterAfter, the
    restored cluster and its instances are deleted first (steps/output.py); the output snapshot never is.
    Next: Succeeded."""
    updates = remove_intermediates(ctx)
    remove_hook_objects(ctx)  # Job hooks' Secrets (deleted already when each Job ended; found by label)
    if ctx.drilling:
        updates.update(measure(ctx))
    waiting, deleted = delete_cluster_after(ctx)
    if waiting:
        return Wait(waiting, updates=updates)
    updates.update(deleted)
    count = len(ctx.status.instances)
    output = output_message(updates.get("output_snapshot", ctx.status.output_snapshot))
    return Advance(Phase.SUCCEEDED, f"cluster {ctx.target_identifier} restored with {count} instance(s){output}",
                   updates=updates)


def clean_up_after_failure(ctx: RestoreContext) -> Outcome:
    """After any failure: roll back a half-done swap, remove the copies and the share grant (when
    copy.deleteAfterRestore), an unfinished output snapshot (spec.output.snapshot, by its UID tag; a finished one
    is kept), and delete the
    temporary cluster of a Replace with its instances. A cluster
    restored straight into the target identifier is kept for inspection, except a drill's (deleted with its
    connection Secrets: a drill leaves nothing). Next: Failed (status.failure holds why).
    """
    failure = ctx.status.failure
    if failure is not None and failure.phase in NOTHING_MADE_YET_PHASES:
        return Advance(Phase.FAILED, failure.message)
    updates: dict = {}
    if swap_in_progress(ctx):
        waiting, updates = roll_back_swap(ctx)
        if waiting:
            return Wait(waiting, updates=updates)
        ctx = replace(ctx, status=ctx.status.model_copy(update=updates))
    updates.update(remove_intermediates(ctx))
    updates.update(remove_partial_output(ctx))  # an unfinished output snapshot; a finished one is the product
    remove_hook_objects(ctx)  # a Job hook's Secret, and its Job if still running (steps/hooks.py)
    pending = remove_drill(ctx) if ctx.drilling else remove_temporary_cluster(ctx)  # a drill leaves nothing
    if pending:
        return Wait(pending, updates=updates)
    return Advance(Phase.FAILED, failure.message if failure else "failed", updates=updates)


def cancel(ctx: RestoreContext) -> Outcome:
    """The AuroraRestore is being deleted before it finished (run from the deletion handler, phase Cancelling).

    A swap in progress is finished first (the new cluster is verified by then; rolled back if it cannot finish),
    and so is the deletion of the previous cluster once RetiringPrevious began. Then the copies, the share grant
    (or a clone's RAM share), an unfinished output snapshot (a finished one is kept), a Job hook's Job and Secret, and an unfinished cluster are
    removed: the temporary cluster of a Replace, or a cluster restored into the target identifier that had not
    passed Verifying (one cancelled in SnapshottingOutput stays, as in Publishing). A replaced cluster is never
    touched (and the previous one is kept when no policy allows deleting it any more). Next: Cancelled.
    """
    record = ctx.status.cancellation or CancellationStatus(phase=ctx.status.phase or Phase.PENDING,
                                                           requested_at=ctx.now)
    updates: dict = {"cancellation": record}
    if record.phase in NOTHING_MADE_YET_PHASES:
        return Advance(Phase.CANCELLED, f"cancelled in {record.phase}, before anything was made in AWS",
                       updates=updates)
    if swap_in_progress(ctx):
        try:
            outcome = swap_target(ctx)
        except TerminalError as error:  # it cannot finish: undo it
            waiting, rolled_back = roll_back_swap(ctx)
            return Wait(f"the swap cannot finish ({error.message}): {waiting or 'rolled back'}",
                        delay=None if waiting else 0, updates={**rolled_back, **updates})
        if isinstance(outcome, Wait):
            return replace(outcome, message=f"finishing the swap before cancelling: {outcome.message}",
                           updates={**outcome.updates, **updates})
        return Wait(f"swap finished before cancelling: {outcome.message}", delay=0,
                    updates={**outcome.updates, **updates})
    kept = ""
    previous = ctx.status.replaced_cluster
    if record.phase == Phase.RETIRING_PREVIOUS and previous.deleted_at is None and previous.retirement_error is None:
        # The user asked for the previous cluster to go and the swap is done: finish, never leave it half-deleted;
        # unless no policy allows deleting it any more (checked before the first deletion), or it has deletion
        # protection on (retire_previous records that as retirementError): then it stays.
        try:
            outcome = retire_previous(ctx)
        except TerminalError as error:
            if error.reason != NOT_ALLOWED_BY_POLICY:
                raise
            kept = f"; the previous cluster {previous.renamed_to} is kept: {error.message}"
        else:
            left = outcome.updates.get("replaced_cluster")
            if left is None or left.retirement_error is None:
                return Wait(f"finishing the deletion of the previous cluster before cancelling: {outcome.message}",
                            updates={**outcome.updates, **updates},
                            delay=0 if isinstance(outcome, Advance) else None)
            updates.update(outcome.updates)
            kept = f"; the previous cluster {previous.renamed_to} is kept: {left.retirement_error}"
    elif previous is not None and previous.retirement_error and previous.deleted_at is None:
        kept = f"; the previous cluster {previous.renamed_to} is kept: {previous.retirement_error}"
    updates.update(remove_intermediates(ctx))
    updates.update(remove_partial_output(ctx))  # an unfinished output snapshot; a finished one is the product
    remove_hook_objects(ctx)  # a Job hook's Secret, and its Job if still running (steps/hooks.py)
    pending = remove_drill(ctx) if ctx.drilling else remove_temporary_cluster(ctx)  # a drill leaves nothing
    if not pending and record.phase not in FINISHED_CLUSTER_PHASES and not ctx.replacing:
        pending = remove_owned_cluster(ctx, ctx.target_identifier, "partly restored cluster")
    if pending:
        return Wait(pending, updates=updates)
    return Advance(Phase.CANCELLED, f"cancelled in {record.phase}; what this restore made is removed{kept}",
                   updates=updates)


def remove_intermediates(ctx: RestoreContext) -> dict:
    """The copies, the intermediate manual copy and the share grant: whatever the spec may have made exist.
    With copy.deleteAfterRestore false they are kept, and so is the share (this restore leaves its count).
    A clone made no snapshot: only its RAM share (across accounts) is deleted, always (steps/clone.py)."""
    if ctx.spec.source.clone is not None:
        return remove_cluster_share(ctx)
    if not ctx.spec.copy_.delete_after_restore:
        if ctx.spec.cross_account:
            remove_share(ctx, keep=True)
        return {}
    updates: dict = {}
    if ctx.spec.needs_copy:
        _delete_owned_snapshot(ctx, ctx.target.rds, ctx.copied_snapshot_identifier)
        if ctx.status.copied_snapshot is not None:
            updates["copied_snapshot"] = ctx.status.copied_snapshot.model_copy(update={"deleted": True})
    if ctx.spec.cross_account and ctx.spec.target_region != ctx.spec.source.region:
        _delete_owned_snapshot(ctx, ctx.staging.rds, ctx.staged_snapshot_identifier)
        if ctx.status.staged_snapshot is not None:
            updates["staged_snapshot"] = ctx.status.staged_snapshot.model_copy(update={"deleted": True})
    if ctx.spec.cross_account:
        updates.update(remove_share(ctx))
    return updates


def remove_share(ctx: RestoreContext, keep: bool = False) -> dict:
    """Delete the intermediate manual copy (which ends its share and cancels it if still copying), or leave the
    count of the user's shared snapshot: the last restore leaving removes the share, if a restore added it."""
    pinned, shared = ctx.status.snapshot, ctx.status.shared_snapshot
    if pinned is None:
        return {}
    if pinned.snapshot_type == "automated":
        if keep:
            return {}
        _delete_owned_snapshot(ctx, ctx.source.rds, ctx.shared_snapshot_identifier)
        return {"shared_snapshot": shared.model_copy(update={"deleted": True, "unshared": True})} if shared else {}
    account = ctx.target.account.account_id
    removed = ctx.share_grants(pinned.arn, account).leave(
        ctx.holder, lambda: ctx.source.rds.unshare_snapshot(pinned.identifier, account), keep=keep)
    return {"shared_snapshot": shared.model_copy(update={"unshared": removed})} if shared else {}


def _delete_owned_snapshot(ctx: RestoreContext, rds, identifier: str) -> None:
    """DeleteDBClusterSnapshot, only if the snapshot carries this restore's UID tag."""
    snapshot = rds.describe_snapshot(identifier)
    if snapshot is not None and ctx.owns(snapshot):
        rds.delete_snapshot(identifier)


def remove_temporary_cluster(ctx: RestoreContext) -> str | None:
    """One teardown pass of a Replace's temporary cluster; None once there is none (or the swap took it)."""
    if not ctx.replacing:
        return None
    return remove_owned_cluster(ctx, ctx.temporary_cluster_identifier, "temporary cluster")


def remove_owned_cluster(ctx: RestoreContext, identifier: str, label: str) -> str | None:
    """One teardown pass of the cluster `identifier` if it carries this restore's UID; None once it is gone."""
    cluster = ctx.target.rds.describe_cluster(identifier)
    if cluster is None or not ctx.owns(cluster):
        return None
    return tear_down_cluster(ctx.target.rds, cluster, final_snapshot_identifier=None, label=label).message
