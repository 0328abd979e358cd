"""The outbox in status.notifications: which notifications a restore owes, when each is due, how attempts end.

One entry per channel (sns, webhook) and phase reported: queued Pending when the phase is reached, tried at
once, retried with exponential backoff (AURORA_RESTORE_NOTIFICATION_RETRY_BASE_SECONDS, doubled per attempt)
until Delivered or, after AURORA_RESTORE_NOTIFICATION_MAX_ATTEMPTS, Failed. Pure functions over the status, so
a re-run after a crash decides the same; an attempt whose outcome was not yet written is made again
(at-least-once delivery).
"""

from datetime import datetime, timedelta

from ..api.models import AuroraRestoreSpec, NotificationStatus
from ..api.phase import Phase

# The phases a restore ends in, reported with `on: Terminal` too. Cancelled gets one attempt only, from the
# deletion handler's last turn: the resource is gone right after (docs/notifications.md).
REPORTED_ENDS = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.PLANNED, Phase.CANCELLED})


def sns_topic(spec: AuroraRestoreSpec, default_topic: str | None) -> str | None:
    """spec.notification.snsTopicArn; else, when spec.notification is set, the operator's default topic."""
    notification = spec.notification
    if notification is None:
        return None
    return notification.sns_topic_arn or default_topic or None


def channels(spec: AuroraRestoreSpec, default_topic: str | None) -> list[str]:
    """The channels this restore notifies: sns and/or webhook."""
    notification = spec.notification
    if notification is None:
        return []
    found = ["sns"] if sns_topic(spec, default_topic) else []
    return found + (["webhook"] if notification.webhook_secret_ref else [])


def reports(spec: AuroraRestoreSpec, phase: Phase) -> bool:
    """Whether reaching `phase` is reported. Cancelling never is (the deletion handler enters it outside the
    machine's steps; Cancelled follows within seconds or minutes)."""
    if spec.notification is None or phase == Phase.CANCELLING:
        return False
    return phase in REPORTED_ENDS or spec.notification.on == "EveryTransition"


def queue(entries: list[NotificationStatus], kinds: list[str], phase: Phase) -> list[NotificationStatus]:
    """`entries` with a Pending entry for `phase` on every channel that has none yet (so queueing twice is
    harmless)."""
    have = {(entry.channel, entry.phase) for entry in entries}
    added = [NotificationStatus(channel=kind, phase=phase, state="Pending") for kind in kinds
             if (kind, phase) not in have]
    return [*entries, *added]


def retry_delay(attempts: int, base_seconds: float) -> float:
    """How long after attempt number `attempts` (1, 2, ...) the next one is due: base, 2×base, 4×base..."""
    return base_seconds * 2 ** max(attempts - 1, 0)


def due_at(entry: NotificationStatus, base_seconds: float) -> datetime | None:
    """When a Pending entry may be tried (None: at once, never tried); only Pending entries are ever due."""
    if entry.attempts == 0 or entry.last_attempt_at is None:
        return None
    return entry.last_attempt_at + timedelta(seconds=retry_delay(entry.attempts, base_seconds))


def is_due(entry: NotificationStatus, now: datetime, base_seconds: float) -> bool:
    if entry.state != "Pending":
        return False
    when = due_at(entry, base_seconds)
    return when is None or now >= when


def next_due_in(entries: list[NotificationStatus], now: datetime, base_seconds: float) -> float | None:
    """Seconds until the next Pending entry is due (0: now), or None when none is Pending."""
    waits = []
    for entry in entries:
        if entry.state == "Pending":
            when = due_at(entry, base_seconds)
            waits.append(0.0 if when is None else max((when - now).total_seconds(), 0.0))
    return min(waits) if waits else None


def pending(entries: list[NotificationStatus]) -> bool:
    return any(entry.state == "Pending" for entry in entries)


def delivered(entry: NotificationStatus, now: datetime, message_id: str | None = None) -> NotificationStatus:
    return entry.model_copy(update={"state": "Delivered", "attempts": entry.attempts + 1, "last_attempt_at": now,
                                    "delivered_at": now, "message_id": message_id, "error": None})


def attempt_failed(entry: NotificationStatus, now: datetime, error: str, max_attempts: int,
                   final: bool = False) -> NotificationStatus:
    """The entry after a failed attempt: still Pending while attempts remain (and the failure is not `final`,
    such as a destination no policy allows), else Failed."""
    attempts = entry.attempts + 1
    state = "Failed" if final or attempts >= max_attempts else "Pending"
    return entry.model_copy(update={"state": state, "attempts": attempts, "last_attempt_at": now,
                                    "error": error[:1024]})
