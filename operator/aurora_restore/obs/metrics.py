"""Prometheus metrics: how many restores end how, how long they take and each phase takes, which restores are
under way and for how long, what slows them down, and how schedules and drills fare.

Labels carry phases, outcomes, CamelCase reasons, AWS service and operation names, and the namespace and name of a
schedule only — never a restore's name, an identifier or anything secret — so the series stay few and safe to
export. docs/observability.md lists every metric and the alerts built on them.
"""

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..api.phase import Phase

TRANSITIONS = Counter(
    "aurora_restore_phase_transitions_total", "Restores entering a phase.", ["phase"]
)
FINISHED = Counter(
    "aurora_restore_finished_total", "Restores that ended, by outcome and reason.", ["outcome", "reason"]
)
DURATION = Histogram(
    "aurora_restore_duration_seconds",
    "Time from acceptance to the end of a restore.",
    ["outcome"],
    buckets=(60, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600, 43200),
)
PHASE_DURATION = Histogram(
    "aurora_restore_phase_duration_seconds",
    "Time a restore spent in a phase, observed when the phase ends (from status.history).",
    ["phase"],
    # Preflight or Publishing take seconds, copying or restoring a large snapshot hours.
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 57600),
)
RETRIES = Counter(
    "aurora_restore_retries_total", "Steps retried after a retryable error (throttling, 5xx, busy).", ["reason"]
)

AWS_CALLS = Counter(
    "aurora_restore_aws_api_calls_total",
    "AWS API calls the operator made (each botocore invocation once, retries included in it), by outcome: "
    "Success or the AWS error code (Transport for no answer).",
    ["service", "operation", "outcome"],
)
RDS_EVENTS = Counter(
    "aurora_restore_rds_events_total",
    "Messages of the RDS events queue, by outcome: Woke (an event some waiting restore looked for), Unwatched (an "
    "event no restore waits on) or Dropped (not an RDS cluster, instance or snapshot event).",
    ["outcome"],
)
EVENT_WAKEUPS = Counter(
    "aurora_restore_event_wakeups_total", "Waiting restores an RDS event woke before their next poll was due."
)
AWS_BUDGET_WAITS = Counter(
    "aurora_restore_aws_budget_waits_total",
    "AWS request attempts that waited for a token of the request budget (aws/budget.py), by priority.",
    ["priority"],
)
AWS_BUDGET_WAIT_SECONDS = Counter(
    "aurora_restore_aws_budget_wait_seconds_total",
    "Seconds AWS request attempts spent waiting for a token of the request budget, by priority.",
    ["priority"],
)
SCHEDULE_LAST_SUCCESS = Gauge(
    "aurora_restore_schedule_last_success_timestamp_seconds",
    "When the newest successful run of an AuroraRestoreSchedule finished (Unix time).",
    ["namespace", "schedule"],
)
SCHEDULE_PERIOD = Gauge(
    "aurora_restore_schedule_period_seconds",
    "Seconds between two runs of an AuroraRestoreSchedule (the alert on missed runs compares against it).",
    ["namespace", "schedule"],
)
DRILL_RTO = Gauge(
    "aurora_restore_drill_rto_seconds",
    "The last drill's recovery time (creation to verification passed); schedule is empty for a drill of its own.",
    ["namespace", "schedule"],
)
DRILL_RPO = Gauge(
    "aurora_restore_drill_rpo_seconds",
    "The last drill's recovery point (snapshot time to restore start); schedule is empty for a drill of its own.",
    ["namespace", "schedule"],
)
DRILL_OBJECTIVE_MET = Gauge(
    "aurora_restore_drill_objective_met",
    "1 when the last drill passed and met its RTO and RPO objectives, 0 when it failed or missed one; schedule "
    "is empty for a drill of its own.",
    ["namespace", "schedule"],
)

_served_on: int | None = None


def serve(port: int) -> None:
    """Serve /metrics on `port` in a background thread (once per process: a second call is a no-op)."""
    global _served_on
    if _served_on is None:
        start_http_server(port)
        _served_on = port


def record_transition(phase: str) -> None:
    TRANSITIONS.labels(phase=phase).inc()


def record_finished(outcome: str, reason: str, seconds: float | None) -> None:
    FINISHED.labels(outcome=outcome, reason=reason).inc()
    if seconds is not None:
        DURATION.labels(outcome=outcome).observe(seconds)


def record_phase_end(phase: str, started_at: datetime, ended_at: datetime) -> None:
    """A restore left `phase`: observe how long it was there."""
    PHASE_DURATION.labels(phase=phase).observe(max(0.0, (ended_at - started_at).total_seconds()))


def record_retry(reason: str) -> None:
    RETRIES.labels(reason=reason).inc()


def record_aws_call(service: str, operation: str, outcome: str) -> None:
    AWS_CALLS.labels(service=service, operation=operation, outcome=outcome).inc()


def record_rds_event(outcome: str, woken: int = 0) -> None:
    RDS_EVENTS.labels(outcome=outcome).inc()
    if woken:
        EVENT_WAKEUPS.inc(woken)


def record_aws_budget_wait(priority: str, seconds: float) -> None:
    AWS_BUDGET_WAITS.labels(priority=priority).inc()
    AWS_BUDGET_WAIT_SECONDS.labels(priority=priority).inc(seconds)


def record_schedule_success(namespace: str, schedule: str, timestamp: float) -> None:
    SCHEDULE_LAST_SUCCESS.labels(namespace=namespace, schedule=schedule).set(timestamp)


def record_schedule_period(namespace: str, schedule: str, seconds: float) -> None:
    SCHEDULE_PERIOD.labels(namespace=namespace, schedule=schedule).set(seconds)


def forget_schedule(namespace: str, schedule: str) -> None:
    """A deleted schedule's series go away with it."""
    for gauge in (SCHEDULE_LAST_SUCCESS, SCHEDULE_PERIOD, DRILL_RTO, DRILL_RPO, DRILL_OBJECTIVE_MET):
        try:
            gauge.remove(namespace, schedule)
        except KeyError:
            pass
    with _drills_lock:
        _drill_finished_at.pop((namespace, schedule), None)


def record_drill(namespace: str, schedule: str, rto_seconds: float | None, rpo_seconds: float | None) -> None:
    if rto_seconds is not None:
        DRILL_RTO.labels(namespace=namespace, schedule=schedule).set(rto_seconds)
    if rpo_seconds is not None:
        DRILL_RPO.labels(namespace=namespace, schedule=schedule).set(rpo_seconds)


def record_drill_objective(namespace: str, schedule: str, met: bool) -> None:
    DRILL_OBJECTIVE_MET.labels(namespace=namespace, schedule=schedule).set(1 if met else 0)


# When the drill whose values the drill gauges of a (namespace, schedule) show finished (Unix time).
_drill_finished_at: dict[tuple[str, str], float] = {}
_drills_lock = threading.Lock()


def record_drill_result(namespace: str, schedule: str, finished_at: float, met: bool,
                        rto_seconds: float | None = None, rpo_seconds: float | None = None) -> bool:
    """A drill finished at `finished_at`: set the drill gauges, unless they show a drill that finished later.

    The gauges are in memory: a new leader re-reads every finished drill, in no particular order, and only the
    newest of each schedule may stay shown. Returns whether the gauges were set."""
    key = (namespace, schedule)
    with _drills_lock:
        if _drill_finished_at.get(key, float("-inf")) > finished_at:
            return False
        _drill_finished_at[key] = finished_at
        record_drill(namespace, schedule, rto_seconds, rpo_seconds)
        record_drill_objective(namespace, schedule, met)
    return True


# Phases a restore is counted in while it is in them, in the machine's order.
_UNFINISHED = tuple(str(phase) for phase in Phase if not phase.is_terminal)


@dataclass(frozen=True)
class _Driven:
    phase: str
    since: float  # Unix time the restore entered the phase


class RestoresInProgress(Collector):
    """The unfinished restores this replica drives, by "namespace/name": their phase and since when.

    Updated on every read of a restore (so an operator restart reports what it resumes from its first turn on)
    and every status write; a restore leaves it when it finishes, disappears, or its daemon stops. Exported at
    scrape time, per phase only, as aurora_restore_in_progress (how many) and aurora_restore_oldest_phase_age_seconds
    (how long the longest waiting one has been in that phase): the names stay out of the labels.
    """

    def __init__(self, clock=time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._restores: dict[str, _Driven] = {}

    def observe(self, namespace: str, name: str, status: Mapping[str, Any] | None) -> None:
        """Record the restore's phase from its status (a dict as stored); a finished or new one is forgotten."""
        phase = (status or {}).get("phase")
        if phase not in _UNFINISHED:
            self.forget(namespace, name)
            return
        since = _phase_started_at(status, phase)
        key = f"{namespace}/{name}"
        with self._lock:
            known = self._restores.get(key)
            if since is None:  # no history entry for it (a bounded, truncated history): keep what was known
                since = known.since if known and known.phase == phase else self._clock()
            self._restores[key] = _Driven(phase, since)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._restores.pop(f"{namespace}/{name}", None)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [self._in_progress_family(), self._oldest_age_family()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with self._lock:
            restores = list(self._restores.values())
        now = self._clock()
        in_progress, oldest_age = self._in_progress_family(), self._oldest_age_family()
        for phase in _UNFINISHED:  # each with 0 too: a graph or an alert sees the count drop to 0
            sinces = [restore.since for restore in restores if restore.phase == phase]
            in_progress.add_metric([phase], len(sinces))
            if sinces:
                oldest_age.add_metric([phase], max(0.0, now - min(sinces)))
        return [in_progress, oldest_age]

    @staticmethod
    def _in_progress_family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "aurora_restore_in_progress", "Unfinished restores this replica drives, by phase.", labels=["phase"])

    @staticmethod
    def _oldest_age_family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "aurora_restore_oldest_phase_age_seconds",
            "How long the restore that entered its phase first has been in it, per phase with any restore "
            "(computed at scrape time from status.history).",
            labels=["phase"],
        )


def _phase_started_at(status: Mapping[str, Any], phase: str) -> float | None:
    """When the restore entered its current phase: its newest history entry for that phase still open."""
    for entry in reversed(status.get("history") or []):
        if entry.get("phase") == phase and not entry.get("endedAt") and entry.get("startedAt"):
            try:
                return datetime.fromisoformat(entry["startedAt"]).timestamp()
            except (TypeError, ValueError):
                return None
    return None


IN_PROGRESS = RestoresInProgress()
REGISTRY.register(IN_PROGRESS)


def observe_restore(namespace: str, name: str, obj: Mapping[str, Any] | None) -> None:
    """A restore was read (None: it is gone) or its status written: track its phase, or forget it."""
    if obj is None:
        IN_PROGRESS.forget(namespace, name)
    else:
        IN_PROGRESS.observe(namespace, name, obj.get("status"))


def observe_status(namespace: str, name: str, status: Mapping[str, Any]) -> None:
    IN_PROGRESS.observe(namespace, name, status)


def forget_restore(namespace: str, name: str) -> None:
    """This replica no longer drives the restore (its daemon stopped, or it may be deleted now)."""
    IN_PROGRESS.forget(namespace, name)
