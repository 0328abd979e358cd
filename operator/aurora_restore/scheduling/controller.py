"""One turn of an AuroraRestoreSchedule: read it and its runs, decide (cron.py), create or delete runs, write status.

A run is an ordinary AuroraRestore named <schedule>-<minutes since the epoch of its scheduled time>, owned by the
schedule (ownerReference, controller), labelled dbrestore.io/schedule (and with the schedule's values of the labels
a shard's watch selector names, so the shard that runs the schedule watches its runs too) and annotated with its
scheduled time. Its name is the idempotency lock: a turn killed between creating the run and writing status finds
the run (by label) on the next turn and counts it as made, and a second create of the same name is refused
(AlreadyExists); an object of that name the schedule does not own is never counted (RunNameTaken: that due time is
skipped). The scheduled time is read from the name (immutable), the annotation is for people.

Each turn's status write is conditional on the resourceVersion it read (StatusConflict: the next turn starts
from a fresh read). Turns run only on the elected leader (Runtime.turn).
"""

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ..api import GROUP, KIND, VERSION
from ..api.models import AuroraRestoreStatus
from ..api.phase import Phase
from ..api.schedule import (
    SCHEDULE_KIND, SCHEDULE_LABEL, SCHEDULED_TIME_ANNOTATION, ActiveRun, AuroraRestoreScheduleSpec,
    AuroraRestoreScheduleStatus, ScheduleCondition,
)
from ..errors import NotLeading
from ..k8s.events import EventRecorder
from ..k8s.resources import StatusConflict
from ..k8s.schedules import AuroraRestoreSchedules, ScheduleRuns, api_status
from ..machine import owes_aftercare
from ..obs import metrics
from . import cron

SUCCESSFUL_PHASES = (Phase.SUCCEEDED, Phase.PLANNED)  # Planned: a dry run's successful end
FAILED_PHASES = (Phase.FAILED, Phase.CANCELLED)
# Wake this long after a due time, so the turn's clock is past it.
WAKE_MARGIN_SECONDS = 0.05


def run_name(schedule: str, scheduled: datetime) -> str:
    """<schedule>-<minutes since the epoch>, as a CronJob names its Jobs."""
    return f"{schedule}-{int(scheduled.timestamp()) // 60}"


def scheduled_from_name(name: str) -> datetime | None:
    """The scheduled time a run's name holds (its suffix: minutes since the epoch), or None."""
    suffix = name.rpartition("-")[2]
    if not (suffix.isascii() and suffix.isdigit()):
        return None
    try:
        return datetime.fromtimestamp(int(suffix) * 60, timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None


@dataclass(frozen=True)
class Run:
    """What a turn needs to know of one of the schedule's AuroraRestores."""

    name: str
    uid: str
    scheduled: datetime
    phase: Phase | None
    completed_at: datetime | None
    deleting: bool
    owes_work: bool  # a finished run that still owes aftercare (a drill's keepFor, keepPrevious, a notification)

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> "Run":
        metadata = obj["metadata"]
        status = AuroraRestoreStatus.model_validate(obj.get("status") or {})
        # The name's suffix, not the annotation: an annotation can be edited, a name cannot (the annotation is
        # information for people).
        scheduled = scheduled_from_name(metadata["name"]) or _parse_time(metadata["creationTimestamp"])
        return cls(
            name=metadata["name"], uid=metadata["uid"], scheduled=scheduled, phase=status.phase,
            completed_at=status.completed_at, deleting=bool(metadata.get("deletionTimestamp")),
            owes_work=status.phase is not None and status.phase.is_terminal and owes_aftercare(status),
        )

    @property
    def active(self) -> bool:
        return self.phase is None or not self.phase.is_terminal


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class Plan:
    """What one turn does, decided from the spec, the status, the runs and the clock."""

    message: str
    start: datetime | None = None  # create the run scheduled at this time
    replace: list[Run] = field(default_factory=list)  # unfinished runs to delete first (concurrencyPolicy Replace)
    prune: list[Run] = field(default_factory=list)  # finished runs beyond the history limits
    skip: cron.Skip | None = None
    wake_at: datetime | None = None  # when a turn is due (None: the poll interval)


def plan_turn(spec: AuroraRestoreScheduleSpec, status: AuroraRestoreScheduleStatus, runs: list[Run],
              name: str, created: datetime, now: datetime) -> Plan:
    """Decide one turn. The last time handled is the newest of the last run (status, or a run's annotation: status
    may not have been written) and the last skip; before any, the schedule's creation."""
    prune = runs_to_prune(runs, spec.successful_runs_history_limit, spec.failed_runs_history_limit)
    if spec.suspend:
        return Plan("suspended: no runs are created", prune=prune)
    handled = [t for t in (status.last_schedule_time, status.last_skipped_time, *(r.scheduled for r in runs)) if t]
    earliest = max(handled) if handled else created
    decision = cron.decide(spec.schedule, spec.zone, spec.parsed_windows, spec.starting_deadline_seconds,
                           earliest, now)
    if isinstance(decision, cron.Wait):
        if decision.scheduled is not None:
            return Plan(f"the run due at {_text(decision.scheduled)} waits for a window to open "
                        f"({', '.join(spec.windows)})", prune=prune, wake_at=decision.until)
        return Plan(f"next run at {_text(decision.until)}", prune=prune, wake_at=decision.until)
    if isinstance(decision, cron.Skip):
        return Plan(decision.message, prune=prune, skip=decision)
    active = [run for run in runs if run.active]
    if active and spec.concurrency_policy == "Forbid":
        return Plan(f"the run due at {_text(decision.scheduled)} waits for {', '.join(r.name for r in active)} to "
                    "finish (concurrencyPolicy Forbid)", prune=prune)
    replace = [run for run in active if not run.deleting] if spec.concurrency_policy == "Replace" else []
    return Plan(f"started {run_name(name, decision.scheduled)}, due at {_text(decision.scheduled)}",
                start=decision.scheduled, replace=replace, prune=prune)


def runs_to_prune(runs: list[Run], successful_limit: int, failed_limit: int) -> list[Run]:
    """Finished runs beyond the history limits, oldest scheduled first. Runs already being deleted and runs that
    still owe aftercare (a drill within keepFor, a notification not yet delivered) are left alone."""
    finished = [r for r in runs if not r.deleting and not r.owes_work and r.phase is not None]
    prune = []
    for phases, limit in ((SUCCESSFUL_PHASES, successful_limit), (FAILED_PHASES, failed_limit)):
        kept = sorted((r for r in finished if r.phase in phases), key=lambda r: r.scheduled, reverse=True)
        prune += kept[limit:]
    return sorted(prune, key=lambda r: r.scheduled)


def _text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- conditions --------------------------------------------------------------------------------------------------


def schedule_conditions(invalid: tuple[str, str] | None, suspended: bool, generation: int | None, now: datetime,
                        previous: list[ScheduleCondition],
                        refused: tuple[str, str] | None = None) -> list[ScheduleCondition]:
    """Ready, Suspended and InvalidSchedule; lastTransitionTime moves only when a condition's status changes.
    `refused`: the spec is valid but the apiserver refused its run (a quota, RBAC, a terminating namespace)."""
    if invalid is not None:
        ready = ("False", invalid[0], invalid[1])
    elif refused is not None:
        ready = ("False", refused[0], refused[1])
    elif suspended:
        ready = ("False", "Suspended", "spec.suspend is true")
    else:
        ready = ("True", "Scheduled", "runs are created on schedule")
    wanted = {
        "Ready": ready,
        "Suspended": ("True", "Suspended", "spec.suspend is true") if suspended else ("False", "NotSuspended", ""),
        "InvalidSchedule": ("True", invalid[0], invalid[1]) if invalid else ("False", "Valid", ""),
    }
    before = {c.type: c for c in previous}
    result = []
    for kind, (status, reason, message) in wanted.items():
        old = before.get(kind)
        changed = old is None or old.status != status
        result.append(ScheduleCondition(
            type=kind, status=status, reason=reason, message=message, observed_generation=generation,
            last_transition_time=now if changed else old.last_transition_time,
        ))
    return result


INVALID_REASONS = {"schedule": "InvalidCron", "timeZone": "InvalidTimeZone", "windows": "InvalidWindow"}


def describe_invalid_spec(error: ValidationError) -> tuple[str, str]:
    """(reason, message) for a spec that does not validate; values are not echoed (only the fields and why)."""
    problems, reason = [], None
    for item in error.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        first = str(item["loc"][0]) if item["loc"] else ""
        reason = reason or INVALID_REASONS.get(first, "InvalidTemplate" if first in ("", "template") else "InvalidSpec")
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"spec.{location}: {message}" if location else message)
    return reason or "InvalidSpec", "invalid schedule: " + "; ".join(problems)


# --- one turn ----------------------------------------------------------------------------------------------------


@dataclass
class ScheduleGateways:
    """The Kubernetes side of a turn."""

    schedules: AuroraRestoreSchedules
    runs: ScheduleRuns
    events: EventRecorder
    poll_seconds: float
    shard_labels: tuple[str, ...] = ()  # the label keys of this shard's watch selector, copied onto each run

    @classmethod
    def create(cls, api_client, events: EventRecorder, poll_seconds: float,
               watch_label_selector: str | None = None) -> "ScheduleGateways":
        return cls(AuroraRestoreSchedules(api_client), ScheduleRuns(api_client), events, poll_seconds,
                   selector_keys(watch_label_selector))


class RunRefused(Exception):
    """The apiserver refused a run's spec (a rule the models do not know): the template is at fault."""


class RunForbidden(Exception):
    """The apiserver refused to create a run for another reason (403: a ResourceQuota, RBAC, a terminating
    namespace; a 409 other than AlreadyExists): retried at the next turn, said in status and one Event."""


class RunNameTaken(Exception):
    """An AuroraRestore not owned by this schedule has the run's name: that due time is skipped."""


def schedule_turn(gateways: ScheduleGateways, namespace: str, name: str, logger: logging.Logger,
                  now: datetime | None = None) -> float | None:
    """Read, decide, act, write; returns the seconds until the next turn, or None once the schedule is gone."""
    now = now or datetime.now(timezone.utc)
    obj = gateways.schedules.get(namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None
    metadata = obj["metadata"]
    status = AuroraRestoreScheduleStatus.model_validate(obj.get("status") or {})
    runs = [Run.from_object(o) for o in gateways.runs.list(namespace, name) if _owned_by(o, metadata["uid"])]
    successful = [r.completed_at for r in runs if r.phase in SUCCESSFUL_PHASES and r.completed_at]
    last_success = max([t for t in (status.last_successful_time, *successful) if t], default=None)
    if last_success is not None:  # every turn: the gauge survives restarts and is right after a status conflict
        metrics.record_schedule_success(namespace, name, last_success.timestamp())
    try:
        spec = AuroraRestoreScheduleSpec.model_validate(obj.get("spec") or {})
    except ValidationError as error:
        _write_invalid(gateways, obj, status, runs, describe_invalid_spec(error), last_success, now, logger)
        return gateways.poll_seconds
    _export_period(namespace, name, spec, now)
    plan = plan_turn(spec, status, runs, name, _parse_time(metadata["creationTimestamp"]), now)

    for run in plan.prune:
        logger.info("deleting %s: beyond the history limits", run.name)
        gateways.runs.delete(namespace, run.name)
    for run in plan.replace:
        logger.info("deleting %s: concurrencyPolicy Replace", run.name)
        gateways.runs.delete(namespace, run.name)
        gateways.events.record(obj, "Normal", "RunReplaced", f"deleted (cancelled) {run.name}: concurrencyPolicy "
                               "Replace and a newer run is due")
    active = [ActiveRun(name=r.name, uid=r.uid) for r in runs if r.active]
    last_schedule = max([t for t in (status.last_schedule_time, *(r.scheduled for r in runs)) if t], default=None)
    if plan.start is not None:
        try:
            run = _create_run(gateways, obj, spec, plan.start, logger)
        except RunRefused as error:
            _write_invalid(gateways, obj, status, runs, ("InvalidTemplate", str(error)), last_success, now, logger)
            return gateways.poll_seconds
        except RunForbidden as error:
            _write_invalid(gateways, obj, status, runs, ("RunRefused", str(error)), last_success, now, logger,
                           spec_invalid=False)
            return gateways.poll_seconds
        except RunNameTaken as error:
            plan.skip = cron.Skip(plan.start, "RunNameTaken", str(error))
            plan.message, plan.start = str(error), None
        else:
            active.append(ActiveRun(name=run["metadata"]["name"], uid=run["metadata"]["uid"]))
            last_schedule = plan.start
    following = cron.next_time(spec.schedule, spec.zone, now) if not spec.suspend else None
    new = AuroraRestoreScheduleStatus(
        observed_generation=metadata.get("generation"),
        last_schedule_time=last_schedule,
        last_successful_time=last_success,
        last_skipped_time=plan.skip.scheduled if plan.skip else status.last_skipped_time,
        next_schedule_time=following,
        active=active,
        conditions=schedule_conditions(None, spec.suspend, metadata.get("generation"), now, status.conditions),
        message=plan.message,
    )
    _write(gateways, obj, status, new)
    if plan.skip is not None:
        logger.warning("%s", plan.skip.message)
        gateways.events.record(obj, "Warning", plan.skip.reason, plan.skip.message)
    wake_at = plan.wake_at or following
    if plan.start is not None or plan.skip is not None:
        return 0.0  # look again at once: the status just written is the next turn's start
    if wake_at is None:
        return gateways.poll_seconds
    return max(0.0, min(gateways.poll_seconds, (wake_at - now).total_seconds() + WAKE_MARGIN_SECONDS))


def _export_period(namespace: str, name: str, spec: AuroraRestoreScheduleSpec, now: datetime) -> None:
    """The period the AuroraRestoreScheduleMissed alert compares the last success with; none while suspended (a
    suspended schedule misses nothing)."""
    if spec.suspend:
        try:
            metrics.SCHEDULE_PERIOD.remove(namespace, name)
        except KeyError:
            pass
        return
    metrics.record_schedule_period(namespace, name, cron.period_seconds(spec.schedule, spec.zone, now))


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Only the runs of this schedule object (not of an earlier one of the same name, still being collected)."""
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def selector_keys(selector: str | None) -> tuple[str, ...]:
    """The label keys a Kubernetes label selector tests ("shard=a,tier in (x,y),!legacy": shard, tier, legacy)."""
    requirements = re.split(r",(?![^()]*\))", selector or "")  # commas outside the parentheses of `in (...)`
    found = (re.match(r"\s*!?\s*([A-Za-z0-9][-A-Za-z0-9_./]*)", requirement) for requirement in requirements)
    return tuple(dict.fromkeys(match.group(1) for match in found if match))


def run_body(schedule: dict[str, Any], spec: AuroraRestoreScheduleSpec, scheduled: datetime,
             shard_labels: tuple[str, ...] = ()) -> dict[str, Any]:
    """The AuroraRestore of the run scheduled at `scheduled`, owned by the schedule (the garbage collector deletes
    it with the schedule). It carries the schedule's values of `shard_labels` (the keys of the shard's watch
    selector): a run matches the selector exactly when its schedule does. No other label is copied (a GitOps
    tool's tracking label would make it prune the runs)."""
    metadata = schedule["metadata"]
    labels = {key: value for key, value in (metadata.get("labels") or {}).items() if key in shard_labels}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": run_name(metadata["name"], scheduled),
            "namespace": metadata["namespace"],
            "labels": {**labels, SCHEDULE_LABEL: metadata["name"]},
            "annotations": {SCHEDULED_TIME_ANNOTATION: _text(scheduled)},
            "ownerReferences": [{
                "apiVersion": f"{GROUP}/{VERSION}", "kind": SCHEDULE_KIND, "name": metadata["name"],
                "uid": metadata["uid"], "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": spec.run_spec(scheduled),
    }


def _create_run(gateways: ScheduleGateways, schedule: dict[str, Any], spec: AuroraRestoreScheduleSpec,
                scheduled: datetime, logger: logging.Logger) -> dict[str, Any]:
    body = run_body(schedule, spec, scheduled, gateways.shard_labels)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        created = gateways.runs.create(namespace, body)
    except ApiException as error:
        if error.status in (400, 422):
            raise RunRefused(f"the apiserver refused the run {name}: {_api_message(error)}") from None
        if error.status in (403, 409):  # the apiserver's message names the quota or rule; it holds no secret
            raise RunForbidden(f"the apiserver refused to create the run {name} due at {_text(scheduled)} "
                               f"({error.status}): {_api_message(error)}; retrying") from None
        raise
    if created is None:  # made by an earlier turn that did not get to write status, or someone else's
        existing = gateways.runs.get(namespace, name)
        if existing is None:
            raise StatusConflict(f"{namespace}/{name} existed a moment ago and is gone: looking again")
        if not _owned_by(existing, schedule["metadata"]["uid"]):
            raise RunNameTaken(f"an AuroraRestore {name} not created by this schedule exists: the run due at "
                               f"{_text(scheduled)} is skipped")
        logger.info("%s exists already: counted as the run due at %s", name, _text(scheduled))
        return existing
    logger.info("created %s, the run due at %s", name, _text(scheduled))
    gateways.events.record(schedule, "Normal", "RunCreated", f"created AuroraRestore {name}, the run due at "
                           f"{_text(scheduled)}")
    return created


def _api_message(error: ApiException) -> str:
    return api_status(error).get("message") or str(error.reason)


def _write_invalid(gateways: ScheduleGateways, obj: dict[str, Any], status: AuroraRestoreScheduleStatus,
                   runs: list[Run], invalid: tuple[str, str], last_success: datetime | None, now: datetime,
                   logger: logging.Logger, spec_invalid: bool = True) -> None:
    """An invalid spec, or a run the apiserver refuses (spec_invalid False), creates no runs: say why in status
    and, once per new problem, in a Warning Event."""
    metadata = obj["metadata"]
    reason, message = invalid
    new = status.model_copy(update={
        "observed_generation": metadata.get("generation"),
        "last_successful_time": last_success,
        "next_schedule_time": None if spec_invalid else status.next_schedule_time,
        "active": [ActiveRun(name=r.name, uid=r.uid) for r in runs if r.active],
        "conditions": schedule_conditions(invalid if spec_invalid else None,
                                          bool((obj.get("spec") or {}).get("suspend")), metadata.get("generation"),
                                          now, status.conditions, refused=None if spec_invalid else invalid),
        "message": message,
    })
    _write(gateways, obj, status, new)
    if status.message != message:
        logger.warning("%s", message)
        gateways.events.record(obj, "Warning", reason, message)


def _write(gateways: ScheduleGateways, obj: dict[str, Any], old: AuroraRestoreScheduleStatus,
           new: AuroraRestoreScheduleStatus) -> None:
    """Write status when it changed (None values remove keys), conditional on the resourceVersion read."""
    old_json = old.model_dump(mode="json", by_alias=True)
    new_json = new.model_dump(mode="json", by_alias=True)
    if old_json == new_json:
        return
    metadata = obj["metadata"]
    gateways.schedules.patch_status(metadata["namespace"], metadata["name"], new_json, metadata["resourceVersion"])


# --- the daemon's loop -------------------------------------------------------------------------------------------


async def run_schedule(runtime, namespace: str, name: str, stopped, logger: logging.Logger) -> None:
    """Take turns until the schedule is gone or the operator stops: sleep until the next due time, at most the
    poll interval (a changed spec is seen within it). Only the leader takes turns; errors are retried with
    backoff, never a crash loop."""
    from ..driver import backoff, is_kubernetes_outage

    poll = runtime.settings.schedule_poll_seconds
    gateways = ScheduleGateways.create(runtime.api_client, runtime.events, poll,
                                       runtime.settings.watch_label_selector)
    errors_in_a_row = 0
    while not stopped:
        delay: float | None = poll
        try:
            with runtime.turn(namespace, f"schedule:{name}") as granted:
                if granted:
                    delay = await asyncio.to_thread(schedule_turn, gateways, namespace, name, logger)
                    errors_in_a_row = 0
        except StatusConflict:
            logger.info("the AuroraRestoreSchedule changed since it was read: reading it again")
            delay = 0
        except NotLeading as error:
            logger.warning("%s", error)
        except Exception as error:  # an outage or a bug must not kill the daemon
            errors_in_a_row += 1
            if is_kubernetes_outage(error):
                logger.warning("the Kubernetes API is unreachable or failing (%s), retrying", type(error).__name__)
            else:
                logger.exception("unexpected error, retrying: %s", type(error).__name__)
            delay = min(poll, backoff(runtime.settings, errors_in_a_row, runtime.rng))
        if delay is None:
            return
        if delay > 0:
            await stopped.wait(delay)
