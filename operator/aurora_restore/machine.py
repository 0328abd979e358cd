"""The phase machine: which step runs in which phase, and how a step's outcome changes the status.

    Pending ──► ResolvingSnapshot ──► Preflight ──► SharingSnapshot ──► CopyingSnapshot ──┐
    (policy,     (snapshot, point-in-  │  │ (other account)   (other region     ▲          │
     lease)       time window, or the  │  └──────────────────── or account) ───┘          │
                  clone's source)      │  same region and account ──────────────────────►│
                                       │  clone from another account: SharingCluster ───►│ (RAM share)
                                       ▼                                                 ▼
                                    Planned (dryRun)         RestoringCluster (a temporary identifier
                                                                   │          when replacing a cluster)
                                                                   ▼
         RunningHooks ◄── Masking ◄── ConfiguringAccess ◄── CreatingInstances
         (spec.hooks)    (spec.masking; the database users are configured after it)
              │                          (each optional phase is skipped when the spec asks for none: steps/route.py)
              ▼
          Verifying ──► SnapshottingOutput (spec.output.snapshot: snapshot, copy with the consumers' key, share)
                          │   │
      no existing target  │   │ existingTarget Replace and a cluster to replace (found by Preflight)
                          │   ▼
                          │  SwappingTarget ──► RetiringPrevious ──┐    (rename the target away, rename the
                          │   │ keepPrevious: deleted after        │     new cluster in; delete the previous
                          │   │ Succeeded, once deleteAfter passed │     one with a final snapshot)
                          ▼   ▼                                    │
                        Publishing ◄───────────────────────────────┘    (deletion protection, connection Secrets,
                                                                         final endpoints)
                          │
                          ▼
                        CleaningUp ──► Succeeded   (copies, shares, a RAM share; the cluster itself with
                                                    output.snapshot.deleteClusterAfter; never the output snapshot)

    Any phase ──► CleaningUpAfterFailure ──► Failed     (a TerminalError, or spec.timeout exceeded before a
                                                         swap began: roll back a half-done swap, remove the
                                                         copies, the share grant, a RAM share, an unfinished
                                                         output snapshot, a Job hook's Job and Secret and a temporary
                                                         cluster; the existing target stays)
    Deletion before the end ──► Cancelling ──► Cancelled (run by the deletion handler: finish a swap in
                                                         progress, remove what the restore made and did not
                                                         finish, also a direct restore's cluster before
                                                         Verifying passed; the resource then disappears)

    spec.drill: the direct path (never SwappingTarget) into the drill's own cluster <target>-drill-<uid8>;
    CleaningUp records RTO and RPO in status.drill (steps/drill.py); after Succeeded, once keepFor has passed,
    run_aftercare deletes the drill's instances, cluster and connection Secrets (a failed or cancelled drill
    deletes them on its way out). spec.ttlSecondsAfterFinished: the daemon deletes the AuroraRestore that long
    after status.workCompletedAt (nothing left to do), unless it is the only record of a cluster it failed to
    delete (left_in_aws).

An AuroraRestorePolicy must allow the restore (steps/policy.py): checked in Pending before any AWS call, in
Preflight against what AWS shows, in SwappingTarget before the first rename and in RetiringPrevious before the
replaced cluster is deleted; a refusal is NotAllowedByPolicy, and so Failed. Each step observes AWS before
acting, so running a step again after a crash is harmless. The dispatcher turns RetryableError into a Wait with
backoff and TerminalError into Fail; it never raises for either. spec.timeout no longer applies once a swap has
begun (the swap and what follows are finished, never left halfway), nor on the ways out (CleaningUpAfterFailure,
Cancelling).
spec.notification's notifications are queued and delivered around each step, from Publishing (Succeeded) and as
aftercare of a finished restore (steps/notify.py); they never change the phase.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .api.duration import parse_duration
from .api.models import AuroraRestoreStatus, Failure, HistoryEntry
from .api.phase import Phase
from .errors import RetryableError, TerminalError
from .k8s.conditions import conditions_for
from .notify.outbox import pending
from .steps.access import configure_access
from .steps.cleanup import cancel, clean_up, clean_up_after_failure
from .steps.clone import share_cluster
from .steps.cluster import create_instances, restore_cluster
from .steps.context import RestoreContext
from .steps.drill import left_in_place, tear_down_drill, teardown_owed
from .steps.hooks import run_hooks
from .steps.lease import acquire_target
from .steps.masking import mask_data
from .steps.notify import deliver_before_step, notification_aftercare, with_notifications
from .steps.outcomes import Advance, Fail, Outcome, Wait
from .steps.output import snapshot_output
from .steps.preflight import run_preflight
from .steps.publish import publish
from .steps.sharing import share_snapshot
from .steps.snapshot import copy_snapshot, resolve_snapshot
from .steps.swap import retire_previous, retirement_due, swap_begun, swap_in_progress, swap_target
from .steps.verify import verify

Step = Callable[[RestoreContext], Outcome]

log = logging.getLogger("aurora_restore.machine")

STEPS: dict[Phase, Step] = {
    Phase.PENDING: acquire_target,
    Phase.RESOLVING_SNAPSHOT: resolve_snapshot,
    Phase.PREFLIGHT: run_preflight,
    Phase.SHARING_SNAPSHOT: share_snapshot,
    Phase.SHARING_CLUSTER: share_cluster,
    Phase.COPYING_SNAPSHOT: copy_snapshot,
    Phase.RESTORING_CLUSTER: restore_cluster,
    Phase.CREATING_INSTANCES: create_instances,
    Phase.CONFIGURING_ACCESS: configure_access,
    Phase.MASKING: mask_data,
    Phase.RUNNING_HOOKS: run_hooks,
    Phase.VERIFYING: verify,
    Phase.SNAPSHOTTING_OUTPUT: snapshot_output,
    Phase.SWAPPING_TARGET: swap_target,
    Phase.RETIRING_PREVIOUS: retire_previous,
    Phase.PUBLISHING: publish,
    Phase.CLEANING_UP: clean_up,
    Phase.CLEANING_UP_AFTER_FAILURE: clean_up_after_failure,
    Phase.CANCELLING: cancel,
}
# Phases that finish what was started whatever the clock says: spec.timeout does not apply to them.
UNTIMED_PHASES = frozenset({Phase.CLEANING_UP_AFTER_FAILURE, Phase.CANCELLING})


def run_step(ctx: RestoreContext) -> Outcome:
    """Run the current phase's step once and return what should happen next; never raises domain errors.
    Notifications due are delivered first; those the outcome's phase owes are queued (steps/notify.py).

    A step that raises anything else after this turn attempted a notification (an apiserver error reading a
    Secret, a bug) does not lose those attempts: they are returned as a backoff Wait, logged with the error,
    so the failing step cannot resend the notification at every retry. Without an attempt the error is raised
    for the driver, as before."""
    before = ctx.status.notifications
    notifications = deliver_before_step(ctx)
    try:
        outcome = _run_phase_step(ctx)
    except Exception as error:
        if notifications is None or notifications == before:
            raise
        log.warning("the %s step raised %s after notifications were attempted: recording the attempts, retrying",
                    ctx.status.phase, type(error).__name__, exc_info=True)
        outcome = Wait(f"retrying after an unexpected {type(error).__name__}", backoff=True)
    return with_notifications(ctx, outcome, notifications)


def _run_phase_step(ctx: RestoreContext) -> Outcome:
    phase = ctx.status.phase or Phase.PENDING
    if ctx.status.started_at is not None and phase not in UNTIMED_PHASES and not swap_begun(ctx):
        limit = parse_duration(ctx.spec.timeout)
        if ctx.now - ctx.status.started_at > limit:
            return Fail(
                "Timeout",
                f"the restore did not finish within spec.timeout ({ctx.spec.timeout}); "
                f"it was in phase {phase}: {ctx.status.message or ''}".rstrip(": "),
            )
    try:
        return STEPS[phase](ctx)
    except RetryableError as error:
        return Wait(error.message, backoff=True, reason=error.reason)
    except TerminalError as error:
        return _terminal(phase, ctx, error)


def _terminal(phase: Phase, ctx: RestoreContext, error: TerminalError) -> Outcome:
    """A TerminalError fails the restore, except on the ways out: cleanup after a failure then ends Failed with
    the first failure kept (but keeps trying while a swap is not yet rolled back), and a cancel keeps trying
    (the skip-cleanup annotation lets go)."""
    status = ctx.status
    if phase == Phase.CLEANING_UP_AFTER_FAILURE and swap_in_progress(ctx):
        return Wait(f"rolling back the swap: {error.message}", backoff=True, reason=error.reason)
    if phase == Phase.CLEANING_UP_AFTER_FAILURE:
        first = status.failure.message if status.failure else ""
        return Advance(Phase.FAILED, f"{first}; cleanup stopped: {error.message}".lstrip("; "))
    if phase == Phase.CANCELLING:
        return Wait(f"cancelling: {error.message}", backoff=True, reason=error.reason)
    return Fail(error.reason, error.message)


def run_aftercare(ctx: RestoreContext, due_now: bool = False) -> Outcome | None:
    """What a finished restore still owes, or None: its notifications still pending (steps/notify.py), deleting
    the previous cluster kept by keepPrevious once
    status.replacedCluster.deleteAfter has passed, or a drill's cluster once status.drill.deleteAfter has
    (`due_now`: at once, the AuroraRestore is being deleted). The phase stays Succeeded throughout (only Waits);
    apply_outcome records status.workCompletedAt once nothing is owed."""
    notified = notification_aftercare(ctx, due_now)  # pending notifications first: minutes, not hours
    if notified is not None:
        return notified
    drill = tear_down_drill(ctx, due_now)  # a drill never replaces: never both
    if drill is not None:
        return drill
    due = retirement_due(ctx)
    if ctx.status.phase != Phase.SUCCEEDED or due is None:
        return None
    record = ctx.status.replaced_cluster
    if ctx.now < due and not due_now:
        return Wait(f"cluster {ctx.target_identifier} restored; the previous cluster is kept as "
                    f"{record.renamed_to} until {due.isoformat()}", delay=(due - ctx.now).total_seconds())
    try:
        outcome = retire_previous(ctx)
    except RetryableError as error:
        return Wait(error.message, backoff=True, reason=error.reason)
    except TerminalError as error:
        record = record.model_copy(update={"retirement_error": error.message})
        return Wait(f"previous cluster left in place: {error.message}", updates={"replaced_cluster": record})
    if isinstance(outcome, Advance):  # the previous cluster is gone: record it
        return Wait(outcome.message, updates=outcome.updates)
    return outcome


def has_work(status: AuroraRestoreStatus, ttl_seconds: int | None = None) -> bool:
    """Whether a restore still needs its daemon: it has not ended, it still owes aftercare (owes_aftercare), or
    spec.ttlSecondsAfterFinished (`ttl_seconds`) is set: the daemon deletes the AuroraRestore when it expires."""
    if status.phase is None or not status.phase.is_terminal:
        return True
    return owes_aftercare(status) or ttl_seconds is not None


def owes_aftercare(status: AuroraRestoreStatus) -> bool:
    """A finished restore still owes a kept previous cluster's deletion, a drill's teardown, or a pending
    notification."""
    record = status.replaced_cluster
    return (status.phase == Phase.SUCCEEDED and record is not None and record.delete_after is not None
            and record.deleted_at is None and record.retirement_error is None) or teardown_owed(status) or (
        pending(status.notifications))


def ttl_expiry(status: AuroraRestoreStatus, ttl_seconds: int | None) -> datetime | None:
    """When spec.ttlSecondsAfterFinished deletes the finished AuroraRestore: that long after
    status.workCompletedAt (completedAt for one that finished before workCompletedAt existed); None: never, or
    not yet known (work is left)."""
    if ttl_seconds is None or status.phase is None or not status.phase.is_terminal or owes_aftercare(status):
        return None
    done = status.work_completed_at or status.completed_at
    return done + timedelta(seconds=ttl_seconds) if done else None


def left_in_aws(status: AuroraRestoreStatus) -> str | None:
    """What a finished restore failed for good to delete, named (status.drill.cleanupError,
    status.replacedCluster.retirementError), or None. The AuroraRestore is then the only record of it, so
    spec.ttlSecondsAfterFinished does not delete it (driver._expire)."""
    left = []
    drill_cluster = left_in_place(status)
    if drill_cluster is not None:
        left.append(f"drill cluster {drill_cluster} (status.drill.cleanupError)")
    record = status.replaced_cluster
    if record is not None and record.retirement_error is not None and record.deleted_at is None:
        left.append(f"previous cluster {record.renamed_to} (status.replacedCluster.retirementError)")
    return " and ".join(left) or None


def apply_outcome(
    status: AuroraRestoreStatus,
    outcome: Outcome,
    now: datetime,
    generation: int | None,
    history_limit: int,
) -> AuroraRestoreStatus:
    """The status after `outcome`: a new phase with history, conditions and failure, or just a new message."""
    phase = status.phase or Phase.PENDING
    updates = dict(getattr(outcome, "updates", {}))
    if isinstance(outcome, Wait):  # an aftercare Wait may settle the last thing a finished restore owed
        return work_completed(
            status.model_copy(update={**updates, "message": outcome.message, "observed_generation": generation}), now)
    if isinstance(outcome, Fail):
        updates["failure"] = Failure(phase=phase, reason=outcome.reason, message=outcome.message)
        new_phase, reason, message = Phase.CLEANING_UP_AFTER_FAILURE, outcome.reason, outcome.message
    elif outcome.to == Phase.FAILED and status.failure is not None:
        new_phase, reason, message = Phase.FAILED, status.failure.reason, outcome.message
    else:
        new_phase, reason, message = outcome.to, str(outcome.to), outcome.message

    history = [entry.model_copy() for entry in status.history]
    if history and history[-1].ended_at is None:
        history[-1] = history[-1].model_copy(update={"ended_at": now})
    history.append(HistoryEntry(phase=new_phase, started_at=now, ended_at=now if new_phase.is_terminal else None))
    updates.update(
        phase=new_phase,
        message=message,
        observed_generation=generation,
        history=history[-history_limit:],
        conditions=conditions_for(new_phase, reason, message, generation, now,
                                  updates.get("conditions", status.conditions)),  # a step's own (ObjectiveMet) stay
    )
    if new_phase.is_terminal:
        updates["completed_at"] = now
    return work_completed(status.model_copy(update=updates), now)


def work_completed(status: AuroraRestoreStatus, now: datetime) -> AuroraRestoreStatus:
    """`status` with workCompletedAt once a finished restore owes nothing more (spec.ttlSecondsAfterFinished
    counts from it): on reaching a terminal phase, or when its aftercare (a kept previous cluster, a drill's
    teardown, notifications) has ended."""
    if status.phase is None or not status.phase.is_terminal or status.work_completed_at or owes_aftercare(status):
        return status
    return status.model_copy(update={"work_completed_at": now})


# Status fields a step describes from AWS again on every turn (the restored cluster and its instances): a change in
# them alone is not written, it goes with the restore's next change that is (worth_writing).
REOBSERVED_FIELDS = frozenset({"cluster", "instances"})


def worth_writing(written: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the status `new` (JSON, as the driver writes it) is worth a status write over `written`: it is,
    unless nothing changed but REOBSERVED_FIELDS, such as an instance going from creating to backing-up or the
    writer flag set while the message still says "0/1 instances available". A phase, a message, an audit entry,
    a created resource's record elsewhere in the status or observedGeneration are always written."""
    changed = {key for key in written.keys() | new.keys() if written.get(key) != new.get(key)}
    return bool(changed - REOBSERVED_FIELDS)


def accept(status: AuroraRestoreStatus, now: datetime, generation: int | None) -> AuroraRestoreStatus:
    """The first status of a new restore: Pending, with its start time (spec.timeout counts from here)."""
    message = "accepted"
    return status.model_copy(
        update={
            "phase": Phase.PENDING,
            "message": message,
            "started_at": now,
            "observed_generation": generation,
            "history": [HistoryEntry(phase=Phase.PENDING, started_at=now)],
            "conditions": conditions_for(Phase.PENDING, "Accepted", message, generation, now, []),
        }
    )
