"""The simulator's server: moto's app for every service, behind our middleware.

`Simulator` holds what one server process knows besides moto's backends; `serve()` runs it
on werkzeug's threaded server, with the thread that publishes RDS transition events, and prints
`READY_PREFIX <url>` once it accepts connections.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from . import rds_extensions, sns_rules, transition_events
from .calls import CallLog
from .faults import FaultInjector
from .middleware import SimulatorMiddleware
from .ram import ResourceShares
from .settings import SimulatorSettings

if TYPE_CHECKING:
    from .databases import DatabaseFleet

READY_PREFIX = "AWS simulator ready at"


class Simulator:
    """Settings, request log, faults, RDS lifecycle and database servers of one server process."""

    def __init__(self, settings: SimulatorSettings, databases: DatabaseFleet | None = None) -> None:
        self.settings = settings
        self.calls = CallLog()
        self.faults = FaultInjector()
        #: The clusters' database servers, or None when they are off (--no-databases).
        self.databases = databases
        #: RAM resource shares of every account (RAM is answered by the simulator, not moto).
        self.shares = ResourceShares()
        self.lifecycle = rds_extensions.install(settings, databases, self.shares)
        sns_rules.install()  # Publish's Subject rules (moto checks only the length)
        #: Serializes RDS requests and control-API access to RDS state (why: see middleware).
        self.rds_lock = threading.RLock()
        #: Publishes the end of every RDS transition to EventBridge (its thread starts with `serve()`).
        self.transition_events = transition_events.TransitionEvents(settings)
        transition_events.install_account_in_delivered_events()
        self.lifecycle.on_start.append(self.transition_events.watch)
        if databases is not None:
            self.transition_events.holds.append(transition_events.database_not_ready)
            self.transition_events.failures.append(transition_events.database_failed)

    def reset(self) -> None:
        """Back to the state at start-up: empty moto, no RAM shares or organizations, no calls, no faults."""
        from moto.moto_api._internal import moto_api_backend

        with self.rds_lock:
            moto_api_backend.reset()
            self.shares.reset()
            if self.databases is not None:
                self.databases.stop_all()
            self.transition_events.reset()  # under the lock: no request watches an object of before the reset
        self.calls.clear()
        self.faults.clear()
        self.lifecycle.faults.reset()
        self.settings.restore_initial()


def build_app(settings: SimulatorSettings, databases: DatabaseFleet | None = None) -> SimulatorMiddleware:
    """The WSGI app of a simulator: moto's dispatcher for all services, wrapped."""
    moto_app = DomainDispatcherApplication(create_backend_app)
    return SimulatorMiddleware(moto_app, Simulator(settings, databases))


class QuietRequestHandler(MotoRequestHandler):
    """moto's handler without a log line per request (the request log has them)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def serve(
    host: str,
    port: int,
    settings: SimulatorSettings,
    verbose: bool = False,
    databases: DatabaseFleet | None = None,
) -> None:
    """Serve until interrupted; port 0 picks a free one (the ready line tells which). The database
    servers are stopped on the way out."""
    app = build_app(settings, databases)
    handler = MotoRequestHandler if verbose else QuietRequestHandler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    # moto builds some URLs that point back at itself from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(server.port)
    app.simulator.transition_events.start()
    print(f"{READY_PREFIX} http://{host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        app.simulator.transition_events.stop()
        server.server_close()
        if databases is not None:
            databases.close()
