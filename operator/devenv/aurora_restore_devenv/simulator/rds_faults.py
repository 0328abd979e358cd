"""Faults that RDS objects themselves have in AWS, which moto never shows.

    forced status       a cluster, instance or cluster snapshot reports the status a test
                        put it in (any string: `incompatible-restore`, `failed`, ...) until the
                        test clears or changes it; a deletion still shows `deleting`
    next-create status  the next create of a kind (optionally of one identifier) ends, after
                        its usual `creating`/`copying` phase, in a status other than `available`
    eventual consistency for `consistency_seconds` (as set when it was created) after its
                        creation, an object is missing from the describe calls (a direct describe
                        is NotFound, a list omits it), while every other call already sees it

Statuses are kept on the moto objects and computed when read (see rds_lifecycle), so these
need no background work either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.models import RDSBackend

from .rds_hooks import Proceed, RdsHooks, RdsRequest

# Where a forced status and a creation time are kept on a moto object (attributes moto never reads).
FORCED_STATUS_ATTRIBUTE = "_simulated_forced_status"
VISIBLE_AT_ATTRIBUTE = "_simulated_visible_at"

# Kind -> the backend's dict of that kind and the describe action that must not see young objects.
KINDS = {
    "cluster": ("clusters", "describe_db_clusters"),
    "instance": ("databases", "describe_db_instances"),
    "cluster-snapshot": ("cluster_snapshots", "describe_db_cluster_snapshots"),
}


class InvalidRdsFault(ValueError):
    """A request of the control API names an unknown kind or a bad value."""


@dataclass
class NextCreateStatus:
    """The next `count` creates of `kind` (in `region`/`account`, of `identifier`, when given) end in `status`."""

    kind: str
    status: str
    count: int = 1
    identifier: str | None = None
    region: str | None = None
    account: str | None = None

    def matches(self, kind: str, identifier: str, backend: RDSBackend) -> bool:
        return (
            kind == self.kind
            and self.identifier in (None, identifier)
            and self.region in (None, backend.region_name)
            and self.account in (None, backend.account_id)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "count": self.count,
            "identifier": self.identifier,
            "region": self.region,
            "account": self.account,
        }


class RdsFaults:
    """Forced statuses, next-create statuses and the eventual-consistency window of one simulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: list[NextCreateStatus] = []
        #: Seconds during which an object created from now on is missing from describes (0: seen at once).
        self.consistency_seconds = 0.0

    def reset(self) -> None:
        with self._lock:
            self._next.clear()
        self.consistency_seconds = 0.0

    # -- forced statuses -------------------------------------------------------------------

    @staticmethod
    def force_status(obj: Any, status: str | None) -> None:
        """Make `obj` report `status` from now on (None: its computed status again)."""
        if status is None:
            obj.__dict__.pop(FORCED_STATUS_ATTRIBUTE, None)
        else:
            obj.__dict__[FORCED_STATUS_ATTRIBUTE] = status

    @staticmethod
    def forced_status(obj: Any) -> str | None:
        return obj.__dict__.get(FORCED_STATUS_ATTRIBUTE)

    # -- next creates ------------------------------------------------------------------------

    def add_next_create(self, rule: NextCreateStatus) -> NextCreateStatus:
        if rule.kind not in KINDS:
            raise InvalidRdsFault(f"'kind' must be one of {sorted(KINDS)}, not {rule.kind!r}")
        if not isinstance(rule.status, str) or not rule.status:
            raise InvalidRdsFault("'status' must be an RDS status, e.g. \"incompatible-restore\"")
        if isinstance(rule.count, bool) or not isinstance(rule.count, int) or rule.count < 1:
            raise InvalidRdsFault("'count' must be an integer >= 1")
        with self._lock:
            self._next.append(rule)
        return rule

    def next_creates(self) -> list[NextCreateStatus]:
        with self._lock:
            return list(self._next)

    def clear_next_creates(self) -> int:
        with self._lock:
            count = len(self._next)
            self._next.clear()
        return count

    def created(self, kind: str, obj: Any, identifier: str, backend: RDSBackend) -> str:
        """Note a new object; returns the status its creation ends in (`available` unless a rule
        says). The automated snapshot moto takes with every cluster never uses a rule."""
        if self.consistency_seconds > 0:
            obj.__dict__[VISIBLE_AT_ATTRIBUTE] = time.monotonic() + self.consistency_seconds
        if getattr(obj, "snapshot_type", None) == "automated":
            return "available"
        with self._lock:
            for rule in self._next:
                if rule.matches(kind, identifier, backend):
                    rule.count -= 1
                    if rule.count == 0:
                        self._next.remove(rule)
                    return rule.status
        return "available"

    # -- eventual consistency -------------------------------------------------------------------

    def register(self, hooks: RdsHooks) -> None:
        """Hide young objects from the describes; must be registered before pagination (outermost)."""
        for kind, (store_name, action) in KINDS.items():
            hooks.around(action, self._describe_without_young(store_name))

    def _describe_without_young(self, store_name: str):
        def describe(request: RdsRequest, proceed: Proceed) -> ActionResult:
            with self._hidden_young(getattr(request.backend, store_name)):
                return proceed()

        return describe

    @contextmanager
    def _hidden_young(self, store: dict[str, Any]) -> Iterator[None]:
        """Take objects not visible yet out of `store` for the block.

        The whole dict is put back as it was, in its order (describes do not change it); this is
        one reason RDS requests run one at a time (see middleware)."""
        now = time.monotonic()
        young = [key for key, obj in store.items() if obj.__dict__.get(VISIBLE_AT_ATTRIBUTE, 0) > now]
        if not young:
            yield
            return
        kept = dict(store)
        for identifier in young:
            del store[identifier]
        try:
            yield
        finally:
            store.clear()
            store.update(kept)
