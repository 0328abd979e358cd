"""The WSGI middleware in front of moto: control API, request log, faults, RDS lifecycle.

For each request, in order:
  1. `/_sim/...` goes to the control API, never to moto.
  2. The request is identified (service, action, region, account).
  3. A matching fault rule answers it with an AWS error (or drops the connection); otherwise
     moto does. A rule with `after` lets moto handle it first, then loses the answer.
  4. RAM requests are answered by the simulator's own shares (ram.py), not moto; they and
     RDS requests run one at a time, after the lifecycle's sweep of finished deletions:
     moto's backends are plain dicts that the sweep, the handlers and the eventual-consistency
     window (which takes young objects out of them during a describe) all change, and moto's
     handlers iterate them (`list(self.clusters.values())`, filters): a concurrent insert or
     delete makes that iteration fail ("dictionary changed size during iteration") or miss
     objects. A lock per request is simpler than proving every moto code path safe; RDS calls
     take ~10 ms, so the operator's few concurrent restores do not notice it.
  5. An exception inside moto becomes an InternalFailure error, not an HTML page.
  6. The call is logged with its HTTP status (and the SDK's invocation id and attempt) before
     the response goes back, so a client that reads the log after its call returned always
     finds that call in it.
"""

from __future__ import annotations

import json
import socket
import time
import traceback
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .aws_request import AwsRequest
from .calls import SdkInvocation
from .control_api import PREFIX, ControlApi
from .faults import FaultRule, error_response
from .ram import RamError, parse_body, parse_qs_first

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
        sdk = SdkInvocation.from_environ(environ)
        fault = self.simulator.faults.fault_for(request)
        if fault is not None and fault.latency:
            time.sleep(fault.latency)
        slowed = fault is not None and fault.error is None
        if slowed:  # only slow: moto answers it as usual
            fault = None
        if fault is not None and not fault.after:
            return self._answer_fault(fault, environ, request, started, start_response, sdk)

        if request.service == "rds":
            with self.simulator.rds_lock:
                self.simulator.lifecycle.sweep()
                status_line, headers, body = self._call_app(environ, request.protocol)
        elif request.service == "ram":
            with self.simulator.rds_lock:  # RAM reads the clusters it shares
                self.simulator.lifecycle.sweep()
                status_line, headers, body = self._answer_ram(environ, request)
        else:
            status_line, headers, body = self._call_app(environ, request.protocol)
        status = int(status_line.split(" ", 1)[0])
        if fault is not None and status < 400:  # applied, but the answer is lost
            return self._answer_fault(fault, environ, request, started, start_response, sdk)
        if fault is not None:  # moto refused the call: nothing was applied, so its refusal is the answer
            self.simulator.faults.give_back(fault)
        self.simulator.calls.record(
            request, started, status, fault="Slow" if slowed else None, sdk=sdk
        )
        start_response(status_line, headers)
        return [body]

    def _answer_fault(
        self,
        fault: FaultRule,
        environ: dict[str, Any],
        request: AwsRequest,
        started: datetime,
        start_response: Any,
        sdk: SdkInvocation,
    ) -> Iterable[bytes]:
        """The fault's error in the request's protocol, or no answer at all for `drop`."""
        if fault.drop:
            self.simulator.calls.record(request, started, 0, fault=fault.label, sdk=sdk)
            _drop_connection(environ)
        status, headers, body = error_response(
            request.protocol, fault.error, fault.message, fault.status
        )
        self.simulator.calls.record(request, started, status, fault=fault.label, sdk=sdk)
        start_response(_status_line(status), headers)
        return [body]

    def _answer_ram(
        self, environ: dict[str, Any], request: AwsRequest
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """RAM is answered by the simulator's own shares (ram.py), never by moto's RAM."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            body = {**parse_qs_first(environ.get("QUERY_STRING", "")), **parse_body(raw)}
            answer = self.simulator.shares.handle(request.action, request.account, request.region, body)
        except RamError as error:
            status, headers, body = error_response("json", error.code, error.message, error.status)
            return _status_line(status), headers, body
        body = json.dumps(answer).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("Content-Length", str(len(body))),
        ]
        return _status_line(200), headers, body

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


def _drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection before any byte of an answer, then leave the request.

    werkzeug's server hands the socket over as `werkzeug.socket` and treats a ConnectionError
    raised by the app as a connection the client dropped: it sends nothing and logs nothing.
    The client sees the connection closed without a response (urllib3's RemoteDisconnected,
    botocore's ConnectionClosedError), which botocore's standard retry mode retries.
    """
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionResetError("simulated dropped connection")


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"
