"""The operator process (`aurora-restore run`): elect a leader, run kopf only while leading, drain on SIGTERM.

    start ──► standby: try the leader Lease every retry period (/healthz answers: a standby is healthy)
                │ acquired
                ▼
              leader: kopf runs the handlers of main.py in its own thread; the Lease is renewed every retry period
                │ SIGTERM                                  │ no renewal for the renew deadline (lease lost)
                ▼                                          ▼
              drain: no new turn starts; the turns in    drain until a standby may take over; every AWS call
              flight finish their AWS calls and write    is fenced from the moment the Lease is not fresh
              their outcome; the Lease is still renewed
                │ none left              │ timeout         │
                ▼                        ▼                 ▼
              stop kopf, release       exit 1, Lease kept (a standby takes over after the lease duration;
              the Lease, exit 0        the step abandoned is repeated: every step is idempotent)

The lost-lease exit is client-go's: a replica that may have been replaced does not carry on. What it still had in
flight is turned away twice: AWS calls by the fence (NotLeading, aws/clients.py), status writes by their
resourceVersion check.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import kopf
from pydantic import ValidationError

from .k8s.leader_lease import LeaderElector, LeaseTimings
from .obs.logs import quiet_wire_loggers, use_json_lines
from .settings import Settings

log = logging.getLogger("aurora_restore.run")

KOPF_STOP_SECONDS = 30  # kopf's own shutdown after the drain: its daemons are idle by then


@dataclass
class ProcessControl:
    """Shared by this module and the kopf handlers: who may act, and the Runtime they built."""

    leading: Callable[[], bool]  # holds the leader Lease: gates turns and fences every AWS call
    accepting: Callable[[], bool]  # no shutdown requested: gates new turns only
    runtime: object | None = None  # driver.Runtime, set by main.configure


class Shutdown:
    """SIGTERM/SIGINT. The handler only sets a flag: taking a lock (threading.Event) or logging in a handler that
    interrupted the same thread holding that lock would deadlock; waits poll the flag instead."""

    def __init__(self):
        self.signal: str | None = None

    def request(self, number, _frame) -> None:
        self.signal = signal.Signals(number).name

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


class Health:
    """/healthz: healthy while the election loop runs (it beats at least every retry period). API outages do not
    make a replica unhealthy (restarting every pod during an apiserver outage would help nothing); a leader whose
    kopf stopped exits instead of answering."""

    def __init__(self, identity: str, stale_after: float):
        self.identity = identity
        self.stale_after = stale_after
        self.beat = time.monotonic()
        self.leading = False

    def report(self) -> tuple[bool, dict]:
        alive = time.monotonic() - self.beat < self.stale_after
        return alive, {"identity": self.identity, "leader": self.leading, "healthy": alive}

    def serve(self, url: str) -> ThreadingHTTPServer:
        parsed = urlparse(url)
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] != (parsed.path or "/healthz"):
                    self.send_error(404)
                    return
                ok, body = health.report()
                payload = json.dumps(body).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # probes every few seconds: keep them out of the log
                pass

        server = ThreadingHTTPServer((parsed.hostname or "0.0.0.0", parsed.port or 8080), Handler)
        threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
        return server


def _run_kopf(args: argparse.Namespace, control: ProcessControl, stop_flag: threading.Event,
              ready_flag: threading.Event) -> None:
    from .main import CONTROL_KEY  # importing main registers the handlers with kopf's default registry

    asyncio.run(kopf.operator(
        standalone=True, clusterwide=args.all_namespaces, namespaces=args.namespace or (),
        stop_flag=stop_flag, ready_flag=ready_flag, memo=kopf.Memo({CONTROL_KEY: control}),
    ))


class Renewer:
    """Renews the Lease at most once per retry period, however often it is asked (the drain asks every 50 ms)."""

    def __init__(self, elector: LeaderElector | None, health: Health, period: float):
        self.elector, self.health, self.period = elector, health, period
        self.last = time.monotonic()

    def __call__(self) -> None:
        self.health.beat = time.monotonic()
        if self.elector is not None and time.monotonic() - self.last >= self.period:
            self.last = time.monotonic()
            _try(self.elector)


def configure_logging(verbose: bool, log_format: str) -> None:
    """kopf's logging (verbose: DEBUG), the operator's JSON lines, and never a library's request bodies."""
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat[log_format.upper()])
    if log_format == "json":  # the operator's own fields: restore, phase, audit (obs/logs.py)
        use_json_lines()
    quiet_wire_loggers()


def run(args: argparse.Namespace) -> int:
    configure_logging(args.verbose, args.log_format)
    try:
        settings = Settings()
    except ValidationError as error:
        log.error("invalid settings, not starting: %s", "; ".join(
            f"AURORA_RESTORE_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()))
        return 2
    if settings.shutdown_timeout_seconds < settings.longest_aws_call_seconds():
        log.warning("AURORA_RESTORE_SHUTDOWN_TIMEOUT_SECONDS (%gs) is shorter than the longest AWS call with its "
                    "retries (%gs): a shutdown may cut a call short (the next leader repeats its step)",
                    settings.shutdown_timeout_seconds, settings.longest_aws_call_seconds())
    timings = LeaseTimings(settings.leader_lease_duration_seconds, settings.leader_renew_deadline_seconds,
                           settings.leader_retry_period_seconds)
    shutdown = Shutdown()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, shutdown.request)
    health = Health(settings.pod_name, stale_after=max(30.0, 2 * timings.renew_deadline + timings.retry_period))
    server = health.serve(args.liveness)
    elector = None
    if settings.leader_election:
        from .main import load_kubernetes_config

        # The election's requests time out within half the renew deadline: one hung request cannot outlast it.
        elector = LeaderElector(
            load_kubernetes_config(1, min(settings.kubernetes_timeout_seconds, timings.renew_deadline / 2),
                                   settings.pod_name),
            settings.lease_namespace, settings.leader_lease_name, settings.pod_name, timings)
        log.info("%s: standing by for the leader Lease %s/%s", settings.pod_name, settings.lease_namespace,
                 settings.leader_lease_name)
        while not shutdown.requested and not _try(elector):
            health.beat = time.monotonic()
            shutdown.wait(timings.retry_period)
        if shutdown.requested:
            log.info("%s: shutting down", shutdown.signal)
            if elector.is_leading():  # won just as the signal came: hand it on at once
                elector.release()
            server.shutdown()
            return 0
        log.info("%s: leading (Lease %s/%s)", settings.pod_name, settings.lease_namespace, settings.leader_lease_name)
    health.leading = True
    control = ProcessControl(leading=elector.is_leading if elector else (lambda: True),
                             accepting=lambda: not shutdown.requested)
    stop_flag, ready_flag = threading.Event(), threading.Event()
    operator = threading.Thread(target=_run_kopf, args=(args, control, stop_flag, ready_flag), name="kopf",
                                daemon=True)  # never keeps the process alive: exits are decided below
    operator.start()
    lost = False
    while not shutdown.requested:
        health.beat = time.monotonic()
        if not operator.is_alive():
            log.error("kopf stopped by itself: exiting")
            lost = True
            break
        if elector is not None and not _try(elector) and not elector.is_leading():
            log.error("%s: could not renew the leader Lease for %gs: no longer leading, exiting",
                      settings.pod_name, timings.renew_deadline)
            lost = True
            break
        shutdown.wait(timings.retry_period)
    if shutdown.requested:
        log.info("%s: shutting down: no new turn starts; waiting for the turns in flight", shutdown.signal)
    renew = Renewer(None if lost else elector, health, timings.retry_period)
    left = 0
    if control.runtime is not None:
        # A shutdown waits for the calls in flight, renewing the Lease meanwhile so no standby starts beside
        # them; a lost Lease leaves only until a standby may take over (AWS calls are fenced from then on).
        timeout = (elector.lease_left() if elector else 0.0) if lost else settings.shutdown_timeout_seconds
        left = control.runtime.drain(timeout, while_waiting=renew)
        if left:
            log.warning("%d turn(s) still in flight after %gs: exiting without releasing the Lease; the next "
                        "leader repeats them (every step is idempotent)", left, timeout)
        else:
            log.info("no turn in flight any more: stopping")
    stop_flag.set()
    deadline = time.monotonic() + KOPF_STOP_SECONDS
    while operator.is_alive() and time.monotonic() < deadline:
        renew()
        operator.join(0.1)
    health.leading = False
    clean = not lost and not left and not operator.is_alive()
    if clean and elector is not None:
        elector.release()
    server.shutdown()
    if not clean:  # never wait for (or release the Lease beside) a step thread that is still running
        logging.shutdown()
        os._exit(1)
    return 0


def _try(elector: LeaderElector) -> bool:
    """One attempt to take or renew the Lease; an API error (an outage) counts as a failed attempt."""
    try:
        return elector.try_acquire_or_renew()
    except Exception as error:  # the apiserver down or slow: try again next period
        log.warning("leader Lease: %s: %s", type(error).__name__, getattr(error, "reason", "") or error)
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", metavar="URL",
                        help="serve /healthz here (on standbys too; default http://0.0.0.0:8080/healthz)")
    parser.add_argument("--log-format", default="full", choices=["plain", "full", "json"],
                        help="plain or full: text for local use; json: one JSON object per line, as the chart "
                        "runs it (see docs/audit.md#logs)")
    parser.add_argument("-v", "--verbose", action="store_true")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="aurora-restore run")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
