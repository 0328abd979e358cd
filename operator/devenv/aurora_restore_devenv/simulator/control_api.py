"""The simulator's own HTTP API under `/_sim/`, for tests and developers (JSON in and out).

GET    /_sim/health                      status, delay and page size
GET    /_sim/calls?service=&action=&region=&account=&invocation_id=   the request log, oldest first
DELETE /_sim/calls                       forget the request log
GET    /_sim/faults                      active fault rules
POST   /_sim/faults                      add a rule (see faults.FaultRule.from_json)
DELETE /_sim/faults                      remove every rule
GET    /_sim/delay, POST {"seconds": S}  RDS transition delay
GET    /_sim/page-size, POST {"size": N|null}   server-wide page size of RDS describes
GET    /_sim/restorable-lag, PUT (or POST) {"seconds": S}   how far LatestRestorableTime trails now
POST   /_sim/rds/snapshot-create-time {"region", "identifier", "time", "account"?}
POST   /_sim/rds/status {"kind", "identifier", "region", "status"|null, "account"?}
                                         force (null: stop forcing) an object's status
GET    /_sim/rds/next-create-status      rules: the next create of a kind ends in a status
POST   /_sim/rds/next-create-status {"kind", "status", "count"?, "identifier"?, "region"?, "account"?}
DELETE /_sim/rds/next-create-status      remove every such rule
GET    /_sim/rds/consistency, POST {"seconds": S}   how long new objects stay out of describes
GET    /_sim/rds/transitions             every ended RDS transition, oldest first (transition_events.py)
DELETE /_sim/rds/transitions             forget them
GET    /_sim/rds/events, POST {"enabled": bool}   whether transition ends publish RDS events
POST   /_sim/rds/events/republish        publish the last published RDS event once more (a duplicate)
POST   /_sim/ram/organization {"accounts": [...]}   put accounts in one organization with RAM
                                         sharing enabled: shares between them need no invitation
GET    /_sim/ram/organizations           the organizations so made
GET    /_sim/ram/shares?account=         the RAM shares an account owns, with their associations
POST   /_sim/ram/shares/fail {"arn": A}  put the share in status FAILED
POST   /_sim/reset                       empty moto, the log, the faults, the transitions; start-up
                                         delay and page size (database servers stop)
GET    /_sim/databases                   the clusters' database servers
GET    /_sim/ca.pem                      the CA certificate of the database servers (PEM)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID

from .arns import RdsArn
from .faults import FaultRule, InvalidFaultRule
from .rds_faults import KINDS, InvalidRdsFault, NextCreateStatus
from .settings import validate_delay, validate_page_size, validate_restorable_lag

if TYPE_CHECKING:
    from .server import Simulator

PREFIX = "/_sim/"


@dataclass(frozen=True)
class RawBody:
    """A handler's answer that is not JSON."""

    content: bytes
    content_type: str


class ControlApiError(Exception):
    """A request the control API refuses; becomes a JSON error with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Handler = Callable[[dict[str, Any], dict[str, list[str]]], Any]


class ControlApi:
    """A WSGI application for the `/_sim/` paths."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "health"): self.health,
            ("GET", "calls"): self.list_calls,
            ("DELETE", "calls"): self.clear_calls,
            ("GET", "faults"): self.list_faults,
            ("POST", "faults"): self.add_fault,
            ("DELETE", "faults"): self.clear_faults,
            ("GET", "delay"): self.get_delay,
            ("POST", "delay"): self.set_delay,
            ("GET", "page-size"): self.get_page_size,
            ("POST", "page-size"): self.set_page_size,
            ("GET", "restorable-lag"): self.get_restorable_lag,
            ("PUT", "restorable-lag"): self.set_restorable_lag,
            ("POST", "restorable-lag"): self.set_restorable_lag,
            ("POST", "rds/snapshot-create-time"): self.set_snapshot_create_time,
            ("POST", "rds/status"): self.set_rds_status,
            ("GET", "rds/next-create-status"): self.list_next_create_statuses,
            ("POST", "rds/next-create-status"): self.add_next_create_status,
            ("DELETE", "rds/next-create-status"): self.clear_next_create_statuses,
            ("GET", "rds/consistency"): self.get_consistency,
            ("POST", "rds/consistency"): self.set_consistency,
            ("GET", "rds/transitions"): self.list_transitions,
            ("DELETE", "rds/transitions"): self.clear_transitions,
            ("GET", "rds/events"): self.get_events_enabled,
            ("POST", "rds/events"): self.set_events_enabled,
            ("POST", "rds/events/republish"): self.republish_last_event,
            ("POST", "ram/organization"): self.join_organization,
            ("GET", "ram/organizations"): self.list_organizations,
            ("GET", "ram/shares"): self.list_shares,
            ("POST", "ram/shares/fail"): self.fail_share,
            ("POST", "reset"): self.reset,
            ("GET", "databases"): self.list_databases,
            ("GET", "ca.pem"): self.ca_certificate,
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")[len(PREFIX) :].strip("/")
        try:
            handler = self.routes.get((method, path))
            if handler is None:
                known = any(route_path == path for _, route_path in self.routes)
                raise ControlApiError(
                    405 if known else 404, f"no route for {method} {PREFIX}{path}"
                )
            status, payload = (
                200,
                handler(_json_body(environ), parse_qs(environ.get("QUERY_STRING", ""))),
            )
        except ControlApiError as error:
            status, payload = error.status, {"error": str(error)}
        except (InvalidFaultRule, InvalidRdsFault, ValueError) as error:
            status, payload = 400, {"error": str(error)}
        if isinstance(payload, RawBody):
            body, content_type = payload.content, payload.content_type
        else:
            body, content_type = json.dumps(payload).encode(), "application/json"
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
        )
        return [body]

    # -- handlers ---------------------------------------------------------------------------

    def health(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        settings = self.simulator.settings
        return {"status": "ok", "delay": settings.delay, "page_size": settings.page_size}

    def list_calls(self, _body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        criteria = {
            name: query[name][0]
            for name in ("service", "action", "region", "account", "invocation_id")
            if name in query
        }
        return {"calls": [call.to_json() for call in self.simulator.calls.find(**criteria)]}

    def clear_calls(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"cleared": self.simulator.calls.clear()}

    def list_faults(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"faults": [rule.to_json() for rule in self.simulator.faults.rules()]}

    def add_fault(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return self.simulator.faults.add(FaultRule.from_json(body)).to_json()

    def clear_faults(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"cleared": self.simulator.faults.clear()}

    def get_delay(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"seconds": self.simulator.settings.delay}

    def set_delay(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        settings = self.simulator.settings
        previous, settings.delay = settings.delay, validate_delay(_required(body, "seconds"))
        return {"seconds": settings.delay, "previous": previous}

    def get_page_size(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"size": self.simulator.settings.page_size}

    def set_page_size(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        settings = self.simulator.settings
        if "size" not in body:
            raise ControlApiError(400, "'size' is required (an integer, or null for none)")
        previous, settings.page_size = settings.page_size, validate_page_size(body["size"])
        return {"size": settings.page_size, "previous": previous}

    def get_restorable_lag(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"seconds": self.simulator.settings.restorable_lag}

    def set_restorable_lag(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        """How many seconds DescribeDBClusters' LatestRestorableTime trails the present (rulebook)."""
        settings = self.simulator.settings
        previous = settings.restorable_lag
        settings.restorable_lag = validate_restorable_lag(_required(body, "seconds"))
        return {"seconds": settings.restorable_lag, "previous": previous}

    def set_snapshot_create_time(
        self, body: dict[str, Any], _query: dict[str, list[str]]
    ) -> dict[str, Any]:
        """Back-date a cluster snapshot, so that tests of "latest" and age limits can give
        each snapshot its own SnapshotCreateTime."""
        from moto.rds.models import rds_backends

        identifier = _required(body, "identifier")
        region, account = body.get("region"), body.get("account") or DEFAULT_ACCOUNT_ID
        arn = RdsArn.parse(identifier)
        if arn is not None:
            identifier, region, account = arn.name, arn.region, arn.account
        if not region:
            raise ControlApiError(400, "'region' is required unless 'identifier' is an ARN")
        when = _parse_time(_required(body, "time"))
        with self.simulator.rds_lock:
            snapshots = rds_backends[account][region].cluster_snapshots
            if identifier not in snapshots:
                raise ControlApiError(
                    404, f"no cluster snapshot {identifier} in {account}/{region}"
                )
            # moto keeps naive UTC datetimes and reports `created` as SnapshotCreateTime.
            snapshots[identifier].created = when.astimezone(timezone.utc).replace(tzinfo=None)
        return {
            "identifier": identifier,
            "region": region,
            "account": account,
            "time": when.astimezone(timezone.utc).isoformat(),
        }

    def set_rds_status(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        """Put a cluster, instance or cluster snapshot into any status (a failure status too)
        until it is cleared (`"status": null`) or changed; a deletion still shows `deleting`."""
        from moto.rds.models import rds_backends

        kind, identifier = _required(body, "kind"), _required(body, "identifier")
        region, account = _required(body, "region"), body.get("account") or DEFAULT_ACCOUNT_ID
        if kind not in KINDS:
            raise ControlApiError(400, f"'kind' must be one of {sorted(KINDS)}, not {kind!r}")
        if "status" not in body:
            raise ControlApiError(400, "'status' is required (a status, or null to stop forcing)")
        status = body["status"]
        if status is not None and (not isinstance(status, str) or not status):
            raise ControlApiError(400, "'status' must be an RDS status or null")
        faults = self.simulator.lifecycle.faults
        with self.simulator.rds_lock:
            store = getattr(rds_backends[account][region], KINDS[kind][0])
            obj = store.get(identifier) or store.get(identifier.lower())
            if obj is None:
                raise ControlApiError(404, f"no {kind} {identifier} in {account}/{region}")
            previous = faults.forced_status(obj)
            faults.force_status(obj, status)
            current = obj.status
        return {"kind": kind, "identifier": identifier, "region": region, "account": account,
                "status": current, "forced": status, "previous": previous}

    def list_next_create_statuses(
        self, _body: dict[str, Any], _query: dict[str, list[str]]
    ) -> dict[str, Any]:
        return {"rules": [rule.to_json() for rule in self.simulator.lifecycle.faults.next_creates()]}

    def add_next_create_status(
        self, body: dict[str, Any], _query: dict[str, list[str]]
    ) -> dict[str, Any]:
        """The next create of `kind` (optionally only of `identifier`, in `region`, `account`)
        ends in `status` after its usual creating phase, instead of `available`."""
        known = {"kind", "status", "count", "identifier", "region", "account"}
        if set(body) - known:
            raise ControlApiError(400, f"unknown fields: {sorted(set(body) - known)}")
        rule = NextCreateStatus(
            kind=_required(body, "kind"),
            status=_required(body, "status"),
            count=body.get("count") or 1,
            identifier=body.get("identifier"),
            region=body.get("region"),
            account=body.get("account"),
        )
        return self.simulator.lifecycle.faults.add_next_create(rule).to_json()

    def clear_next_create_statuses(
        self, _body: dict[str, Any], _query: dict[str, list[str]]
    ) -> dict[str, Any]:
        return {"cleared": self.simulator.lifecycle.faults.clear_next_creates()}

    def get_consistency(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"seconds": self.simulator.lifecycle.faults.consistency_seconds}

    def set_consistency(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        """How long a new cluster, instance or cluster snapshot is missing from describes."""
        faults = self.simulator.lifecycle.faults
        seconds = validate_delay(_required(body, "seconds"))
        previous, faults.consistency_seconds = faults.consistency_seconds, seconds
        return {"seconds": seconds, "previous": previous}

    def list_transitions(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"transitions": self.simulator.transition_events.ended()}

    def clear_transitions(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"cleared": self.simulator.transition_events.clear()}

    def get_events_enabled(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"enabled": self.simulator.transition_events.enabled}

    def set_events_enabled(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        """False loses every event from now on (ends are still recorded); AWS's delivery is best effort."""
        enabled = _required(body, "enabled")
        if not isinstance(enabled, bool):
            raise ControlApiError(400, "'enabled' must be true or false")
        events = self.simulator.transition_events
        previous, events.enabled = events.enabled, enabled
        return {"enabled": enabled, "previous": previous}

    def republish_last_event(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"republished": self.simulator.transition_events.republish_last()}

    def join_organization(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        accounts = _required(body, "accounts")
        if not isinstance(accounts, list) or len(accounts) < 2:
            raise ControlApiError(400, "accounts must be a list of at least two account ids")
        self.simulator.shares.join_organization([str(account) for account in accounts])
        return {"organizations": self.simulator.shares.organizations()}

    def list_organizations(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        return {"organizations": self.simulator.shares.organizations()}

    def list_shares(self, _body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        account = query.get("account", [DEFAULT_ACCOUNT_ID])[0]
        return {"shares": self.simulator.shares.shares_of(account)}

    def fail_share(self, body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        arn = _required(body, "arn")
        try:
            return {"share": self.simulator.shares.fail_share(str(arn))}
        except KeyError:
            raise ControlApiError(404, f"no RAM share {arn}") from None

    def reset(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        self.simulator.reset()
        return {"status": "reset"}

    def list_databases(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> dict[str, Any]:
        """The database server of each cluster (none when databases are off)."""
        fleet = self.simulator.databases
        if fleet is None:
            return {"enabled": False, "databases": []}
        return {
            "enabled": True,
            "engines": [
                engine
                for engine, binaries in (("postgresql", fleet.postgres), ("mysql", fleet.mariadb))
                if binaries is not None
            ],
            "data_dir": str(fleet.root),
            "server_user": fleet.user.name,
            "databases": [database.to_json() for database in fleet.databases()],
        }

    def ca_certificate(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> RawBody:
        """The CA that signed the database servers' certificate, for clients to verify them."""
        fleet = self.simulator.databases
        if fleet is None:
            raise ControlApiError(404, "database servers are off (--no-databases): no CA")
        return RawBody(fleet.tls.ca_certificate.read_bytes(), "application/x-pem-file")


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return {}
    try:
        body = json.loads(environ["wsgi.input"].read(length))
    except ValueError as error:
        raise ControlApiError(400, f"body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise ControlApiError(400, "body must be a JSON object")
    return body


def _required(body: dict[str, Any], name: str) -> Any:
    if body.get(name) is None:
        raise ControlApiError(400, f"'{name}' is required")
    return body[name]


def _parse_time(value: str) -> datetime:
    """ISO 8601; a time without zone is taken as UTC."""
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ControlApiError(400, f"'time' is not an ISO 8601 time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
