"""The RDS events queue: an SQS queue an EventBridge rule fills with RDS events, read by one background thread.

With AURORA_RESTORE_EVENTS_QUEUE_URL set (docs/scale.md), the listener long-polls the queue (ReceiveMessage,
WaitTimeSeconds up to 20, at most 10 messages), wakes the restores waiting on each event's resource
(wakeups.Wakeups, by `detail.SourceArn`) and then deletes what it received (DeleteMessageBatch), whatever it was:
an event nobody waits on, a malformed message or one from another source is of no use later either. It reads
only while this replica may act (it leads and is not shutting down), so a standby leaves the leader's events
alone, and what a long poll brings after the replica stopped acting is left for the next leader; the client's
leader fence (aws/clients.py) backs that up.

RDS delivers events to EventBridge best-effort (EventBridge's RDS event reference, "Delivery type: Best effort"),
and SQS standard queues deliver at least once: an event may be lost, late, out of order or repeated, so it is
only ever a reason to look sooner (the safety interval covers a lost one).
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import NotLeading
from ..obs import metrics
from ..wakeups import Wakeups
from .queue_address import QueueAddress

log = logging.getLogger(__name__)

SOURCE = "aws.rds"
# The detail-types of the RDS resources a restore waits on (the EventBridge RDS event reference).
DETAIL_TYPES = frozenset({"RDS DB Cluster Event", "RDS DB Instance Event", "RDS DB Cluster Snapshot Event"})
MAX_MESSAGES = 10  # ReceiveMessage's MaxNumberOfMessages: 1 to 10
LONGEST_POLL_SECONDS = 20  # ReceiveMessage's WaitTimeSeconds: 0 to 20
# After a failed receive the listener waits this long before the next one (doubling, at most the maximum).
RETRY_SECONDS, RETRY_MAX_SECONDS = 1.0, 60.0

@dataclass(frozen=True)
class RdsEvent:
    """The part of an RDS event (EventBridge's envelope around RDS's event) that tells whom to wake."""

    detail_type: str
    source_arn: str
    event_id: str | None = None  # RDS-EVENT-0170, ...; for the log only


def parse_event(body: str) -> RdsEvent | None:
    """An SQS message body as an RDS event of a cluster, instance or cluster snapshot; None for anything else
    (another source or detail-type, not JSON, no SourceArn)."""
    try:
        event = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(event, dict) or event.get("source") != SOURCE or event.get("detail-type") not in DETAIL_TYPES:
        return None
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return None
    arn = detail.get("SourceArn")
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        return None
    event_id = detail.get("EventID")
    return RdsEvent(event["detail-type"], arn, event_id if isinstance(event_id, str) else None)


def long_poll_seconds(read_timeout: float) -> int:
    """WaitTimeSeconds of each receive: 20, or less when the client's read timeout would cut a long poll short
    (the answer of a long poll comes only when it ends)."""
    return max(1, min(LONGEST_POLL_SECONDS, int(read_timeout) // 2))


class RdsEventsListener:
    """The background thread that turns the queue's messages into wake-ups."""

    def __init__(self, sqs, queue_url: str, wakeups: Wakeups, active: Callable[[], bool] = lambda: True,
                 wait_seconds: int = LONGEST_POLL_SECONDS, region: str | None = None):
        """`region`: the queue's, when its URL does not name it. The queue receives the events of its own account
        and region only (an EventBridge rule sees its own bus), so only restores waiting there rely on it."""
        address = QueueAddress.parse(queue_url)
        self._sqs = sqs
        self._queue_url = queue_url
        self._account, self._region = address.account, region or address.region
        self._wakeups = wakeups
        self._active = active
        self._wait_seconds = wait_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "RdsEventsListener":
        self._thread = threading.Thread(target=self._run, name="rds-events", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the receive in flight (at most one long poll)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures, received = 0, False
        while not self._stopping.is_set():
            if not self._active():  # a standby or a replica shutting down leaves the messages to the leader
                self._stopping.wait(1.0)
                continue
            try:
                # The first receive does not wait: restores rely on events only once one succeeded.
                self.poll_once(self._wait_seconds if received else 0)
                if not received:
                    log.info("receiving RDS events from the events queue (long polls of %d s)", self._wait_seconds)
                failures, received = 0, True
            except NotLeading:
                continue
            except Exception as error:  # an outage or a missing permission: restores fall back to polling
                failures += 1
                self._wakeups.lost_queue()
                log.warning("could not read the RDS events queue (%s): waiting restores poll meanwhile",
                            type(error).__name__)
                self._stopping.wait(min(RETRY_SECONDS * 2 ** min(failures - 1, 10), RETRY_MAX_SECONDS))

    def poll_once(self, wait_seconds: int | None = None) -> int:
        """One (long) poll: wake the restores its events concern, then delete what it received. Returns how many
        restores were woken. A replica that stopped being active meanwhile (it is shutting down, or lost the
        lease) leaves what it received undeleted: the messages come back to the next leader after the queue's
        visibility timeout."""
        wait_seconds = self._wait_seconds if wait_seconds is None else wait_seconds
        answer = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=MAX_MESSAGES,
                                           WaitTimeSeconds=wait_seconds)
        # Healthy for about two long polls: one more may come back empty-handed without the wait being missed.
        self._wakeups.heard_from_queue(2 * self._wait_seconds + 5, self._account, self._region)
        messages = answer.get("Messages") or []
        if messages and not self._active():
            log.info("leaving %d received RDS event(s) in the queue for the next leader", len(messages))
            return 0
        woken = sum(self.handle(message) for message in messages)
        handles = [message["ReceiptHandle"] for message in messages if message.get("ReceiptHandle")]
        if handles:
            self.delete(handles)
        return woken

    def handle(self, message: dict[str, Any]) -> int:
        """Wake the restores one message concerns; a message that is no RDS event of ours is dropped."""
        event = parse_event(message.get("Body"))
        if event is None:
            log.debug("dropping message %s of the events queue: not an RDS cluster, instance or snapshot event",
                      message.get("MessageId"))
            metrics.record_rds_event("Dropped")
            return 0
        woken = self._wakeups.wake(event.source_arn)
        log.debug("%s %s for %s woke %d restore(s)", event.detail_type, event.event_id, event.source_arn, woken)
        metrics.record_rds_event("Woke" if woken else "Unwatched", woken)
        return woken

    def delete(self, receipt_handles: list[str]) -> None:
        """Delete received messages. Not audited (obs/audit.py): it changes nothing a restore made or owns, only
        the queue's bookkeeping, like acknowledging a delivery. A message whose deletion fails comes back after
        the queue's visibility timeout: a duplicate event, harmless."""
        entries = [{"Id": str(number), "ReceiptHandle": handle} for number, handle in enumerate(receipt_handles)]
        answer = self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
        for failed in answer.get("Failed") or []:
            log.debug("could not delete a message of the events queue (%s): it will come again", failed.get("Code"))
