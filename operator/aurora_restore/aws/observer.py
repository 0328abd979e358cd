"""Batched observation: the concurrent describes of one RDS client coalesced into one filtered describe.

Hundreds of waiting restores each describe their cluster, instances or snapshot every poll. Steps run in worker
threads, so a describe by identifier can wait a moment for others: the first caller of a batch waits `window`
seconds while others add their identifiers, then sends one describe whose filter holds them all
(DescribeDBClusters `db-cluster-id`, DescribeDBInstances `db-instance-id` or `db-cluster-id`,
DescribeDBClusterSnapshots `db-cluster-snapshot-id`), reads every page, and hands each caller its items; none
means not found, as a direct describe's DBClusterNotFoundFault does. A caller that arrives once the batch is
detached for sending joins the next one, so every answer comes from a request sent after its question. A
failure of the batched call is raised to every caller of the batch, and the gateway classifies it as it
classifies the direct call's (aws/errors.py).

What a filter cannot ask identically goes direct (`RdsObserver.batches` says no): ARNs (the cluster-snapshot
filter takes identifiers only, and another account's shared cluster is found by its ARN, not by a filter),
automated snapshots (`rds:` names need SnapshotType=automated) and anything that is not a well-formed identifier
(AWS could refuse the whole batch for one bad value). Identifiers are case-insensitive and stored in lower case;
the generic Filter type documents filter values as case-sensitive, so the batch sends them in lower case.
"""

import contextvars
import copy
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Items per page: DescribeDB* MaxRecords "Default: 100 Constraints: Minimum 20, maximum 100".
PAGE_SIZE = 100
# No limit on the values of one filter is documented; one page's worth per request keeps each answer to one page.
MAX_FILTER_VALUES = 100
# An Aurora cluster has at most 16 instances (a writer and 15 Aurora Replicas): 6 clusters' instances fit a page.
MAX_INSTANCES_PER_CLUSTER = 16
MAX_IDENTIFIER_LENGTH = 63
MAX_SNAPSHOT_IDENTIFIER_LENGTH = 255
# Letters, digits and hyphens, a letter first, no two hyphens in a row, no hyphen last (CreateDBCluster's rules).
IDENTIFIER = re.compile(r"[a-z](?!.*--)[a-z0-9-]*(?<!-)")


@dataclass(frozen=True)
class Kind:
    """One describe by identifier that can be batched: the call, its filter and the item field it matches."""

    name: str
    action: str
    result_key: str
    filter_name: str
    match_key: str
    max_values: int = MAX_FILTER_VALUES
    max_length: int = MAX_IDENTIFIER_LENGTH
    # Set when one identifier matches several items: an item a shifted marker skipped leaves its identifier found,
    # so an answer of several pages is asked again in groups of this many identifiers, whose items fit one page;
    # and a request holds only as many identifiers as the last answer says fit one page.
    one_page_group: int | None = None


CLUSTERS = Kind("cluster", "describe_db_clusters", "DBClusters", "db-cluster-id", "DBClusterIdentifier")
INSTANCES = Kind("instance", "describe_db_instances", "DBInstances", "db-instance-id", "DBInstanceIdentifier")
CLUSTER_SNAPSHOTS = Kind(
    "cluster snapshot",
    "describe_db_cluster_snapshots",
    "DBClusterSnapshots",
    "db-cluster-snapshot-id",
    "DBClusterSnapshotIdentifier",
    max_length=MAX_SNAPSHOT_IDENTIFIER_LENGTH,
)
# The instances of clusters (DescribeDBInstances by db-cluster-id): as many clusters per request as the last
# answer says fit one page (100 of one instance each; no page boundary, nothing to hide), at least 6.
CLUSTER_INSTANCES = Kind(
    "cluster's instances",
    "describe_db_instances",
    "DBInstances",
    "db-cluster-id",
    "DBClusterIdentifier",
    one_page_group=PAGE_SIZE // MAX_INSTANCES_PER_CLUSTER,
)
KINDS = (CLUSTERS, INSTANCES, CLUSTER_SNAPSHOTS, CLUSTER_INSTANCES)


@dataclass
class _Batch:
    """The identifiers (lower case, in arrival order) of one batch, how many callers asked, and once sent, its
    answer."""

    identifiers: dict[str, None] = field(default_factory=dict)
    callers: int = 0
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: BaseException | None = None
    answered: threading.Event = field(default_factory=threading.Event)


class Batcher:
    """The batches of one kind of describe through one boto3 client; thread-safe."""

    def __init__(self, client, kind: Kind, window: float, wait: Callable[[float], None] = time.sleep):
        self.client = client
        self.kind = kind
        self.window = window
        self._wait = wait  # how the first caller spends the window (tests wait for their callers instead)
        self._lock = threading.Lock()
        self._pending: _Batch | None = None
        self._most_items = 1  # per identifier, in the last answer: how many identifiers the next request holds

    def describe(self, identifier: str) -> list[dict[str, Any]]:
        """The items the filter finds for `identifier` (empty: not found); raises what the batched call raised."""
        key = identifier.lower()
        with self._lock:
            batch = self._pending
            leads = batch is None
            if leads:
                batch = self._pending = _Batch()
            batch.identifiers[key] = None
            batch.callers += 1
        if leads:
            self._lead(batch)
        else:
            batch.answered.wait()
        if batch.error is not None:
            raise batch.error
        return copy.deepcopy(batch.items.get(key, []))  # each caller its own copy, as a direct describe gives

    def _lead(self, batch: _Batch) -> None:
        """Wait for others to join, detach the batch (later callers start the next one), send it, answer all."""
        try:
            self._wait(self.window)
            self._detach(batch)
            # Sent outside the first caller's context: the request belongs to no one restore's turn (its audit,
            # its priority in the request budget).
            contextvars.Context().run(self._send, batch)
        except BaseException as error:
            batch.error = error
            raise
        finally:
            self._detach(batch)  # never let a later caller join a batch that is answered already
            batch.answered.set()

    def _detach(self, batch: _Batch) -> None:
        with self._lock:
            if self._pending is batch:
                self._pending = None

    def _send(self, batch: _Batch) -> None:
        identifiers = list(batch.identifiers)
        for group in _in_groups(identifiers, self._values_per_request()):
            batch.items.update(self._fetch(group))
        if self.kind.one_page_group and batch.items:
            self._most_items = max(len(items) for items in batch.items.values())

    def _values_per_request(self) -> int:
        """At most max_values; when an identifier matches several items, as many as the last answer's largest
        (a cluster's instances: 100 clusters of one instance, 50 of two) fit one page, never fewer than the
        groups that surely do."""
        group = self.kind.one_page_group
        if not group:
            return self.kind.max_values
        return min(self.kind.max_values, max(group, PAGE_SIZE // self._most_items))

    def _fetch(self, identifiers: list[str]) -> dict[str, list[dict[str, Any]]]:
        """One filtered describe, every page. Items deleted between two pages may shift a marker past one that
        exists, so after an answer of several pages the identifiers it did not find are asked once more, or
        (when an identifier matches several items, and a skipped one would go unnoticed) all of them again, in
        groups whose items fit one page."""
        found, pages = self._describe(identifiers)
        if pages > 1 and self.kind.one_page_group:
            found = {}
            for group in _in_groups(identifiers, self.kind.one_page_group):
                found.update(self._describe(group)[0])
        elif pages > 1:
            missing = [identifier for identifier in identifiers if identifier not in found]
            if missing:
                found.update(self._describe(missing)[0])
        return {identifier: found[identifier] for identifier in identifiers if identifier in found}

    def _describe(self, identifiers: list[str]) -> tuple[dict[str, list[dict[str, Any]]], int]:
        paginator = self.client.get_paginator(self.kind.action)
        pages = paginator.paginate(
            Filters=[{"Name": self.kind.filter_name, "Values": identifiers}],
            PaginationConfig={"PageSize": PAGE_SIZE},
        )
        found: dict[str, list[dict[str, Any]]] = {}
        count = 0
        for page in pages:
            count += 1
            for item in page.get(self.kind.result_key) or []:
                found.setdefault(str(item.get(self.kind.match_key) or "").lower(), []).append(item)
        return found, count


def _in_groups(identifiers: list[str], size: int) -> list[list[str]]:
    return [identifiers[start : start + size] for start in range(0, len(identifiers), size)]


class RdsObserver:
    """The batchers of one RDS client (one account, role, region): what the RdsGateway reads through."""

    def __init__(self, client, window: float):
        self.window = window
        self._batchers = {kind: Batcher(client, kind, window) for kind in KINDS}

    @staticmethod
    def batches(kind: Kind, identifier: str) -> bool:
        """Whether a filter finds exactly what a direct describe of `identifier` finds (else: go direct)."""
        return len(identifier) <= kind.max_length and IDENTIFIER.fullmatch(identifier.lower()) is not None

    def describe(self, kind: Kind, identifier: str) -> list[dict[str, Any]]:
        return self._batchers[kind].describe(identifier)
