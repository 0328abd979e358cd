"""Drives one AuroraRestore: read it, run one step of the machine, persist the outcome, sleep, repeat.

This is the boundary between the phase machine and the outside world: it builds the step's context (gateways,
lease), writes status only when it changed, posts an Event and logs one line per transition, and turns any
unexpected error into a logged retry with backoff so a bug never becomes a crash loop.

A turn starts only while this replica leads and is not shutting down (Runtime.turn), and its status write is
conditional on the resourceVersion it read: when the object changed meanwhile, the turn's outcome is dropped and
the next turn starts at once from a fresh read (every step is idempotent, so repeating it is safe).

Between turns the daemon sleeps for the poll interval, or, with an RDS events queue (AURORA_RESTORE_EVENTS_QUEUE_URL,
docs/scale.md), for the longer safety interval when the turn only waits on AWS resources in transition: an RDS
event for one of them (aws/rds_events.py, wakeups.py) ends the sleep at once. Events are hints: the safety
interval still finishes a restore whose event was lost.
"""

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import boto3
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from .api import GROUP
from .api.models import AuroraRestoreSpec, AuroraRestoreStatus, CancellationStatus
from .api.schedule import SCHEDULE_LABEL  # set by a schedule on the restores it creates
from .api.phase import Phase
from .aws import transitions
from .aws.clients import AwsClients
from .aws.rds_events import QueueAddress, RdsEventsListener, long_poll_seconds
from .aws.side import AwsSide
from .db.connection import Timeouts, Tls
from .k8s.config_maps import ConfigMaps
from .k8s.events import EventRecorder
from .k8s.jobs import HookJobs
from .k8s.leases import TargetLease
from .k8s.policies import ClusterPolicies
from .errors import NotLeading
from .k8s.resources import AuroraRestores, StatusConflict
from .k8s.secrets import Secrets
from .k8s.share_leases import ShareLease
from .machine import accept, apply_outcome, has_work, left_in_aws, run_aftercare, run_step, ttl_expiry, worth_writing
from .notify.notifier import NotificationSettings, Notifier
from .obs import audit, metrics
from .settings import Settings
from .steps.context import RestoreContext, restored_identifier
from .steps.deletion import delete_restored_cluster
from .steps.drill import missed_objective
from .steps.notify import unsendable_notifications
from .steps.outcomes import Advance, Fail, Outcome, Wait
from .wakeups import Wakeups

# Set to "true" on an AuroraRestore to let the operator remove its finalizer without cleaning up in AWS.
SKIP_CLEANUP_ANNOTATION = f"{GROUP}/skip-cleanup"


class Stopped(Protocol):
    """kopf's daemon stop flag: truthy once stopping; `await wait(timeout)` sleeps until then or the timeout."""

    def __bool__(self) -> bool: ...

    async def wait(self, timeout: float | None = None) -> object: ...


@dataclass
class Runtime:
    """What the operator builds once at start-up and shares between restores."""

    settings: Settings
    aws: AwsClients
    restores: AuroraRestores
    events: EventRecorder
    api_client: client.ApiClient
    policies: ClusterPolicies
    # "namespace/name" of the restores whose daemon is in a turn right now (reading, stepping, writing): the
    # deletion handler waits for that turn, so a cancel never races an AWS call in flight.
    stepping: set[str] = field(default_factory=set)
    stepping_lock: threading.Lock = field(default_factory=threading.Lock)
    # Draws the jitter of backoffs and first turns; tests pass a seeded one.
    rng: random.Random = field(default_factory=random.Random)
    # Whether this replica holds the leader Lease (run.py passes the elector's); without election, always. It
    # gates turns and fences every AWS call (aws/clients.py).
    leading: Callable[[], bool] = lambda: True
    # Whether new turns may start (false from SIGTERM on); turns in flight still finish their calls.
    accepting: Callable[[], bool] = lambda: True
    # Set once on shutdown or a lost lease: no turn starts after it.
    draining: bool = False
    # Which waiting restores an RDS event wakes; fed by the events listener when a queue is set (docs/scale.md).
    wakeups: Wakeups = field(default_factory=Wakeups)
    events_listener: RdsEventsListener | None = None

    @contextmanager
    def turn(self, namespace: str, name: str, kind: str = "step"):
        """Yields True and counts the turn as in flight, or yields False when this replica may not act now (it
        does not lead, or it is shutting down) or the restore's other kind of turn is in flight (a daemon's step
        and the deletion handler's cancel never overlap). Checked and counted under one lock, so drain() never
        misses a turn that is about to start."""
        step_key, cancel_key = f"{namespace}/{name}", f"{namespace}/{name}#cancel"
        key, other = (step_key, cancel_key) if kind == "step" else (cancel_key, step_key)
        with self.stepping_lock:
            granted = not self.draining and other not in self.stepping and self.accepting() and self.leading()
            if granted:
                self.stepping.add(key)
        try:
            yield granted
        finally:
            if granted:
                with self.stepping_lock:
                    self.stepping.discard(key)

    def in_turn(self, namespace: str, name: str) -> bool:
        with self.stepping_lock:
            return f"{namespace}/{name}" in self.stepping

    def listen_for_rds_events(self) -> None:
        """With AURORA_RESTORE_EVENTS_QUEUE_URL, start the thread that reads the queue and wakes restores; it
        reads only while turns may start here (leading, not shutting down). The queue's region comes from its
        URL, else from the AWS default region (a URL of one's own endpoint names none)."""
        url = self.settings.events_queue_url
        if not url or self.events_listener is not None:
            return
        region = QueueAddress.parse(url).region or boto3.session.Session().region_name
        if not region:
            raise ValueError("AURORA_RESTORE_EVENTS_QUEUE_URL names no region: set AWS_REGION")
        self.events_listener = RdsEventsListener(
            self.aws.client("sqs", region), url, self.wakeups,
            active=lambda: not self.draining and self.accepting() and self.leading(),
            wait_seconds=long_poll_seconds(self.settings.aws_read_timeout_seconds), region=region,
        ).start()

    def stop_taking_turns(self) -> None:
        with self.stepping_lock:
            self.draining = True

    def in_flight(self) -> int:
        with self.stepping_lock:
            return len(self.stepping)

    def drain(self, timeout: float, while_waiting: Callable[[], None] = lambda: None) -> int:
        """Start no new turn; wait up to `timeout` seconds for the turns in flight to end (their AWS calls
        finish and their outcome is written), calling `while_waiting` about every 50 ms (run.py renews the
        leader Lease there, so no standby takes over meanwhile). Returns how many were still in flight."""
        self.stop_taking_turns()
        deadline = time.monotonic() + timeout
        while True:
            left = self.in_flight()
            if not left or time.monotonic() >= deadline:
                return left
            while_waiting()
            time.sleep(0.05)

    @classmethod
    def create(
        cls, settings: Settings, api_client: client.ApiClient, leading: Callable[[], bool] | None = None,
        accepting: Callable[[], bool] | None = None,
    ) -> "Runtime":
        return cls(
            settings=settings,
            aws=AwsClients(pool_size=settings.worker_threads, connect_timeout=settings.aws_connect_timeout_seconds,
                           read_timeout=settings.aws_read_timeout_seconds, replica=settings.pod_name,
                           leading=leading, requests_per_second=settings.aws_requests_per_second,
                           request_burst=settings.aws_request_burst,
                           batch_window=settings.aws_batch_window_seconds if settings.aws_batch_describes else None),
            restores=AuroraRestores(api_client),
            events=EventRecorder(api_client, settings.operator_id),
            api_client=api_client,
            policies=ClusterPolicies(api_client),
            leading=leading or (lambda: True),
            accepting=accepting or (lambda: True),
        )


async def drive(runtime: Runtime, namespace: str, name: str, stopped: Stopped, logger: logging.Logger) -> None:
    """Drive the restore (_drive_turns); however that ends, this replica no longer drives it, so it leaves the
    in-progress metrics (while a deletion's cancel turns run, they count it again) and RDS events no longer wake
    it."""
    woken = asyncio.Event()
    loop = asyncio.get_running_loop()

    def wake() -> None:  # called from the events listener's thread
        loop.call_soon_threadsafe(woken.set)

    key = f"{namespace}/{name}"
    runtime.wakeups.subscribe(key, wake)
    try:
        await _drive_turns(runtime, namespace, name, stopped, logger, woken)
    finally:
        runtime.wakeups.unsubscribe(key, wake)
        metrics.forget_restore(namespace, name)


async def _drive_turns(
    runtime: Runtime, namespace: str, name: str, stopped: Stopped, logger: logging.Logger, woken: asyncio.Event,
) -> None:
    """Run the restore until it reaches a terminal phase (and owes nothing more), the resource disappears or
    is being deleted (the deletion handler takes over), or the operator stops.

    Steps are blocking (boto3, kubernetes client) and run in a worker thread; waiting costs no thread, so
    thousands of restores can wait at once. A restore already under way when the daemon starts (an operator
    restart) waits a random part of the poll interval first, so hundreds of them do not call AWS in lock-step.

    While this replica may not act (a standby that lost its lease, or shutting down) the daemon only waits. A
    turn cancelled by kopf (shutdown) lets its step thread run to the end: the AWS call in flight finishes and
    its outcome is written before the daemon returns.

    `woken` (set from the events listener's thread, wakeups.py) ends the wait after a turn early; it is cleared
    as each turn starts, since that turn looks at AWS anyway.
    """
    errors_in_a_row = 0
    first_turn = True
    while not stopped:
        try:
            with runtime.turn(namespace, name) as granted:
                if not granted:
                    await stopped.wait(runtime.settings.poll_interval_seconds)
                    continue
                woken.clear()
                obj = await asyncio.to_thread(runtime.restores.get, namespace, name)
                metrics.observe_restore(namespace, name, obj)  # from the first read on: right after a restart
                if obj is None or obj["metadata"].get("deletionTimestamp"):
                    return
                if first_turn and (obj.get("status") or {}).get("phase"):
                    delay = first_turn_delay(runtime.settings, runtime.rng)
                else:
                    delay, errors_in_a_row = await _finish_even_if_cancelled(asyncio.to_thread(
                        step_once, runtime, obj, logger, errors_in_a_row))
                first_turn = False
        except StatusConflict:  # another writer came first: this turn's outcome is stale, read again at once
            logger.info("the AuroraRestore changed since it was read: reading it again")
            first_turn, delay = False, 0
        except NotLeading as error:  # the Lease was lost mid-turn: nothing more is sent or written
            logger.warning("%s", error)
            first_turn, delay = False, runtime.settings.poll_interval_seconds
            _wait_on_no_event(runtime, namespace, name)
        except Exception as error:  # a bug or an API outage must not kill the daemon: log and retry later
            _wait_on_no_event(runtime, namespace, name)
            errors_in_a_row += 1
            first_turn = False
            if is_kubernetes_outage(error):  # expected now and then: one line, no traceback
                logger.warning("the Kubernetes API is unreachable or failing (%s), retrying", type(error).__name__)
            else:
                logger.exception("unexpected error, retrying: %s", type(error).__name__)
            delay = backoff(runtime.settings, errors_in_a_row, runtime.rng)
        if delay is None:
            return
        if delay > 0:
            # Only a wait the turn registered for ends on an event: not a backoff or a step's own delay, even
            # when an event for the previous turn's resources came while this turn ran.
            waits_on_events = runtime.wakeups.waiting_on(f"{namespace}/{name}")
            await _sleep(stopped, delay, woken if waits_on_events else None)


def _wait_on_no_event(runtime: Runtime, namespace: str, name: str) -> None:
    """A turn that raised registered nothing: drop the previous turn's registration, or an event for what that
    turn waited on would cut this turn's wait (a backoff) short."""
    runtime.wakeups.watch(f"{namespace}/{name}", ())


async def _sleep(stopped: Stopped, delay: float, woken: asyncio.Event | None) -> None:
    """Wait `delay` seconds, until the daemon is stopped, or until `woken` is set (an RDS event), whichever
    comes first."""
    if woken is None:
        await stopped.wait(delay)
        return
    waits = [asyncio.ensure_future(stopped.wait(delay)), asyncio.ensure_future(woken.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _finish_even_if_cancelled(step):
    """Await a step running in a thread; if the daemon is cancelled meanwhile, wait for the thread anyway (a
    thread cannot be stopped, and its outcome must be written before shutdown goes on), then re-raise."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.shield(task)  # a second cancellation does not abandon the thread either
        except asyncio.CancelledError:
            await task
        except Exception as error:  # the daemon is going away: the error is only logged
            logging.getLogger(__name__).warning("the step in flight at shutdown failed: %s", type(error).__name__)
        raise asyncio.CancelledError from None


def step_once(
    runtime: Runtime, obj: dict[str, Any], logger: logging.Logger, errors_in_a_row: int = 0
) -> tuple[float | None, int]:
    """One turn of the machine; returns (seconds until the next turn or None when finished, errors in a row).
    Its AWS calls and log lines belong to this restore (audit.turn): its audit entries go into the status it
    writes. The RDS resources it saw in transition (aws/transitions.py) are what an RDS event may wake it for
    (waits_on_rds_events)."""
    metadata = obj["metadata"]
    started = runtime.wakeups.now()
    with audit.turn(metadata, (obj.get("status") or {}).get("phase")), transitions.collecting() as in_transition:
        delay, errors_in_a_row, outcome = _step_once(runtime, obj, logger, errors_in_a_row)
    on_events = waits_on_rds_events(delay, outcome, in_transition, runtime.wakeups.listening())
    runtime.wakeups.watch(f"{metadata.get('namespace')}/{metadata.get('name')}", in_transition if on_events else (),
                          since=started)
    if on_events and relies_on_rds_events(runtime.wakeups, in_transition, runtime.settings.poll_interval_seconds):
        delay = max(delay, runtime.settings.events_safety_poll_seconds)
    return delay, errors_in_a_row


def waits_on_rds_events(
    delay: float | None, outcome: Outcome | None, in_transition: set[str], listening: bool
) -> bool:
    """Whether an RDS event may end the wait after this turn, which then lasts the safety interval
    (AURORA_RESTORE_EVENTS_SAFETY_POLL_SECONDS) instead of the poll interval unless relies_on_rds_events says
    otherwise: the turn ended in a plain wait (no backoff, no delay of its own) while something it looked at was
    in transition, and the events listener is alive. Backoffs and a step's own delays (a timer, a TTL) are never
    lengthened: no event would end them."""
    plain_wait = isinstance(outcome, Wait) and not outcome.backoff and outcome.delay is None
    return delay is not None and plain_wait and bool(in_transition) and listening


def relies_on_rds_events(wakeups: Wakeups, in_transition: set[str], poll_interval: float) -> bool:
    """Whether a turn that waits on RDS events (waits_on_rds_events) may sleep the safety interval, or polls at the
    poll interval all the same (an event still ends the wait early). It polls when one of the resources is outside
    the queue's account and region (no event of it reaches the queue), and when one had an event within the last
    poll interval yet was still seen in transition: the describe may not show the change yet (RDS describes are
    eventually consistent), and that event, older than the turn, would not wake it again."""
    return wakeups.listening(in_transition) and not wakeups.heard_of_lately(in_transition, poll_interval)


def _step_once(
    runtime: Runtime, obj: dict[str, Any], logger: logging.Logger, errors_in_a_row: int
) -> tuple[float | None, int, Outcome | None]:
    """The turn's (delay, errors in a row) and the outcome it acted on (None for an acceptance or an expiry)."""
    status = AuroraRestoreStatus.model_validate(obj.get("status") or {})
    now = _now()
    if status.phase is None:
        _persist(runtime, obj, status, accept(status, now, obj["metadata"].get("generation")), logger,
                 "Accepted", "restore accepted")
        return 0, 0, None
    ctx, outcome = _context_or_refusal(runtime, obj, status, now)
    if status.phase.is_terminal:
        outcome = None
        if ctx is not None:
            ctx.target_lock.release()
            outcome = run_aftercare(ctx)
        else:  # the spec no longer validates: its notifications cannot be sent
            outcome = unsendable_notifications(status)
        if outcome is None:
            return _expire(runtime, obj, status, now, logger), 0, None
    elif outcome is None:
        outcome = run_step(ctx)
    new_status = _record(runtime, obj, status, outcome, now, logger)
    if new_status.phase.is_terminal and ctx is not None:
        ctx.target_lock.release()
    delay, errors_in_a_row = _next_turn(runtime.settings, new_status, outcome, errors_in_a_row, runtime.rng,
                                        ttl_seconds(obj))
    return delay, errors_in_a_row, outcome


def ttl_seconds(obj: dict[str, Any]) -> int | None:
    """spec.ttlSecondsAfterFinished as the apiserver stored it (read raw: it applies to a spec that does not
    validate too); None when unset or not a count of seconds."""
    value = (obj.get("spec") or {}).get("ttlSecondsAfterFinished")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _expire(
    runtime: Runtime, obj: dict[str, Any], status: AuroraRestoreStatus, now: datetime, logger: logging.Logger
) -> float | None:
    """spec.ttlSecondsAfterFinished of a finished restore with nothing left to do: delete the AuroraRestore once
    its time has come (the deletion handler then applies deletionPolicy). Seconds until then, or None (done).
    One that failed for good to delete something (machine.left_in_aws) is kept instead, as the only record of
    it: status.message says why and one Warning Event TtlDeletionHeld (the conditional status write comes first,
    so a second turn or replica does not post it again)."""
    expiry = ttl_expiry(status, ttl_seconds(obj))
    if expiry is None:
        return None
    if now < expiry:
        return (expiry - now).total_seconds()
    left = left_in_aws(status)
    if left is not None:
        held = (f"ttlSecondsAfterFinished expired, but the AuroraRestore is kept: it is the only record of {left}, "
                f"left in AWS; delete it yourself, or fix the cause and delete the AuroraRestore (a drill's teardown "
                f"is tried again then)")
        if status.message != held:
            _persist(runtime, obj, status, status.model_copy(update={"message": held}), logger, "TtlDeletionHeld",
                     held)
            logger.warning("%s", held)
            runtime.events.record(obj, "Warning", "TtlDeletionHeld", held)
        return None
    metadata = obj["metadata"]
    logger.info("ttlSecondsAfterFinished expired %s after the work completed: deleting the AuroraRestore",
                expiry.isoformat())
    runtime.restores.delete(metadata["namespace"], metadata["name"], metadata["uid"])
    return None


def cancel_once(runtime: Runtime, obj: dict[str, Any], logger: logging.Logger) -> str | None:
    """The deletion handler's turn: None when the resource may go, else what is still being waited for.

    Waits while the daemon is in a turn (an AWS call in flight). An unfinished restore moves to Cancelling and
    runs the machine's cancel step until Cancelled; one cleaning up after a failure finishes that first. A finished
    one first retires a previous cluster kept by keepPrevious, then follows spec.deletionPolicy. The skip-cleanup
    annotation lets go at once, leaving AWS as it is. Like a daemon's turn, it acts only while this replica
    leads and is not shutting down, and its status writes are conditional on what it read.
    """
    metadata = obj["metadata"]
    with runtime.turn(metadata["namespace"], metadata["name"], kind="cancel") as granted:
        if not granted:
            if runtime.in_turn(metadata["namespace"], metadata["name"]):
                return "waiting for the AWS call in flight to finish"
            return "this replica is not leading or is shutting down: the leader cancels"
        try:
            with audit.turn(metadata, (obj.get("status") or {}).get("phase")):
                waiting = _cancel_turn(runtime, obj, logger)
            if waiting is None:  # the resource may go now: this replica drives it no more
                metrics.forget_restore(metadata["namespace"], metadata["name"])
            return waiting
        except StatusConflict:
            return "the AuroraRestore changed since it was read: reading it again"
        except NotLeading:
            return "this replica lost the leader Lease: the leader cancels"


def _cancel_turn(runtime: Runtime, obj: dict[str, Any], logger: logging.Logger) -> str | None:
    metadata = obj["metadata"]
    obj = runtime.restores.get(metadata["namespace"], metadata["name"]) or obj  # the daemon's last write counts
    metrics.observe_restore(metadata["namespace"], metadata["name"], obj)
    status = AuroraRestoreStatus.model_validate(obj.get("status") or {})
    annotations = obj["metadata"].get("annotations") or {}
    if annotations.get(SKIP_CLEANUP_ANNOTATION) == "true":
        runtime.events.record(obj, "Warning", "CleanupSkipped", f"{SKIP_CLEANUP_ANNOTATION} is set: the operator "
                              f"lets go of this restore and leaves whatever it made in AWS as it is")
        logger.warning("%s set: deleted without cleanup", SKIP_CLEANUP_ANNOTATION)
        return None
    now = _now()
    ctx, refusal = _context_or_refusal(runtime, obj, status, now)
    if ctx is None or refusal is not None:  # an invalid spec never got to create anything
        return None
    if status.phase is None or status.phase.is_terminal:
        ctx.target_lock.release()
        owed = run_aftercare(ctx, due_now=True)  # a previous cluster kept by keepPrevious is retired now
        if owed is not None:
            return _record(runtime, obj, status, owed, now, logger).message or "retiring the previous cluster"
        return delete_restored_cluster(ctx) if ctx.spec.deletion_policy == "Delete" else None
    if status.phase == Phase.CLEANING_UP_AFTER_FAILURE:  # the failure's own cleanup (and rollback) comes first
        status = _record(runtime, obj, status, run_step(ctx), now, logger)
        return status.message or "cleaning up after the failure"
    if status.phase != Phase.CANCELLING:
        cancelling = Advance(Phase.CANCELLING, "the AuroraRestore is being deleted: cancelling", updates={
            "cancellation": CancellationStatus(phase=status.phase, requested_at=now)})
        status = _record(runtime, obj, status, cancelling, now, logger)
        ctx.status = status
    status = _record(runtime, obj, status, run_step(ctx), now, logger)
    if status.phase.is_terminal:
        ctx.target_lock.release()
        return None
    return status.message or "cancelling"


def _context_or_refusal(
    runtime: Runtime, obj: dict[str, Any], status: AuroraRestoreStatus, now: datetime
) -> tuple[RestoreContext | None, Outcome | None]:
    """The step context, or (for a spec that does not validate) the outcome that fails the restore."""
    try:
        spec = AuroraRestoreSpec.model_validate(obj.get("spec") or {})
    except ValidationError as error:
        message = describe_validation_error(error)
        if status.phase == Phase.CLEANING_UP_AFTER_FAILURE:  # nothing to clean: an invalid spec made nothing
            return None, Advance(Phase.FAILED, message)
        return None, Fail("InvalidSpec", message)
    return build_context(runtime, obj, spec, status, now), None


def _record(
    runtime: Runtime, obj: dict[str, Any], status: AuroraRestoreStatus, outcome: Outcome, now: datetime,
    logger: logging.Logger,
) -> AuroraRestoreStatus:
    """Apply the outcome to the status and persist it (with an Event on a phase change)."""
    new_status = apply_outcome(status, outcome, now, obj["metadata"].get("generation"), runtime.settings.history_limit)
    reason = outcome.reason if isinstance(outcome, Fail) else (
        new_status.failure.reason if new_status.phase == Phase.FAILED and new_status.failure else str(new_status.phase))
    return _persist(runtime, obj, status, new_status, logger, reason, new_status.message or "")


def _next_turn(
    settings: Settings, status: AuroraRestoreStatus, outcome: Outcome, errors_in_a_row: int,
    rng: random.Random | None = None, ttl: int | None = None,
) -> tuple[float | None, int]:
    """When to run the next turn (None: never, the restore is done) and the count of errors in a row."""
    if status.phase.is_terminal and not has_work(status, ttl):
        return None, 0
    if isinstance(outcome, (Advance, Fail)):  # a failure moves on to its cleanup at once
        return 0, 0
    if outcome.backoff:
        metrics.record_retry(outcome.reason or "Unknown")
        return backoff(settings, errors_in_a_row + 1, rng), errors_in_a_row + 1
    return (outcome.delay if outcome.delay is not None else settings.poll_interval_seconds), 0


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def build_context(
    runtime: Runtime, obj: dict[str, Any], spec: AuroraRestoreSpec, status: AuroraRestoreStatus, now: datetime
) -> RestoreContext:
    """Gateways act as the identity each side needs: the source role for the source, the target role else."""
    metadata = obj["metadata"]
    return RestoreContext(
        name=metadata["name"],
        namespace=metadata["namespace"],
        uid=metadata["uid"],
        spec=spec,
        status=status,
        source=AwsSide(runtime.aws, spec.source.region, spec.source.role_arn, spec.source.external_id),
        target=AwsSide(runtime.aws, spec.target_region, spec.target.role_arn),
        target_lock=TargetLease(
            runtime.api_client,
            namespace=runtime.settings.lease_namespace,
            region=spec.target_region,
            cluster_identifier=restored_identifier(spec, metadata["uid"]),  # a drill's own cluster
            holder=f"{metadata['namespace']}/{metadata['name']}/{metadata['uid']}",
            restores=runtime.restores,
            delete_on_release=spec.drill is not None,  # a drill's Lease is never asked for again
        ),
        now=now,
        default_tags=runtime.settings.default_tags,
        policies=runtime.policies,
        secrets=Secrets(runtime.api_client, metadata["namespace"]),
        db_tls=Tls(ca_file=runtime.settings.db_ca_bundle if runtime.settings.db_tls_verify else None),
        db_timeouts=Timeouts(connect=runtime.settings.database_connect_timeout_seconds,
                             statement=runtime.settings.database_statement_timeout_seconds),
        resource=obj,
        share_grants=lambda snapshot_arn, account: ShareLease(
            runtime.api_client, runtime.settings.lease_namespace, snapshot_arn, account, runtime.restores),
        restores=runtime.restores,
        rng=runtime.rng,
        hook_jobs=HookJobs(runtime.api_client, metadata["namespace"]),
        config_maps=ConfigMaps(runtime.api_client, metadata["namespace"]),
        record_event=lambda kind, reason, message: runtime.events.record(obj, kind, reason, message),
        notifier=Notifier(NotificationSettings.of(runtime.settings), runtime.events.record,
                          leading=runtime.leading),
    )


def describe_validation_error(error: ValidationError) -> str:
    """Which spec fields are wrong and why, without echoing the values (they could be anything)."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        problems.append(f"spec.{location}: {item['msg']}" if location else item["msg"])
    return "invalid spec: " + "; ".join(problems)


def _persist(
    runtime: Runtime,
    obj: dict[str, Any],
    old: AuroraRestoreStatus,
    new: AuroraRestoreStatus,
    logger: logging.Logger,
    reason: str,
    message: str,
) -> AuroraRestoreStatus:
    """Write status when it changed in more than what steps describe again each turn (machine.worth_writing),
    only if `obj` is still current (else StatusConflict, and no Event); on a phase change also log one line and
    post one Event. The turn's audit entries not yet written are added to status.audit (bounded); a refused write
    leaves them in the log only. Returns the status as written (or as computed, when not worth a write)."""
    turn = audit.current_turn()
    pending = list(turn.entries) if turn else []
    new = audit.with_entries(new, pending)
    old_json = old.model_dump(mode="json", by_alias=True, exclude_none=True)
    new_json = new.model_dump(mode="json", by_alias=True, exclude_none=True)
    if not worth_writing(old_json, new_json):  # nothing changed, or only what the step describes again next turn
        return new
    metadata = obj["metadata"]
    written = runtime.restores.patch_status(
        metadata["namespace"], metadata["name"], new_json, metadata.get("resourceVersion"))
    # The next write of this turn (a cancel writes twice) is conditional on this one.
    metadata["resourceVersion"] = written["metadata"]["resourceVersion"]
    if turn:
        del turn.entries[:len(pending)]
    if old.phase != new.phase:
        logger.info("%s -> %s: %s", old.phase or "New", new.phase, message)
        if turn:  # the turn's later lines (a cancel runs a step after this write) are in the new phase
            turn.phase = str(new.phase)
        event_type = "Warning" if new.phase in (Phase.FAILED, Phase.CLEANING_UP_AFTER_FAILURE) else "Normal"
        runtime.events.record(obj, event_type, reason, message)
        metrics.record_transition(str(new.phase))
        if new.phase in (Phase.SUCCEEDED, Phase.FAILED) and (obj.get("spec") or {}).get("drill") is not None:
            _report_drill(runtime, obj, new)
        ended = next((entry for entry in reversed(new.history) if entry.phase == old.phase and entry.ended_at), None)
        if ended is not None:  # the phase just left (none for a new restore)
            metrics.record_phase_end(str(ended.phase), ended.started_at, ended.ended_at)
        if new.phase.is_terminal:
            took = (new.completed_at - new.started_at).total_seconds() if new.started_at and new.completed_at else None
            metrics.record_finished(str(new.phase), reason, took)
    # Last, so a scrape that shows the restore in its new phase also shows the transition counted.
    metrics.observe_status(metadata["namespace"], metadata["name"], new_json)
    return new


def _report_drill(runtime: Runtime, obj: dict[str, Any], status: AuroraRestoreStatus) -> None:
    """A drill that ended: its RTO and RPO as metrics (by the schedule that made it, if any) and whether it passed
    and met its objectives (a failed one did not); a Warning Event when it missed an objective (it still
    succeeded: the restore worked, only too slowly or from too old data)."""
    report_drill_metrics(obj, status)
    missed = missed_objective(status) if status.phase == Phase.SUCCEEDED and status.drill is not None else None
    if missed:
        runtime.events.record(obj, "Warning", "ObjectiveMissed", missed)


def report_drill_metrics(obj: dict[str, Any], status: AuroraRestoreStatus) -> None:
    """Set the drill gauges from a finished drill (status.completedAt orders them: the newest of a schedule wins)."""
    metadata = obj["metadata"]
    schedule = (metadata.get("labels") or {}).get(SCHEDULE_LABEL, "")
    finished_at = (status.completed_at or datetime.now(timezone.utc)).timestamp()
    if status.phase != Phase.SUCCEEDED or status.drill is None:
        metrics.record_drill_result(metadata["namespace"], schedule, finished_at, met=False)
        return
    metrics.record_drill_result(metadata["namespace"], schedule, finished_at, status.drill.objective_met is not False,
                                status.drill.rto_seconds, status.drill.rpo_seconds)


def is_finished_drill(obj: dict[str, Any]) -> bool:
    return (obj.get("spec") or {}).get("drill") is not None and \
        (obj.get("status") or {}).get("phase") in (Phase.SUCCEEDED, Phase.FAILED)


def observe_finished_drill(obj: dict[str, Any]) -> None:
    """A restore kopf's watch delivered: if it is a finished drill, set the drill gauges from its status.

    The gauges live in memory and a finished restore has no daemon, so after a restart or a failover this is
    what shows the last drills again (the watch delivers every existing restore when this replica starts leading);
    without it a firing AuroraRestoreDrillObjectiveMissed would resolve by itself. No Event, no write."""
    if not is_finished_drill(obj):
        return
    try:
        report_drill_metrics(obj, AuroraRestoreStatus.model_validate(obj["status"]))
    except ValidationError:  # a status this version cannot read: its gauges stay as they are
        return


def is_kubernetes_outage(error: Exception) -> bool:
    """A request to the apiserver that got no answer (connection refused or reset, timeout) or a 5xx/429 one."""
    if isinstance(error, ApiException):
        return error.status in (0, 429) or error.status >= 500
    return isinstance(error, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def backoff(settings: Settings, errors_in_a_row: int, rng: random.Random | None = None) -> float:
    """Full jitter: a random wait up to an exponential ceiling (the poll interval doubled per error in a row,
    at most AURORA_RESTORE_RETRY_BACKOFF_MAX_SECONDS), so restores throttled together do not retry together."""
    ceiling = min(settings.poll_interval_seconds * 2 ** min(errors_in_a_row, 20), settings.retry_backoff_max_seconds)
    return (rng or random).uniform(0, ceiling)


def first_turn_delay(settings: Settings, rng: random.Random | None = None) -> float:
    """How long a restore found under way at start-up waits before its first turn: a random part of the poll
    interval, which spreads the restores an operator restart resumes over that interval."""
    return (rng or random).uniform(0, settings.poll_interval_seconds)
