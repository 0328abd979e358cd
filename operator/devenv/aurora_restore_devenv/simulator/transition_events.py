"""The end of every RDS transition, published as the RDS event AWS sends to EventBridge.

Statuses stay computed when they are read (rds_lifecycle.py). `TransitionEvents` is told of every
transition the lifecycle starts; a background thread notices, every `POLL_SECONDS`, the ones that
are over by the simulator's clock (the same computation a status read makes), records each end
(`ended()`, for the control API) and publishes its RDS event with moto's EventBridge `put_events`
in the resource's own account and region, in-process. moto's EventBridge delivers an event to the
SQS queues that are targets of the rules it matches (`Rule.send_to_targets`), as AWS does; an
EventBridge rule with an SQS target is therefore all a client needs to receive them.

The event is the one AWS documents: source "aws.rds", detail-type "RDS DB Cluster Event" (or
Instance, Cluster Snapshot), resources [arn], detail {EventCategories, SourceType, SourceArn,
SourceIdentifier, Date, Message, EventID} (Aurora User Guide, "Examples of events for Aurora").
A transition AWS publishes no event for is recorded with `event_id` None and publishes nothing.

AWS says RDS emits events on a best effort basis, possibly out of sequence or missing (Aurora
User Guide, "Monitoring Amazon Aurora events"). Tests lose one on purpose with `enabled = False`
(the end is still recorded) and duplicate one with `republish_last()`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from moto.rds.models import DBCluster, DBClusterSnapshot, DBInstance

from .rds_lifecycle import Transition
from .settings import SimulatorSettings

log = logging.getLogger(__name__)

#: How often the thread looks for transitions that are over: an event follows its end within this.
POLL_SECONDS = 0.05

#: (kind, detail-type, SourceType) of the model classes whose transitions have events.
SOURCES: tuple[tuple[type, str, str, str], ...] = (
    (DBClusterSnapshot, "cluster-snapshot", "RDS DB Cluster Snapshot Event", "CLUSTER_SNAPSHOT"),
    (DBCluster, "cluster", "RDS DB Cluster Event", "CLUSTER"),
    (DBInstance, "instance", "RDS DB Instance Event", "DB_INSTANCE"),
)


@dataclass(frozen=True)
class RdsEvent:
    """One entry of the user guide's event tables: ID, category and message."""

    event_id: str
    category: str
    message: str


# Aurora User Guide, "Amazon RDS event categories and event messages for Aurora" (one line each, paraphrased):
# RDS-EVENT-0170, cluster, creation: the DB cluster was created.
CLUSTER_CREATED = RdsEvent("RDS-EVENT-0170", "creation", "DB cluster created")
# RDS-EVENT-0171, cluster, deletion: the DB cluster was deleted.
CLUSTER_DELETED = RdsEvent("RDS-EVENT-0171", "deletion", "DB cluster deleted")
# RDS-EVENT-0172, notification: the DB cluster was renamed from its old name to its new one.
CLUSTER_RENAMED = RdsEvent("RDS-EVENT-0172", "notification", "Renamed cluster from {old} to {new}")
# RDS-EVENT-0016, cluster, configuration change: the master credentials were reset.
CLUSTER_CREDENTIALS_RESET = RdsEvent("RDS-EVENT-0016", "configuration change", "Reset master credentials")
# RDS-EVENT-0005, instance, creation: the DB instance was created.
INSTANCE_CREATED = RdsEvent("RDS-EVENT-0005", "creation", "DB instance created")
# RDS-EVENT-0003, instance, deletion: the DB instance was deleted.
INSTANCE_DELETED = RdsEvent("RDS-EVENT-0003", "deletion", "DB instance deleted")
# RDS-EVENT-0075, cluster snapshot, backup: a manual cluster snapshot was created.
MANUAL_SNAPSHOT_CREATED = RdsEvent("RDS-EVENT-0075", "backup", "Manual cluster snapshot created")
# RDS-EVENT-0169, cluster snapshot, backup: an automated cluster snapshot was created.
AUTOMATED_SNAPSHOT_CREATED = RdsEvent("RDS-EVENT-0169", "backup", "Automated cluster snapshot created")
# No event: the end of a cluster snapshot copy (the cluster snapshot table has none; RDS-EVENT-0060/0061 are
# DB snapshot events), and a creation that ends in a failure status (the simulator's next-create fault).


def event_for(kind: str, obj: Any, transition: Transition) -> RdsEvent | None:
    """The RDS event AWS publishes when `transition` of `obj` ends, or None."""
    first, final = transition.phases[0], transition.final
    if kind == "cluster":
        if final is None:
            return CLUSTER_DELETED
        if final != "available":
            return None
        return {
            "creating": CLUSTER_CREATED,
            "renaming": CLUSTER_RENAMED,
            "resetting-master-credentials": CLUSTER_CREDENTIALS_RESET,
        }.get(first)
    if kind == "instance":
        if final is None:
            return INSTANCE_DELETED
        return INSTANCE_CREATED if (first, final) == ("creating", "available") else None
    if kind == "cluster-snapshot" and (first, final) == ("creating", "available"):
        return AUTOMATED_SNAPSHOT_CREATED if obj.snapshot_type == "automated" else MANUAL_SNAPSHOT_CREATED
    return None


def source_of(obj: Any) -> tuple[str, str, str] | None:
    """(kind, detail-type, SourceType) of a moto model object, or None for one without events."""
    for cls, kind, detail_type, source_type in SOURCES:
        if isinstance(obj, cls):
            return kind, detail_type, source_type
    return None


@dataclass
class _Watched:
    obj: Any
    transition: Transition
    kind: str
    detail_type: str
    source_type: str
    #: Over by the clock but held back by a hold (its end is when it is let go).
    held: bool = False


class TransitionEvents:
    """Watches started transitions; a thread records and publishes their ends."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        #: False: ends are recorded but no event is published (a lost event, on purpose).
        self.enabled = True
        #: Predicates that hold back the end of a transition to `available` that is over by the clock
        #: (a cluster whose database server is starting: its status still shows `creating`).
        self.holds: list[Callable[[Any], bool]] = []
        #: Predicates that make such a transition end in `failed` instead, with no event (a database
        #: server that did not start: its status shows `failed`).
        self.failures: list[Callable[[Any], bool]] = []
        self._lock = threading.Lock()
        #: Counts resets: the ends a pass found before a reset are neither recorded nor published after it.
        self._generation = 0
        self._watched: list[_Watched] = []
        self._ended: list[dict[str, Any]] = []
        self._last_published: tuple[str, str, dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the lifecycle's side ----------------------------------------------------------------

    def watch(self, obj: Any, transition: Transition) -> None:
        """Called when `obj` enters `transition`; one that replaces a running transition (a deletion
        while creating) ends that one without an end of its own, as its final status never shows."""
        source = source_of(obj)
        if source is None:
            return
        delay = self.settings.delay
        with self._lock:
            self._watched = [
                watched
                for watched in self._watched
                if watched.obj is not obj or watched.transition.fraction_done(delay) >= 1.0
            ]
            self._watched.append(_Watched(obj, transition, *source))

    # -- the thread -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rds-transition-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.publish_ended()
            except Exception:  # the thread must outlive one bad object
                log.exception("recording RDS transition ends failed")

    def publish_ended(self) -> list[dict[str, Any]]:
        """Record and publish every watched transition that is over; returns their records."""
        delay = self.settings.delay
        over: list[_Watched] = []
        with self._lock:
            generation = self._generation
            running = []
            for watched in self._watched:
                if watched.transition.fraction_done(delay) < 1.0:
                    running.append(watched)
                elif watched.transition.final == "available" and any(hold(watched.obj) for hold in self.holds):
                    watched.held = True
                    running.append(watched)
                else:
                    over.append(watched)
            self._watched = running
        records = []
        for watched in sorted(over, key=lambda item: item.transition.started_at):
            record, event = self._record(watched, delay)
            with self._lock:
                if self._generation != generation:  # reset meanwhile: these objects are gone
                    break
                self._ended.append(record)
            if event is not None and self.enabled:
                try:
                    self._publish(record["account"], record["region"], event)
                except Exception:  # one bad target must not lose the other events
                    log.exception("publishing %s of %s failed", record["event_id"], record["arn"])
            records.append(record)
        return records

    def _record(self, watched: _Watched, delay: float) -> tuple[dict[str, Any], dict[str, Any] | None]:
        obj, transition = watched.obj, watched.transition
        # The clock's end; an end held back (a database server starting) ends when it was let go.
        ended_at = time.time() if watched.held else transition.started_at_epoch + delay
        failed = transition.final == "available" and any(fails(obj) for fails in self.failures)
        rds_event = None if failed else event_for(watched.kind, obj, transition)
        identifier, arn = obj.resource_id, obj.arn
        record = {
            "kind": watched.kind,
            "identifier": identifier,
            "arn": arn,
            "account": obj.account_id,
            "region": obj.region,
            "from": transition.phases[0],
            "phases": list(transition.phases),
            "to": "failed" if failed else transition.final,
            "started_at": transition.started_at_epoch,
            "ended_at": ended_at,
            "event_id": rds_event.event_id if rds_event is not None else None,
            "published": rds_event is not None and self.enabled,
        }
        if rds_event is None:
            return record, None
        message = rds_event.message.format(old=transition.previous_identifier, new=identifier)
        event = {
            "Source": "aws.rds",
            "DetailType": watched.detail_type,
            "Resources": [arn],
            "Time": ended_at,
            "Detail": json.dumps(
                {
                    "EventCategories": [rds_event.category],
                    "SourceType": watched.source_type,
                    "SourceArn": arn,
                    "Date": _iso_milliseconds(ended_at),
                    "Message": message,
                    "SourceIdentifier": identifier,
                    "EventID": rds_event.event_id,
                }
            ),
        }
        return record, event

    def _publish(self, account: str, region: str, event: dict[str, Any]) -> None:
        from moto.events.models import events_backends

        events_backends[account][region].put_events([event])
        with self._lock:
            self._last_published = (account, region, event)

    # -- the control API's side -----------------------------------------------------------------

    def ended(self) -> list[dict[str, Any]]:
        """Every recorded end, oldest first."""
        with self._lock:
            return sorted(self._ended, key=lambda record: record["ended_at"])

    def clear(self) -> int:
        with self._lock:
            cleared, self._ended = len(self._ended), []
        return cleared

    def republish_last(self) -> dict[str, Any] | None:
        """Publish the last published event once more (a duplicate, as EventBridge may deliver);
        returns its detail, or None when nothing was published yet."""
        with self._lock:
            last = self._last_published
        if last is None:
            return None
        account, region, event = last
        self._publish(account, region, event)
        return json.loads(event["Detail"])

    def reset(self) -> None:
        """Forget watched transitions (moto's objects are gone), recorded ends and the last event."""
        with self._lock:
            self._watched, self._ended, self._last_published = [], [], None
            self._generation += 1
        self.enabled = True


def install_account_in_delivered_events() -> None:
    """moto's EventBridge delivers a target the event without its "account" field (its default input
    template leaves it out); AWS delivers the whole event, account included (EventBridge User Guide,
    "Amazon EventBridge events": account is a top-level field of every event)."""
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"source": "<source>",', '"source": "<source>", "account": "<account>",'
        )


def database_not_ready(obj: Any) -> bool:
    """A cluster whose database server is still starting, or a snapshot whose dump is still being
    written: their statuses still show `creating` after the lifecycle's transition (databases/)."""
    from .databases.rds_actions import database_of, dump_of

    if isinstance(obj, DBCluster):
        database = database_of(obj)
        return database is not None and database.state == "starting"
    if isinstance(obj, DBClusterSnapshot):
        dump = dump_of(obj)
        return dump is not None and not dump.written.done()
    return False


def database_failed(obj: Any) -> bool:
    """A cluster whose database server failed to start, or a snapshot whose dump failed: their
    statuses show `failed` after the lifecycle's transition (databases/)."""
    from .databases.rds_actions import database_of, dump_of

    if isinstance(obj, DBCluster):
        database = database_of(obj)
        return database is not None and database.state == "failed"
    if isinstance(obj, DBClusterSnapshot):
        dump = dump_of(obj)
        return dump is not None and dump.written.done() and dump.written.exception() is not None
    return False


def _iso_milliseconds(epoch: float) -> str:
    """2018-10-06T12:26:13.882Z, the form of the detail's Date."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
