"""The in-memory request log: which AWS calls a test made, in order.

Tests assert on it ("the operator described the cluster 3 times", "botocore retried twice");
it is read and cleared through the control API (`/_sim/calls`). Each call carries the SDK's
invocation id and attempt number (botocore's `amz-sdk-invocation-id` and `amz-sdk-request`
headers): the attempts of one invocation, its retries, share one id.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from .aws_request import AwsRequest


@dataclass(frozen=True)
class Call:
    """One request as the simulator answered it."""

    timestamp: str
    service: str | None
    action: str | None
    region: str
    account: str
    method: str
    path: str
    status: int
    #: The error code of an injected fault, or None when moto answered.
    fault: str | None
    user_agent: str = ""
    #: Who and what the call named (role, external ID, identifiers): see aws_request.LOGGED_PARAMETERS.
    parameters: dict[str, str] = field(default_factory=dict)
    #: The `amz-sdk-invocation-id` header: the same for every attempt of one SDK call.
    invocation_id: str | None = None
    #: `attempt=N` of the `amz-sdk-request` header (1 for the first try, 2 for the first retry).
    attempt: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SdkInvocation:
    """Which SDK call a request is an attempt of, from botocore's retry headers (absent: None)."""

    invocation_id: str | None
    attempt: int | None

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> SdkInvocation:
        """`amz-sdk-invocation-id: <uuid>` and `amz-sdk-request: ttl=...; attempt=2; max=4`."""
        attempt = None
        for part in environ.get("HTTP_AMZ_SDK_REQUEST", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == "attempt" and value.isdigit():
                attempt = int(value)
        return cls(environ.get("HTTP_AMZ_SDK_INVOCATION_ID") or None, attempt)


class CallLog:
    """Thread-safe list of `Call`s; the server's threads append, the control API reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def record(
        self,
        request: AwsRequest,
        started: datetime,
        status: int,
        fault: str | None = None,
        sdk: SdkInvocation | None = None,
    ) -> Call:
        call = Call(
            timestamp=started.astimezone(timezone.utc).isoformat(),
            service=request.service,
            action=request.action,
            region=request.region,
            account=request.account,
            method=request.method,
            path=request.path,
            status=status,
            fault=fault,
            user_agent=request.user_agent,
            parameters=dict(request.parameters),
            invocation_id=sdk.invocation_id if sdk else None,
            attempt=sdk.attempt if sdk else None,
        )
        with self._lock:
            self._calls.append(call)
        return call

    def find(
        self,
        service: str | None = None,
        action: str | None = None,
        region: str | None = None,
        account: str | None = None,
        invocation_id: str | None = None,
    ) -> list[Call]:
        """Calls matching every given criterion, oldest first."""
        with self._lock:
            calls = list(self._calls)
        return [
            call
            for call in calls
            if (service is None or call.service == service)
            and (action is None or call.action == action)
            and (region is None or call.region == region)
            and (account is None or call.account == account)
            and (invocation_id is None or call.invocation_id == invocation_id)
        ]

    def clear(self) -> int:
        """Forget every call; returns how many there were."""
        with self._lock:
            count = len(self._calls)
            self._calls.clear()
        return count
