"""Batched observation against the simulator: batched answers are the direct describes' answers, item by item.

Each test acts in an account of its own (the x-moto-account-id header), so that the resources of other tests
neither join its batches nor change its request counts. Which callers share a batch is decided by the test: the
window ends once the expected number of callers has joined (`joined`).
"""

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aurora_restore.aws.clients import AwsClients
from aurora_restore.aws.observer import CLUSTER_INSTANCES, CLUSTER_SNAPSHOTS, CLUSTERS, INSTANCES, Kind, RdsObserver
from aurora_restore.aws.rds import RdsGateway
from aurora_restore.aws.side import AwsSide
from tests.unit.test_observer import in_threads, joined

REGION = "us-east-1"
ENGINE = "aurora-postgresql"
# Fields that move with the clock between two describes of the same resource.
VOLATILE = ("LatestRestorableTime",)


@pytest.fixture
def account() -> str:
    return str(random.randint(10**11, 10**12 - 1))


@pytest.fixture
def rds(aws_client, account) -> Callable[[], Any]:
    """`rds()`: a new boto3 RDS client of the test's account (one per gateway, as AwsClients makes one each)."""

    def make() -> Any:
        client = aws_client("rds", region_name=REGION)
        client.meta.events.register(
            "before-sign.rds.*", lambda request, **_: request.headers.add_header("x-moto-account-id", account)
        )
        return client

    return make


@pytest.fixture
def direct(rds) -> RdsGateway:
    return RdsGateway(rds(), REGION)


def batched(client, kind: Kind, callers: int) -> RdsGateway:
    """A gateway whose `kind` batches are sent once `callers` callers have joined."""
    observer = RdsObserver(client, window=0.5)
    batcher = observer._batchers[kind]
    batcher._wait = joined(batcher, callers)
    return RdsGateway(client, REGION, observer)


def wait_until(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def settled(item: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if item is None else {key: value for key, value in item.items() if key not in VOLATILE}


def clusters(client, names: list[str], instances: int = 0) -> None:
    for name in names:
        client.create_db_cluster(DBClusterIdentifier=name, Engine=ENGINE, MasterUsername="admin_user",
                                 MasterUserPassword="batched-test-1")
        for number in range(1, instances + 1):
            client.create_db_instance(DBInstanceIdentifier=f"{name}-{number}", DBClusterIdentifier=name,
                                      Engine=ENGINE, DBInstanceClass="db.r6g.large")
    wait_until(lambda: all(c["Status"] == "available" for c in client.describe_db_clusters()["DBClusters"])
               and all(i["DBInstanceStatus"] == "available" for i in client.describe_db_instances()["DBInstances"]))


def snapshots(client, cluster: str, names: list[str]) -> None:
    clusters(client, [cluster])
    for name in names:
        client.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=name, DBClusterIdentifier=cluster)
    paginator = client.get_paginator("describe_db_cluster_snapshots")
    wait_until(lambda: all(s["Status"] == "available" for page in paginator.paginate(SnapshotType="manual")
                           for s in page["DBClusterSnapshots"]))


def describe_all(gateway: RdsGateway, method: str, identifiers: list[str]) -> list[Any]:
    return in_threads([lambda identifier=identifier: getattr(gateway, method)(identifier)
                       for identifier in identifiers])


def describe_counting(simulator_client, account: str, gateway: RdsGateway, method: str, identifiers: list[str],
                      action: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """`describe_all`'s answers, and the `action` requests the account sent for them."""
    simulator_client.clear_calls()
    found = describe_all(gateway, method, identifiers)
    return found, simulator_client.calls(service="rds", action=action, account=account)


@contextlib.contextmanager
def pages_of(simulator_client, size: int) -> Iterator[None]:
    """The simulator answers describes in pages of `size` items meanwhile."""
    previous = simulator_client.set_page_size(size)
    try:
        yield
    finally:
        simulator_client.set_page_size(previous)


# (kind, gateway method, RDS action)
CASES = [
    (CLUSTERS, "describe_cluster", "DescribeDBClusters"),
    (INSTANCES, "describe_instance", "DescribeDBInstances"),
    (CLUSTER_INSTANCES, "list_cluster_instances", "DescribeDBInstances"),
]


@pytest.mark.parametrize("kind, method, action", CASES, ids=[case[1] for case in CASES])
def test_batched_clusters_and_instances_are_the_direct_answers(rds, direct, simulator_client, account, kind, method,
                                                               action):
    client = rds()
    names = [f"batch-{number}" for number in range(4)]
    clusters(client, names, instances=2)
    identifiers = {
        "describe_cluster": names + ["Batch-1", "no-such-cluster"],
        "describe_instance": [f"{name}-{n}" for name in names for n in (1, 2)] + ["BATCH-0-2", "no-such-instance"],
        "list_cluster_instances": names + ["BATCH-3", "no-such-cluster"],
    }[method]
    gateway = batched(client, kind, len(identifiers))
    found, sent = describe_counting(simulator_client, account, gateway, method, identifiers, action)
    expected = [getattr(direct, method)(identifier) for identifier in identifiers]
    assert found[-1] in (None, [])
    if method == "list_cluster_instances":
        assert [sorted((settled(i) for i in items), key=str) for items in found] == \
            [sorted((settled(i) for i in items), key=str) for items in expected]
        assert all(len(items) == 2 for items in found[:-1])
    else:
        assert [settled(item) for item in found] == [settled(item) for item in expected]
        assert all(item is not None for item in found[:-1])
    assert len(sent) == 1  # every caller of the batch answered by one request (5 distinct clusters: one page)
    assert sent[0]["parameters"].get("DBClusterIdentifier") is None  # a filter, not a describe by identifier


def test_batched_snapshots_are_the_direct_answers_across_two_requests_beyond_100(rds, direct, simulator_client,
                                                                                  account):
    client = rds()
    names = [f"many-{number}" for number in range(104)]
    snapshots(client, "many", names)
    identifiers = names + ["no-such-snapshot"]
    gateway = batched(client, CLUSTER_SNAPSHOTS, len(identifiers))
    found, sent = describe_counting(simulator_client, account, gateway, "describe_snapshot", identifiers,
                                    "DescribeDBClusterSnapshots")
    assert len(sent) == 2  # 105 identifiers: 100 in the first filter, 5 in the second; one page each
    assert found[-1] is None and all(item is not None for item in found[:-1])
    assert found == [direct.describe_snapshot(identifier) for identifier in identifiers]


def test_a_batch_reads_every_page(rds, direct, simulator_client, account):
    client = rds()
    names = [f"paged-{number}" for number in range(7)]
    clusters(client, names)
    gateway = batched(client, CLUSTERS, len(names))
    with pages_of(simulator_client, 2):
        found, sent = describe_counting(simulator_client, account, gateway, "describe_cluster", names,
                                        "DescribeDBClusters")
    assert len(sent) == 4  # one batch, pages of 2, 2, 2 and 1
    assert [settled(item) for item in found] == [settled(direct.describe_cluster(name)) for name in names]


def test_clusters_whose_instances_took_several_pages_are_asked_again_in_groups_that_fit_one_page(
        rds, direct, simulator_client, account):
    client = rds()
    names = [f"grouped-{number}" for number in range(8)]
    clusters(client, names, instances=2)
    gateway = batched(client, CLUSTER_INSTANCES, len(names))
    with pages_of(simulator_client, 2):
        found, sent = describe_counting(simulator_client, account, gateway, "list_cluster_instances", names,
                                        "DescribeDBInstances")
        expected = [direct.list_cluster_instances(name) for name in names]
    assert [len(items) for items in found] == [2] * len(names)
    assert [sorted((settled(i) for i in items), key=str) for items in found] == \
        [sorted((settled(i) for i in items), key=str) for items in expected]
    # 16 instances in 8 pages of 2, then 6 clusters (12 instances: 6 pages) and 2 clusters (4: 2 pages) again
    assert len(sent) == 8 + 6 + 2


def _delete_after_first_page(client, deleter, choose: Callable[[list[str]], str]) -> dict[str, str]:
    """After the first page of the next DescribeDBClusterSnapshots, delete the snapshot `choose` picks from
    the identifiers that page returned; returns {"deleted": identifier} once done."""
    done: dict[str, str] = {}
    lock = threading.Lock()

    def after_page(parsed, **_):
        with lock:
            if done or not parsed.get("Marker"):
                return
            returned = [s["DBClusterSnapshotIdentifier"] for s in parsed["DBClusterSnapshots"]]
            done["deleted"] = choose(returned)
            deleter.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=done["deleted"])

    client.meta.events.register("after-call.rds.DescribeDBClusterSnapshots", after_page)
    return done


def test_a_snapshot_deleted_between_two_pages_is_none_and_the_others_are_found(rds, direct, simulator_client,
                                                                              account):
    client = rds()
    names = [f"going-{number}" for number in range(6)]
    snapshots(client, "going", names)
    gateway = batched(client, CLUSTER_SNAPSHOTS, len(names))
    deleted = _delete_after_first_page(client, rds(), lambda returned: names[-1])  # on a page not read yet
    with pages_of(simulator_client, 2):
        found, sent = describe_counting(simulator_client, account, gateway, "describe_snapshot", names,
                                        "DescribeDBClusterSnapshots")
    assert deleted == {"deleted": names[-1]}
    assert found[-1] is None
    assert found[:-1] == [direct.describe_snapshot(name) for name in names[:-1]]
    assert all(item is not None for item in found[:-1])
    assert len(sent) == 4  # 3 pages of the batch (5 left), then the missing one asked once more


def test_a_snapshot_the_shifted_marker_skipped_is_asked_again_and_found(rds, direct, simulator_client, account):
    """Deleting a snapshot the first page returned shifts the simulator's offset marker past one that exists."""
    client = rds()
    names = [f"shift-{number}" for number in range(6)]
    snapshots(client, "shift", names)
    gateway = batched(client, CLUSTER_SNAPSHOTS, len(names))
    deleted = _delete_after_first_page(client, rds(), lambda returned: returned[0])
    with pages_of(simulator_client, 2):
        found, sent = describe_counting(simulator_client, account, gateway, "describe_snapshot", names,
                                        "DescribeDBClusterSnapshots")
    survivors = [name for name in names if name != deleted["deleted"]]
    assert all(item is not None for item in found)  # the deleted one was answered by the first page
    by_name = {item["DBClusterSnapshotIdentifier"]: item for item in found}
    assert [by_name[name] for name in survivors] == [direct.describe_snapshot(name) for name in survivors]
    assert len(sent) == 4  # 3 pages (one item skipped by the shift), then the skipped one asked again


def test_the_sides_of_a_restore_share_the_batches_of_their_identity(aws_session, simulator, simulator_client,
                                                                    monkeypatch):
    """Through AwsClients and AwsSide, as the driver builds them: two sides of one identity, one request."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", simulator.url)
    replica = f"batch-{random.randint(0, 10**6)}"
    clients = AwsClients(session=aws_session, replica=replica, batch_window=0.5)
    source, target = AwsSide(clients, REGION), AwsSide(clients, REGION)
    batcher = source.rds.observer._batchers[CLUSTERS]
    batcher._wait = joined(batcher, 4)
    names = [f"absent-{replica}-{number}" for number in range(4)]
    found = in_threads([lambda side=side, name=name: side.rds.describe_cluster(name)
                        for side, name in zip((source, target, source, target), names)])
    sent = [call for call in simulator_client.calls(service="rds", action="DescribeDBClusters")
            if f"pod/{replica}" in call.get("user_agent", "")]
    assert found == [None] * 4
    assert len(sent) == 1
