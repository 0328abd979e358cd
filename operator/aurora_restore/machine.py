"""The phase machine: which step runs in which phase, and how a step's outcome changes the status.

    Pending ──► ResolvingSnapshot ──► Preflight ──► SharingSnapshot ──► CopyingSnapshot ──► ReplacingTarget
    (roles,      (snapshot, or the     │  │ (other account)   (other region     ▲  │ target absent:
     lease)       point-in-time        │  └──────────────────── or account) ───┘  │ passes straight on
                  window)              │  same region and account ───────────────►│
                                       ▼                                          ▼
                                    Planned (dryRun)                       RestoringCluster
                                                                                  │
    Succeeded ◄── CleaningUp ◄── Verifying ◄── ConfiguringAccess ◄── CreatingInstances
                                  (both pass straight on when the spec asks for no database access)
    Any phase ──► Failed   (a TerminalError, or spec.timeout exceeded; the copy and the share are then removed)

Each step observes AWS before acting, so running a step again after a crash is harmless. The dispatcher turns
RetryableError into a Wait with backoff and TerminalError into Fail; it never raises for either.
"""

from collections.abc import Callable
from datetime import datetime

from .api.duration import parse_duration
from .api.models import AuroraRestoreSpec, AuroraRestoreStatus, Failure, HistoryEntry
from .api.phase import Phase
from .errors import RetryableError, TerminalError
from .k8s.conditions import conditions_for
from .steps.access import configure_access
from .steps.cleanup import clean_up, intermediates_pending, remove_intermediates
from .steps.cluster import create_instances, restore_cluster
from .steps.context import RestoreContext
from .steps.lease import acquire_target
from .steps.preflight import run_preflight
from .steps.sharing import share_snapshot
from .steps.outcomes import Advance, Fail, Outcome, Wait
from .steps.snapshot import copy_snapshot, resolve_snapshot
from .steps.target import replace_target
from .steps.verify import verify

Step = Callable[[RestoreContext], Outcome]

STEPS: dict[Phase, Step] = {
    Phase.PENDING: acquire_target,
    Phase.RESOLVING_SNAPSHOT: resolve_snapshot,
    Phase.PREFLIGHT: run_preflight,
    Phase.SHARING_SNAPSHOT: share_snapshot,
    Phase.COPYING_SNAPSHOT: copy_snapshot,
    Phase.REPLACING_TARGET: replace_target,
    Phase.RESTORING_CLUSTER: restore_cluster,
    Phase.CREATING_INSTANCES: create_instances,
    Phase.CONFIGURING_ACCESS: configure_access,
    Phase.VERIFYING: verify,
    Phase.CLEANING_UP: clean_up,
}


def run_step(ctx: RestoreContext) -> Outcome:
    """Run the current phase's step once and return what should happen next; never raises domain errors."""
    phase = ctx.status.phase or Phase.PENDING
    if ctx.status.started_at is not None:
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
        return Fail(error.reason, error.message)


def clean_up_after_failure(ctx: RestoreContext) -> dict:
    """Best effort on the way to Failed: remove the copy and the share. Leaves the cluster for inspection.

    Whatever AWS refuses to remove right now (a snapshot still being created, throttling) is retried:
    cleanup_pending() keeps the restore's daemon running until it is gone, across restarts too.
    """
    try:
        return remove_intermediates(ctx)
    except (RetryableError, TerminalError):
        return {}


def cleanup_pending(status: AuroraRestoreStatus, spec: AuroraRestoreSpec) -> bool:
    """A failed restore still owes the removal of its copy or share."""
    return status.phase == Phase.FAILED and intermediates_pending(status, spec)


def has_work(status: dict, spec: dict) -> bool:
    """Whether a restore (as raw dicts, from kopf's filter) still needs its daemon."""
    parsed = AuroraRestoreStatus.model_validate(status or {})
    if parsed.phase is None or not parsed.phase.is_terminal:
        return True
    try:
        return cleanup_pending(parsed, AuroraRestoreSpec.model_validate(spec or {}))
    except ValueError:
        return False


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
    if isinstance(outcome, Wait):
        return status.model_copy(update={**updates, "message": outcome.message, "observed_generation": generation})
    if isinstance(outcome, Fail):
        updates["failure"] = Failure(phase=phase, reason=outcome.reason, message=outcome.message)
        new_phase, reason, message = Phase.FAILED, outcome.reason, outcome.message
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
        conditions=conditions_for(new_phase, reason, message, generation, now, status.conditions),
    )
    if new_phase.is_terminal:
        updates["completed_at"] = now
    return status.model_copy(update=updates)


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
