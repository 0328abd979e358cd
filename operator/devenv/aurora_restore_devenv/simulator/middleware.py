"""The WSGI middleware in front of moto: control API, request log, faults, RDS lifecycle.

For each request, in order:
  1. `/_sim/...` goes to the control API, never to moto.
  2. The request is identified (service, action, region, account).
  3. A matching fault rule answers it with an AWS error; otherwise moto does.
  4. RDS requests run one at a time, after the lifecycle's sweep of finished deletions:
     moto's backends are plain dicts that the sweep and the handlers both change.
  5. An exception inside moto becomes an InternalFailure error, not an HTML page.
  6. The call is logged with its HTTP status before the response goes back, so a client
     that reads the log after its call returned always finds that call in it.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .aws_request import AwsRequest
from .control_api import PREFIX, ControlApi
from .faults import error_response

if TYPE_CHECKING:
    from .server import Simulator

WsgiApp = Any


class SimulatorMiddleware:
    """Wraps moto's `DomainDispatcherApplication` (or any WSGI app serving AWS APIs)."""

    def __init__(self, app: WsgiApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator
        self.control_api = ControlApi(simulator)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.control_api(environ, start_response)

        started = datetime.now(timezone.utc)
        request = AwsRequest.from_environ(environ)
        fault = self.simulator.faults.fault_for(request)
        if fault is not None:
            status, headers, body = error_response(
                request.protocol, fault.error, fault.message, fault.status
            )
            self.simulator.calls.record(request, started, status, fault=fault.error)
            start_response(_status_line(status), headers)
            return [body]

        if request.service == "rds":
            with self.simulator.rds_lock:
                self.simulator.lifecycle.sweep()
                status_line, headers, body = self._call_app(environ, request.protocol)
        else:
            status_line, headers, body = self._call_app(environ, request.protocol)
        self.simulator.calls.record(request, started, int(status_line.split(" ", 1)[0]))
        start_response(status_line, headers)
        return [body]

    def _call_app(
        self, environ: dict[str, Any], protocol: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Run the wrapped app to completion and return its status line, headers and body.

        An exception inside moto (a moto bug) becomes an InternalFailure in the request's
        protocol, with the traceback on stderr, rather than werkzeug's HTML page that
        botocore cannot parse.
        """
        response: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            response["status"], response["headers"] = status, headers
            return chunks.append

        try:
            iterable = self.app(environ, capture)
            try:
                chunks.extend(iterable)
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        except Exception as error:  # moto crashed: answer as AWS would, not with HTML
            traceback.print_exc()
            status, headers, body = error_response(
                protocol, "InternalFailure", f"The simulator failed: {error!r}", 500
            )
            return _status_line(status), headers, body
        return response["status"], response["headers"], b"".join(chunks)


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"
