"""Batched observation (aws/observer.py): the batching logic, with a fake RDS client.

The window is replaced by a wait for a known number of callers (`joined`), so that which callers share a batch is
decided by the test, never by thread timing. The answers against the real simulator are in
tests/aws/test_batched_describes.py.
"""

import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aurora_restore import driver
from aurora_restore.aws import transitions
from aurora_restore.obs import audit
from aurora_restore.aws.clients import AwsClients
from aurora_restore.aws.observer import (
    CLUSTER_INSTANCES,
    CLUSTER_SNAPSHOTS,
    CLUSTERS,
    INSTANCES,
    Batcher,
    RdsObserver,
)
from aurora_restore.aws.rds import RdsGateway
from aurora_restore.aws.side import AwsSide
from aurora_restore.errors import RetryableError, TerminalError
from aurora_restore.settings import Settings

REGION = "eu-west-1"
ARN = f"arn:aws:rds:{REGION}:111122223333"
FILTER_FIELDS = {
    ("describe_db_clusters", "db-cluster-id"): "DBClusterIdentifier",
    ("describe_db_instances", "db-instance-id"): "DBInstanceIdentifier",
    ("describe_db_instances", "db-cluster-id"): "DBClusterIdentifier",
    ("describe_db_cluster_snapshots", "db-cluster-snapshot-id"): "DBClusterSnapshotIdentifier",
}
RESULT_KEYS = {
    "describe_db_clusters": "DBClusters",
    "describe_db_instances": "DBInstances",
    "describe_db_cluster_snapshots": "DBClusterSnapshots",
}


def cluster(name: str, status: str = "available") -> dict[str, Any]:
    return {"DBClusterIdentifier": name, "DBClusterArn": f"{ARN}:cluster:{name}", "Status": status}


def instance(name: str, cluster_name: str) -> dict[str, Any]:
    return {"DBInstanceIdentifier": name, "DBInstanceArn": f"{ARN}:db:{name}", "DBClusterIdentifier": cluster_name,
            "DBInstanceStatus": "available"}


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, "DescribeDBClusters")


class FakeRds:
    """Filtered describes over a list of items per action, each request recorded; optionally held or failing."""

    def __init__(self, items: dict[str, list[dict[str, Any]]], page_size: int = 100):
        self.items = items
        self.page_size = page_size
        self.requests: list[dict[str, Any]] = []  # {"action", "filter", "values"} or {"action", "direct"}
        self.hold: threading.Event | None = None  # set: the next filtered request waits for it
        self.holding = threading.Event()
        self.error: Exception | None = None
        # Items matched or named by these are left out of the first request's pages (a shifted marker).
        self.hidden_on_first_pass: set[str] = set()

    def get_paginator(self, action: str):
        return FakePaginator(self, action)

    def describe_db_clusters(self, **params):
        return self._direct("describe_db_clusters", "DBClusterIdentifier", params)

    def describe_db_instances(self, **params):
        return self._direct("describe_db_instances", "DBInstanceIdentifier", params)

    def describe_db_cluster_snapshots(self, **params):
        return self._direct("describe_db_cluster_snapshots", "DBClusterSnapshotIdentifier", params)

    def _direct(self, action: str, parameter: str, params: dict[str, Any]):
        self.requests.append({"action": action, "direct": params})
        if self.error is not None:
            raise self.error
        wanted = params[parameter].lower()
        found = [item for item in self.items.get(action, [])
                 if wanted in (item.get(parameter), item.get(parameter.replace("Identifier", "Arn")))]
        return {RESULT_KEYS[action]: found}


class FakePaginator:
    def __init__(self, rds: FakeRds, action: str):
        self.rds, self.action = rds, action

    def paginate(self, Filters, PaginationConfig):
        assert PaginationConfig == {"PageSize": 100}
        (only,) = Filters
        request = {"action": self.action, "filter": only["Name"], "values": list(only["Values"]),
                   "turn": audit.current_turn()}
        self.rds.requests.append(request)
        number = len(self.rds.requests)
        if self.rds.hold is not None:
            hold, self.rds.hold = self.rds.hold, None
            self.rds.holding.set()
            hold.wait(10)
        if self.rds.error is not None:
            raise self.rds.error
        field = FILTER_FIELDS[(self.action, only["Name"])]
        first = number == 1
        matching = [dict(item, answered_by=number) for item in self.rds.items.get(self.action, [])
                    if item[field] in only["Values"]
                    and not (first and self.rds.hidden_on_first_pass & {item[field], *item.values()})]
        size = self.rds.page_size
        for start in range(0, max(len(matching), 1), size):
            yield {RESULT_KEYS[self.action]: matching[start : start + size]}


def joined(batcher: Batcher, count: int) -> Callable[[float], None]:
    """A window that ends once `count` callers have joined the pending batch."""

    def wait(_seconds: float) -> None:
        done = threading.Event()
        while not done.wait(0.005):
            with batcher._lock:
                if batcher._pending is not None and batcher._pending.callers >= count:
                    return

    return wait


def in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread; the results (or raised exceptions) in order."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
    return results


def observed(rds: FakeRds, count: int, kind=CLUSTERS) -> tuple[RdsGateway, RdsObserver]:
    """A gateway whose observer's `kind` batches end when `count` callers have joined."""
    observer = RdsObserver(rds, window=0.5)
    batcher = observer._batchers[kind]
    batcher._wait = joined(batcher, count)
    return RdsGateway(rds, REGION, observer), observer


def test_concurrent_describes_share_one_filtered_request():
    names = [f"c{number}" for number in range(8)]
    rds = FakeRds({"describe_db_clusters": [cluster(name) for name in names]})
    gateway, _ = observed(rds, len(names))
    found = in_threads([lambda name=name: gateway.describe_cluster(name) for name in names])
    assert [item["DBClusterIdentifier"] for item in found] == names
    assert len(rds.requests) == 1
    assert rds.requests[0]["filter"] == "db-cluster-id"
    assert sorted(rds.requests[0]["values"]) == names


def test_an_absent_identifier_is_none_and_the_others_get_their_items():
    rds = FakeRds({"describe_db_instances": [instance("i-1", "c"), instance("i-2", "c")]})
    gateway, _ = observed(rds, 3, INSTANCES)
    found = in_threads([lambda name=name: gateway.describe_instance(name) for name in ("i-1", "gone", "i-2")])
    assert found[1] is None
    assert (found[0]["DBInstanceIdentifier"], found[2]["DBInstanceIdentifier"]) == ("i-1", "i-2")
    assert [request["values"] for request in rds.requests] == [["i-1", "gone", "i-2"]]


def test_a_caller_after_the_batch_was_sent_joins_the_next_batch():
    rds = FakeRds({"describe_db_clusters": [cluster("early"), cluster("late")]})
    gateway, _ = observed(rds, 1)
    hold = rds.hold = threading.Event()
    results: dict[str, Any] = {}
    early = threading.Thread(target=lambda: results.update(early=gateway.describe_cluster("early")))
    early.start()
    assert rds.holding.wait(10)  # the first batch is on the wire, held there
    late = threading.Thread(target=lambda: results.update(late=gateway.describe_cluster("late")))
    late.start()
    late.join(10)
    assert not late.is_alive() and "early" not in results  # answered by its own request, not the held one
    assert [request["values"] for request in rds.requests] == [["early"], ["late"]]
    assert results["late"]["answered_by"] == 2
    hold.set()
    early.join(10)
    assert results["early"]["answered_by"] == 1


def test_a_failed_batch_reaches_every_caller_classified_as_the_direct_call():
    rds = FakeRds({})
    rds.error = throttled()
    gateway, _ = observed(rds, 3)
    raised = in_threads([lambda name=name: gateway.describe_cluster(name) for name in ("a", "b", "c")])
    direct = RdsGateway(rds, REGION)
    with pytest.raises(RetryableError) as direct_error:
        direct.describe_cluster("a")
    assert len([request for request in rds.requests if "filter" in request]) == 1
    for error in raised:
        assert isinstance(error, RetryableError)
        assert (error.reason, str(error)) == (direct_error.value.reason, str(direct_error.value))


def test_a_batch_whose_window_failed_fails_its_callers_and_the_next_caller_starts_a_new_one():
    rds = FakeRds({"describe_db_clusters": [cluster("a")]})
    observer = RdsObserver(rds, window=0.5)
    batcher = observer._batchers[CLUSTERS]

    def interrupted(_seconds: float) -> None:
        raise RuntimeError("interrupted")

    batcher._wait = interrupted
    with pytest.raises(RuntimeError):
        batcher.describe("a")
    batcher._wait = joined(batcher, 1)
    assert [item["DBClusterIdentifier"] for item in batcher.describe("a")] == ["a"]
    assert len(rds.requests) == 1


def test_a_refusal_is_terminal_for_every_caller():
    rds = FakeRds({})
    rds.error = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeDBClusters")
    gateway, _ = observed(rds, 2)
    raised = in_threads([lambda name=name: gateway.describe_cluster(name) for name in ("a", "b")])
    assert all(isinstance(error, TerminalError) and error.reason == "AccessDenied" for error in raised)


def test_identifiers_match_case_insensitively_and_are_sent_in_lower_case():
    rds = FakeRds({"describe_db_clusters": [cluster("staging-blue")]})
    gateway, _ = observed(rds, 1)
    assert gateway.describe_cluster("Staging-Blue")["DBClusterIdentifier"] == "staging-blue"
    assert rds.requests[0]["values"] == ["staging-blue"]


def test_two_callers_of_one_identifier_each_get_their_own_copy():
    rds = FakeRds({"describe_db_clusters": [cluster("same")]})
    gateway, _ = observed(rds, 2)
    first, second = in_threads([lambda: gateway.describe_cluster("same"), lambda: gateway.describe_cluster("SAME")])
    assert first == second and first is not second
    assert len(rds.requests) == 1


def test_arns_automated_snapshots_and_malformed_identifiers_go_direct():
    snapshot = {"DBClusterSnapshotIdentifier": "rds:c-2025-03-01-00-00",
                "DBClusterSnapshotArn": f"{ARN}:cluster-snapshot:rds:c-2025-03-01-00-00", "Status": "available"}
    rds = FakeRds({"describe_db_clusters": [cluster("c")], "describe_db_cluster_snapshots": [snapshot]})
    gateway, _ = observed(rds, 1)
    assert gateway.describe_cluster(f"{ARN}:cluster:c")["DBClusterIdentifier"] == "c"
    assert gateway.describe_snapshot("rds:c-2025-03-01-00-00")["Status"] == "available"
    assert gateway.describe_snapshot(snapshot["DBClusterSnapshotArn"]) is not None
    assert gateway.describe_cluster("two--hyphens") is None
    assert all("direct" in request for request in rds.requests)
    assert rds.requests[1]["direct"]["SnapshotType"] == "automated"
    assert [RdsObserver.batches(kind, "x" * kind.max_length) for kind in (CLUSTERS, CLUSTER_SNAPSHOTS)] == [True] * 2
    assert not RdsObserver.batches(CLUSTERS, "x" * 64)
    assert not RdsObserver.batches(INSTANCES, "ends-with-")


def test_a_cluster_s_instances_are_batched_by_cluster_in_one_request_when_they_fit_one_page():
    clusters = [f"c{number}" for number in range(8)]
    rds = FakeRds({"describe_db_instances": [instance(f"{name}-{n}", name) for name in clusters for n in (1, 2)]})
    gateway, _ = observed(rds, len(clusters), CLUSTER_INSTANCES)
    found = in_threads([lambda name=name: gateway.list_cluster_instances(name) for name in clusters])
    for name, instances in zip(clusters, found):
        assert [item["DBInstanceIdentifier"] for item in instances] == [f"{name}-1", f"{name}-2"]
    assert [len(request["values"]) for request in rds.requests] == [8]
    assert {request["filter"] for request in rds.requests} == {"db-cluster-id"}


def test_clusters_whose_instances_took_several_pages_are_asked_again_six_per_request():
    # An instance a shifted marker skipped leaves its cluster found (it has another): only asking again in groups
    # whose instances fit one page (6 clusters of at most 16) finds it.
    clusters = [f"c{number}" for number in range(8)]
    rds = FakeRds({"describe_db_instances": [instance(f"{name}-{n}", name) for name in clusters for n in (1, 2)]},
                  page_size=10)
    rds.hidden_on_first_pass = {"c3-2"}
    gateway, _ = observed(rds, len(clusters), CLUSTER_INSTANCES)
    found = in_threads([lambda name=name: gateway.list_cluster_instances(name) for name in clusters])
    for name, instances in zip(clusters, found):
        assert [item["DBInstanceIdentifier"] for item in instances] == [f"{name}-1", f"{name}-2"]
    assert [len(request["values"]) for request in rds.requests] == [8, 6, 2]
    assert {item["answered_by"] for instances in found for item in instances} == {2, 3}


def test_after_an_answer_of_several_pages_a_request_holds_as_many_clusters_as_fit_one_page():
    clusters = [f"c{number}" for number in range(60)]
    rds = FakeRds({"describe_db_instances": [instance(f"{name}-{n}", name) for name in clusters for n in (1, 2)]})
    gateway, _ = observed(rds, len(clusters), CLUSTER_INSTANCES)
    for _ in range(2):
        found = in_threads([lambda name=name: gateway.list_cluster_instances(name) for name in clusters])
        assert [len(instances) for instances in found] == [2] * len(clusters)
    sizes = [len(request["values"]) for request in rds.requests]
    # 120 instances took two pages: asked again 6 clusters per request; then 50 clusters (100 instances) per request
    assert sizes == [60] + [6] * 10 + [50, 10]


def test_more_identifiers_than_a_filter_takes_are_split_into_requests_of_100():
    names = [f"s{number}" for number in range(130)]
    snapshots = [{"DBClusterSnapshotIdentifier": name, "Status": "available"} for name in names]
    rds = FakeRds({"describe_db_cluster_snapshots": snapshots})
    gateway, _ = observed(rds, len(names), CLUSTER_SNAPSHOTS)
    found = in_threads([lambda name=name: gateway.describe_snapshot(name) for name in names])
    assert [item["DBClusterSnapshotIdentifier"] for item in found] == names
    assert [len(request["values"]) for request in rds.requests] == [100, 30]


def test_identifiers_missing_from_a_multi_page_answer_are_asked_once_more():
    names = ["a", "b", "c", "d", "e"]
    rds = FakeRds({"describe_db_clusters": [cluster(name) for name in names]}, page_size=2)
    rds.hidden_on_first_pass = {"c"}
    gateway, _ = observed(rds, len(names))
    found = in_threads([lambda name=name: gateway.describe_cluster(name) for name in names])
    assert [item["DBClusterIdentifier"] for item in found] == names
    assert [request["values"] for request in rds.requests] == [names, ["c"]]
    assert found[2]["answered_by"] == 2


def test_what_a_batch_returns_is_noted_in_the_callers_turn():
    rds = FakeRds({"describe_db_clusters": [cluster("moving", "creating"), cluster("still")]})
    gateway, _ = observed(rds, 2)

    def turn(name: str) -> set[str]:
        with transitions.collecting() as seen:
            gateway.describe_cluster(name)
        return seen

    moving, still = in_threads([lambda: turn("moving"), lambda: turn("still")])
    assert moving == {f"{ARN}:cluster:moving"}
    assert still == set()


def test_a_batch_is_sent_in_no_restore_s_turn():
    """The request serves every caller: it is not the first caller's (its audit, its request budget priority)."""
    rds = FakeRds({"describe_db_clusters": [cluster("a"), cluster("b")]})
    gateway, _ = observed(rds, 2)

    def in_turn(name: str) -> tuple[str, str]:
        with audit.turn({"namespace": "ns", "name": name, "uid": f"uid-{name}"}, "RestoringCluster"):
            found = gateway.describe_cluster(name)
            return found["DBClusterIdentifier"], audit.current_turn().name

    assert in_threads([lambda: in_turn("a"), lambda: in_turn("b")]) == [("a", "a"), ("b", "b")]
    assert [request["turn"] for request in rds.requests] == [None]


def test_batching_is_off_without_a_window_and_one_observer_per_identity_and_region(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert AwsClients(boto3.session.Session()).observer(REGION) is None
    clients = AwsClients(boto3.session.Session(), batch_window=0.25)
    observer = clients.observer(REGION)
    assert observer is clients.observer(REGION) and observer.window == 0.25
    assert observer is not clients.observer("us-east-1")
    assert observer is not clients.observer(REGION, "arn:aws:iam::111122223333:role/r", "ext")
    assert observer._batchers[CLUSTERS].client is clients.client("rds", REGION)


def test_every_side_of_one_identity_and_region_reads_through_one_observer(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients = AwsClients(boto3.session.Session(), batch_window=0.25)
    source, target = AwsSide(clients, REGION), AwsSide(clients, REGION)
    assert source.rds.observer is not None and source.rds.observer is target.rds.observer
    assert source.in_region("us-east-1").rds.observer is not source.rds.observer
    assert AwsSide(AwsClients(boto3.session.Session()), REGION).rds.observer is None


@pytest.mark.parametrize("on", [True, False])
def test_the_runtime_batches_as_the_settings_say(monkeypatch, on):
    from tests.unit.test_timeouts_and_backoff import TimedApiClient, _configuration

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(aws_batch_describes=on, aws_batch_window_seconds=0.2)
    runtime = driver.Runtime.create(settings, TimedApiClient(_configuration(), 7))
    observer = runtime.aws.observer(REGION)
    assert (observer.window if observer else None) == (0.2 if on else None)
