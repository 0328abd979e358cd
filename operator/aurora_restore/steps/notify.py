"""Where the phase machine sends spec.notification's notifications (notify/ has the payload and the delivery).

- Every turn of a running restore first delivers what is due, then queues what the step's outcome owes: the
  phase it moves to, when reported (Planned and Failed; every phase with `on: EveryTransition`).
- Publishing queues Succeeded and makes its first attempt once the connection Secrets are written, with the
  cluster's endpoints (publish_success); the restore moves on whatever the attempt's outcome.
- A finished restore delivers the rest as aftercare (notification_aftercare), retrying with backoff until each
  is Delivered or Failed; the phase stays terminal.
- Cancelled is sent from the deletion handler's last turn: one attempt, no retry (the resource then goes).
- A finished restore whose spec no longer validates ends its Pending entries Failed (unsendable_notifications).
"""

from dataclasses import replace
from typing import Any

from ..api.models import AuroraRestoreStatus, NotificationStatus
from ..api.phase import Phase
from ..notify import outbox
from .context import RestoreContext
from .outcomes import Advance, Fail, Outcome, Wait


def deliver_before_step(ctx: RestoreContext) -> list[NotificationStatus] | None:
    """Queue the current phase's notification if owed, deliver what is due, and show the step the entries
    (ctx.status); None when the restore notifies nothing."""
    if ctx.notifier is None or ctx.spec.notification is None:
        return None
    entries = ctx.notifier.queue(ctx, ctx.status.phase or Phase.PENDING)
    entries = ctx.notifier.deliver_due(ctx, entries, status=reported_status(ctx))
    ctx.status = ctx.status.model_copy(update={"notifications": entries})
    return entries


def reported_status(ctx: RestoreContext) -> AuroraRestoreStatus:
    """The status the payload is built from: ctx.status, except that a drill past Verifying (Publishing,
    CleaningUp) carries its RTO and RPO measured now, before CleaningUp records them in status.drill (the same
    measure). Measuring failing leaves them unmeasured: a notification never stops the restore."""
    status = ctx.status
    if not ctx.drilling or status.phase not in (Phase.PUBLISHING, Phase.CLEANING_UP) or (
            status.drill is not None and status.drill.rto_seconds is not None):
        return status
    from .drill import measure  # drill.py imports publish.py, which imports this module

    try:
        return status.model_copy(update={"drill": measure(ctx)["drill"]})
    except Exception:
        return status


def with_notifications(ctx: RestoreContext, outcome: Outcome, entries: list[NotificationStatus] | None) -> Outcome:
    """The outcome with the notifications it owes queued (and Cancelled's one attempt made)."""
    if entries is None:
        return outcome
    entries = list(outcome.updates.get("notifications", entries))
    phase = outcome.to if isinstance(outcome, Advance) else (
        Phase.CLEANING_UP_AFTER_FAILURE if isinstance(outcome, Fail) else None)
    if phase is not None:
        queued = ctx.notifier.queue(ctx, phase, entries)
        if phase == Phase.CANCELLED:  # the last chance: the resource is about to disappear
            queued = [ctx.notifier.attempt(ctx, entry) if entry.phase == phase and entry.state == "Pending"
                      else entry for entry in queued]
        entries = queued
    # Always recorded: the attempts made before the step changed the entries too (unchanged status is not written).
    return replace(outcome, updates={**outcome.updates, "notifications": entries})


def publish_success(ctx: RestoreContext, cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    """Publishing's status updates for the Succeeded notification: queued and tried once, reporting the
    endpoints of `cluster` (described by Publishing; else status.cluster's). Empty when none is owed. A drill's
    payload carries its RTO and RPO, measured now (verification has passed) the way CleaningUp records them."""
    if ctx.notifier is None or not outbox.reports(ctx.spec, Phase.SUCCEEDED):
        return {}
    entries = ctx.notifier.queue(ctx, Phase.SUCCEEDED)
    if entries == list(ctx.status.notifications):
        return {}
    endpoint = None
    if cluster is not None and cluster.get("Endpoint"):
        endpoint = {"writer": cluster["Endpoint"], "reader": cluster.get("ReaderEndpoint"),
                    "port": cluster.get("Port")}
    status = reported_status(ctx)
    entries = [ctx.notifier.attempt(ctx, entry, endpoint, status) if entry.phase == Phase.SUCCEEDED
               and outbox.is_due(entry, ctx.now, ctx.notifier.settings.retry_base_seconds) else entry
               for entry in entries]
    return {"notifications": entries}


def notification_aftercare(ctx: RestoreContext, due_now: bool = False) -> Wait | None:
    """A finished restore's notifications still Pending: deliver those due, then wait for the next (the phase
    and message stay). None when none is Pending, or when the AuroraRestore is being deleted (`due_now`: the
    deletion does not wait for retries)."""
    entries = list(ctx.status.notifications)
    if due_now or ctx.notifier is None or not outbox.pending(entries):
        return None
    entries = ctx.notifier.deliver_due(ctx, entries)
    next_in = ctx.notifier.next_due_in(entries, ctx)
    # No workCompletedAt here: machine.work_completed records it once nothing at all is owed (a drill's teardown
    # or a kept previous cluster may still be).
    return Wait(ctx.status.message or "", delay=0 if next_in is None else next_in,
                updates={"notifications": entries})


def unsendable_notifications(status: AuroraRestoreStatus) -> Wait | None:
    """A finished restore whose spec no longer validates cannot read spec.notification: its Pending entries end
    Failed, so nothing is owed and spec.ttlSecondsAfterFinished can count (machine.work_completed). None when
    none is Pending."""
    if not outbox.pending(status.notifications):
        return None
    entries = [entry.model_copy(update={"state": "Failed", "error": "not sent: the spec no longer validates"})
               if entry.state == "Pending" else entry for entry in status.notifications]
    return Wait(status.message or "", updates={"notifications": entries})
