"""A small client for the simulator's control API (`/_sim/`), on the standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any


class SimulatorApiError(RuntimeError):
    """The control API refused a request (the message is the server's)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class SimulatorClient:
    """Read the request log, inject faults, and change delay or page size of a simulator."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    # -- state ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._request("GET", "health")

    def reset(self) -> None:
        """Empty moto's backends, the request log and the faults; start-up delay and page size."""
        self._request("POST", "reset")

    # -- request log ------------------------------------------------------------------------

    def calls(
        self,
        service: str | None = None,
        action: str | None = None,
        region: str | None = None,
        account: str | None = None,
        invocation_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Logged calls matching every given criterion, oldest first."""
        query = {
            name: value
            for name, value in (
                ("service", service),
                ("action", action),
                ("region", region),
                ("account", account),
                ("invocation_id", invocation_id),
            )
            if value is not None
        }
        return self._request("GET", "calls", query=query)["calls"]

    def clear_calls(self) -> int:
        return self._request("DELETE", "calls")["cleared"]

    def invocations(self, **criteria: str) -> dict[str, list[dict[str, Any]]]:
        """The logged calls matching `criteria` (as for `calls`), grouped by SDK invocation id,
        each group oldest attempt first; calls without the header are left out."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for call in self.calls(**criteria):
            if call.get("invocation_id"):
                grouped.setdefault(call["invocation_id"], []).append(call)
        return grouped

    # -- faults -----------------------------------------------------------------------------

    def add_fault(
        self,
        service: str,
        action: str = "*",
        error: str = "Throttling",
        *,
        count: int | None = None,
        rate: float | None = None,
        status: int | None = None,
        message: str | None = None,
        region: str | None = None,
        account: str | None = None,
        seed: int | None = None,
        after: bool = False,
        drop: bool = False,
        latency: float | None = None,
    ) -> dict[str, Any]:
        """Fail the next `count` matching calls (1 if neither is given), or each with
        probability `rate`; returns the rule as the server stored it. `drop` closes the
        connection without an answer; `after` lets the call take effect first (its answer is
        lost). `latency` holds the call that many seconds first; with `error=None` it only slows it."""
        rule = {
            "service": service,
            "action": action,
            "error": error,
            "latency": latency,
            "count": count,
            "rate": rate,
            "status": status,
            "message": message,
            "region": region,
            "account": account,
            "seed": seed,
            "after": after or None,
            "drop": drop or None,
        }
        return self._request(
            "POST", "faults", {key: value for key, value in rule.items() if value is not None}
        )

    def faults(self) -> list[dict[str, Any]]:
        return self._request("GET", "faults")["faults"]

    def clear_faults(self) -> int:
        return self._request("DELETE", "faults")["cleared"]

    # -- settings ---------------------------------------------------------------------------

    def delay(self) -> float:
        return self._request("GET", "delay")["seconds"]

    def set_delay(self, seconds: float) -> float:
        """Set the RDS transition delay; returns the previous one."""
        return self._request("POST", "delay", {"seconds": seconds})["previous"]

    def page_size(self) -> int | None:
        return self._request("GET", "page-size")["size"]

    def set_page_size(self, size: int | None) -> int | None:
        """Set (None: remove) the server-wide page size; returns the previous one."""
        return self._request("POST", "page-size", {"size": size})["previous"]

    def restorable_lag(self) -> float:
        return self._request("GET", "restorable-lag")["seconds"]

    def set_restorable_lag(self, seconds: float) -> float:
        """Set how far LatestRestorableTime trails the present; returns the previous lag."""
        return self._request("PUT", "restorable-lag", {"seconds": seconds})["previous"]

    # -- RDS --------------------------------------------------------------------------------

    def set_snapshot_create_time(
        self,
        identifier: str,
        time: datetime | str,
        region: str | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Back-date a cluster snapshot's SnapshotCreateTime (identifier or ARN)."""
        if isinstance(time, datetime):
            time = (time if time.tzinfo else time.replace(tzinfo=timezone.utc)).isoformat()
        body = {"identifier": identifier, "time": time, "region": region, "account": account}
        return self._request(
            "POST",
            "rds/snapshot-create-time",
            {key: value for key, value in body.items() if value is not None},
        )

    def set_rds_status(
        self,
        kind: str,
        identifier: str,
        status: str | None,
        region: str,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Force a "cluster", "instance" or "cluster-snapshot" into `status` until changed or
        cleared (None)."""
        body = {"kind": kind, "identifier": identifier, "status": status, "region": region}
        if account is not None:
            body["account"] = account
        return self._request("POST", "rds/status", body)

    def fail_next_create(
        self,
        kind: str,
        status: str,
        *,
        count: int | None = None,
        identifier: str | None = None,
        region: str | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """The next `count` (1) creates of `kind` (of `identifier`, in `region`/`account`, when
        given) end in `status` instead of `available`."""
        rule = {"kind": kind, "status": status, "count": count, "identifier": identifier,
                "region": region, "account": account}
        return self._request(
            "POST",
            "rds/next-create-status",
            {key: value for key, value in rule.items() if value is not None},
        )

    def next_create_statuses(self) -> list[dict[str, Any]]:
        return self._request("GET", "rds/next-create-status")["rules"]

    def clear_next_create_statuses(self) -> int:
        return self._request("DELETE", "rds/next-create-status")["cleared"]

    def consistency(self) -> float:
        return self._request("GET", "rds/consistency")["seconds"]

    def set_consistency(self, seconds: float) -> float:
        """How long new clusters, instances and cluster snapshots stay out of describes;
        returns the previous value."""
        return self._request("POST", "rds/consistency", {"seconds": seconds})["previous"]

    # -- RDS transition events ------------------------------------------------------------------

    def transitions(self) -> list[dict[str, Any]]:
        """Every ended RDS transition, oldest first: {"kind", "identifier", "arn", "account", "region",
        "from", "phases", "to" (None: gone), "started_at", "ended_at" (epoch seconds), "event_id" (or
        None: AWS publishes none), "published"}."""
        return self._request("GET", "rds/transitions")["transitions"]

    def clear_transitions(self) -> int:
        return self._request("DELETE", "rds/transitions")["cleared"]

    def events_enabled(self) -> bool:
        return self._request("GET", "rds/events")["enabled"]

    def set_events_enabled(self, enabled: bool) -> bool:
        """False: transition ends publish no RDS event (lost, as AWS may lose one); returns the previous."""
        return self._request("POST", "rds/events", {"enabled": enabled})["previous"]

    def republish_last_event(self) -> dict[str, Any] | None:
        """Publish the last published RDS event again (a duplicate); returns its detail, None if none."""
        return self._request("POST", "rds/events/republish")["republished"]

    # -- RAM ----------------------------------------------------------------------------------

    def join_organization(self, *accounts: str) -> list[list[str]]:
        """Put `accounts` in one organization with RAM sharing enabled (no invitations between them)."""
        return self._request("POST", "ram/organization", {"accounts": list(accounts)})["organizations"]

    def organizations(self) -> list[list[str]]:
        return self._request("GET", "ram/organizations")["organizations"]

    def fail_share(self, arn: str) -> dict[str, Any]:
        """Put the RAM share `arn` in status FAILED (what RAM reports for a share it could not set up)."""
        return self._request("POST", "ram/shares/fail", {"arn": arn})["share"]

    def resource_shares(self, account: str) -> list[dict[str, Any]]:
        """The RAM shares `account` owns (any status), with principals, resources and invitations."""
        return self._request("GET", "ram/shares", query={"account": account})["shares"]

    # -- database servers ---------------------------------------------------------------------

    def databases(self) -> dict[str, Any]:
        """`{"enabled": bool, "databases": [{"cluster", "engine", "port", "pid", "state", ...}]}`."""
        return self._request("GET", "databases")

    def ca_pem(self) -> str:
        """The CA certificate (PEM) that the clusters' database servers' certificate chains to."""
        request = urllib.request.Request(f"{self.base_url}/_sim/ca.pem", method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", error.reason)
            except ValueError:
                message = error.reason
            raise SimulatorApiError(error.code, message) from None

    # -- transport --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        url = f"{self.base_url}/_sim/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", error.reason)
            except ValueError:
                message = error.reason
            raise SimulatorApiError(error.code, message) from None
