"""Injected AWS errors: rules that answer chosen calls with an error instead of moto.

A rule matches by service, action (or "*"), and optionally region and account; it fires for
the next `count` matching calls, or for each matching call with probability `rate`. The error
body follows the service's protocol, exactly as AWS would send it, so that botocore parses it
into a ClientError and its retry logic treats Throttling or a 5xx as retryable.

`drop` closes the connection without any answer instead (botocore: ConnectionClosedError).
`after` lets moto handle the request first and only then answers with the error or drops the
connection: the action took effect but its answer was lost, as when AWS times out or a
connection breaks after the work is done; a client that retries then meets what it did
(DBInstanceAlreadyExists, ...).

`latency` holds the request that many seconds before it is handled (a slow answer, as AWS gives under load); a
rule with `latency` and no `error` only slows the call, which then succeeds or fails as moto decides. Tests use it
to have a call in flight at a chosen moment (SIGTERM mid-step).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from .aws_request import AwsRequest

# HTTP status AWS uses for an error code when the rule does not say.
DEFAULT_STATUS = {
    "Throttling": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 400,
    "TooManyRequestsException": 429,
    "InternalFailure": 500,
    "InternalError": 500,
    "InternalServerError": 500,
    "InternalServiceError": 500,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
}

DEFAULT_MESSAGE = {
    "Throttling": "Rate exceeded",
    "ThrottlingException": "Rate exceeded",
    "RequestLimitExceeded": "Request limit exceeded.",
    "InternalFailure": "The request processing has failed because of an unknown error, "
    "exception or failure.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
}


RULE_FIELDS = frozenset(
    "service action error status message count rate region account seed after drop latency".split()
)


class InvalidFaultRule(ValueError):
    """A fault rule posted to the control API is incomplete or contradictory."""


@dataclass
class FaultRule:
    """Answer matching calls with `error` instead of letting moto handle them."""

    service: str
    action: str
    #: None for a rule that only slows the call (`latency`) and lets moto answer it.
    error: str | None
    status: int
    message: str
    #: Calls still to fail; None when the rule fires by `rate` instead.
    count: int | None
    rate: float | None
    region: str | None = None
    account: str | None = None
    seed: int | None = None
    #: Let moto handle the request first: it takes effect, only its answer is lost.
    after: bool = False
    #: Close the connection without an answer instead of sending the error.
    drop: bool = False
    #: Seconds the request is held before it is handled.
    latency: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    fired: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultRule:
        """Build a rule from the control API's JSON, refusing what would be ambiguous."""
        unknown = set(body) - RULE_FIELDS
        if unknown:
            raise InvalidFaultRule(f"unknown fields: {sorted(unknown)}")
        service = body.get("service")
        if not isinstance(service, str) or not service:
            raise InvalidFaultRule("'service' is required, e.g. \"rds\"")
        latency = body.get("latency", 0.0)
        if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not 0.0 <= latency <= 300.0:
            raise InvalidFaultRule("'latency' must be a number of seconds between 0 and 300")
        slow_only = latency > 0 and "error" not in body
        error = None if slow_only else body.get("error", "Throttling")
        if not slow_only and (not isinstance(error, str) or not error):
            raise InvalidFaultRule("'error' must be an AWS error code, e.g. \"Throttling\"")
        count, rate = body.get("count"), body.get("rate")
        if count is not None and rate is not None:
            raise InvalidFaultRule("give either 'count' or 'rate', not both")
        if count is None and rate is None:
            count = 1
        if count is not None and (not isinstance(count, int) or count < 1):
            raise InvalidFaultRule("'count' must be an integer >= 1")
        if rate is not None and (not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0):
            raise InvalidFaultRule("'rate' must be a number between 0.0 and 1.0")
        after, drop = body.get("after", False), body.get("drop", False)
        if not isinstance(after, bool) or not isinstance(drop, bool):
            raise InvalidFaultRule("'after' and 'drop' must be true or false")
        if slow_only and (after or drop):
            raise InvalidFaultRule("a rule with only 'latency' slows the call: 'after' and 'drop' need an 'error'")
        status = body.get("status") or DEFAULT_STATUS.get(error or "", 400)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise InvalidFaultRule("'status' must be an HTTP error status (400-599)")
        return cls(
            service=service.lower(),
            action=body.get("action") or "*",
            error=error,
            status=status,
            message=body.get("message") or ("" if slow_only else DEFAULT_MESSAGE.get(error, f"Injected {error}")),
            count=count,
            rate=None if rate is None else float(rate),
            region=body.get("region"),
            account=body.get("account"),
            seed=body.get("seed"),
            after=after,
            drop=drop,
            latency=float(latency),
        )

    @property
    def label(self) -> str:
        """How the request log names this fault: the error code (or ConnectionDropped), with
        `:applied` when moto handled the request first."""
        if self.error is None:
            return "Slow"
        name = "ConnectionDropped" if self.drop else self.error
        return f"{name}:applied" if self.after else name

    def matches(self, request: AwsRequest) -> bool:
        return (
            request.service == self.service
            and self.action in ("*", request.action)
            and self.region in (None, request.region)
            and self.account in (None, request.account)
        )

    def fires_now(self) -> bool:
        """A counted rule fires (and counts down); a rate rule fires by chance."""
        if self.count is not None:
            self.count -= 1
        elif self._random.random() >= (self.rate or 0.0):
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "action": self.action,
            "error": self.error,
            "status": self.status,
            "message": self.message,
            "count": self.count,
            "rate": self.rate,
            "region": self.region,
            "account": self.account,
            "seed": self.seed,
            "after": self.after,
            "drop": self.drop,
            "latency": self.latency,
            "fired": self.fired,
        }


class FaultInjector:
    """The active rules; decides, per request, which (if any) fault answers it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def clear(self) -> int:
        with self._lock:
            count = len(self._rules)
            self._rules.clear()
        return count

    def fault_for(self, request: AwsRequest) -> FaultRule | None:
        """The first matching rule that fires now; a counted rule is used up as it fires."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(request) and rule.fires_now():
                    if rule.count == 0:
                        self._rules.remove(rule)
                    return rule
        return None


    def give_back(self, rule: FaultRule) -> None:
        """Undo one firing of `rule`: an "applied" fault whose call moto refused lost no applied answer, so the
        refusal goes back to the client as it was and the rule still waits for a call that succeeds."""
        with self._lock:
            rule.fired -= 1
            if rule.count is not None:
                rule.count += 1
                if rule not in self._rules:
                    self._rules.insert(0, rule)


def error_response(
    protocol: str, code: str, message: str, status: int
) -> tuple[int, list[tuple[str, str]], bytes]:
    """An AWS error in the wire format of `protocol` ("query" XML or "json")."""
    request_id = str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
        ]
    else:
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body
