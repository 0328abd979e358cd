"""Faults that AWS really has, injected through the simulator's control API and seen over HTTP.

Forced statuses (the failure statuses RDS reports), the status the next create ends in, a call
that takes effect while its answer is lost (an error or a dropped connection), and eventual
consistency (a new object missing from describes for a while).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from aurora_restore_devenv.simulator import SimulatorApiError, SimulatorClient

REGION = "us-east-1"
ENGINE = "aurora-postgresql"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)
    return value


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def cluster_status(rds: Any, identifier: str) -> str:
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"]


def instance_status(rds: Any, identifier: str) -> str:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0][
        "DBInstanceStatus"
    ]


def snapshot_status(rds: Any, identifier: str) -> str:
    return rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=identifier)[
        "DBClusterSnapshots"
    ][0]["Status"]


def create_cluster(rds: Any, identifier: str | None = None) -> str:
    identifier = identifier or unique("cluster")
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine=ENGINE,
        MasterUsername="postgres",
        MasterUserPassword="not-a-secret-1",
    )
    return identifier


def create_instance(rds: Any, cluster: str, identifier: str | None = None) -> str:
    identifier = identifier or unique("instance")
    rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        DBClusterIdentifier=cluster,
        Engine=ENGINE,
        DBInstanceClass="db.r6g.large",
    )
    return identifier


@pytest.fixture(autouse=True)
def restore_simulator(simulator_client: SimulatorClient) -> Iterator[None]:
    """Put back the delay, faults, next-create rules and consistency window a test changed."""
    delay = simulator_client.delay()
    yield
    simulator_client.clear_faults()
    simulator_client.clear_next_create_statuses()
    simulator_client.set_consistency(0)
    simulator_client.set_delay(delay)


@pytest.fixture
def rds(aws_client: Callable[..., Any]) -> Any:
    return aws_client("rds")


@pytest.fixture
def sim(simulator_client: SimulatorClient) -> SimulatorClient:
    return simulator_client


# -- forced statuses ------------------------------------------------------------------------


def test_a_forced_status_sticks_until_cleared(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    cluster = create_cluster(rds)
    instance = create_instance(rds, cluster)
    snapshot = unique("snap")
    rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=snapshot)

    answer = sim.set_rds_status("cluster", cluster, "inaccessible-encryption-credentials", REGION)
    assert (answer["status"], answer["previous"]) == ("inaccessible-encryption-credentials", None)
    sim.set_rds_status("instance", instance, "incompatible-parameters", REGION)
    sim.set_rds_status("cluster-snapshot", snapshot, "failed", REGION)
    assert cluster_status(rds, cluster) == "inaccessible-encryption-credentials"
    assert instance_status(rds, instance) == "incompatible-parameters"
    assert snapshot_status(rds, snapshot) == "failed"
    with pytest.raises(ClientError) as refused:  # the state checks see the forced status
        rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=unique("s"))
    assert code(refused) == "InvalidDBClusterStateFault"

    sim.set_rds_status("instance", instance, "storage-full", REGION)  # changed
    assert instance_status(rds, instance) == "storage-full"
    sim.set_rds_status("instance", instance, None, REGION)  # cleared
    sim.set_rds_status("cluster", cluster, None, REGION)
    assert instance_status(rds, instance) == "available"
    assert cluster_status(rds, cluster) == "available"

    with pytest.raises(SimulatorApiError) as missing:
        sim.set_rds_status("cluster", unique("nothing"), "failed", REGION)
    assert missing.value.status == 404
    with pytest.raises(SimulatorApiError) as bad_kind:
        sim.set_rds_status("volume", cluster, "failed", REGION)
    assert bad_kind.value.status == 400


def test_a_deletion_shows_through_a_forced_status(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    cluster = create_cluster(rds)
    instance = create_instance(rds, cluster)
    sim.set_delay(1.0)
    sim.set_rds_status("instance", instance, "incompatible-restore", REGION)
    rds.delete_db_instance(DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
    assert instance_status(rds, instance) == "deleting"
    wait_until(lambda: not rds.describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [cluster]}])["DBInstances"])


# -- the status a create ends in ----------------------------------------------------------------


def test_the_next_create_of_a_kind_ends_in_the_status_given(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0.5)
    broken, healthy = unique("broken"), unique("healthy")
    rule = sim.fail_next_create("cluster", "inaccessible-encryption-credentials", identifier=broken)
    assert rule["count"] == 1 and sim.next_create_statuses() == [rule]
    create_cluster(rds, healthy)  # another identifier: not matched
    create_cluster(rds, broken)
    assert sim.next_create_statuses() == []
    assert cluster_status(rds, broken) == "creating"
    wait_until(lambda: cluster_status(rds, broken) == "inaccessible-encryption-credentials")
    assert cluster_status(rds, healthy) == "available"

    sim.fail_next_create("instance", "incompatible-parameters", region=REGION)
    instance = create_instance(rds, healthy)
    assert instance_status(rds, instance) == "creating"
    wait_until(lambda: instance_status(rds, instance) == "incompatible-parameters")

    sim.set_delay(0)  # no transition: the status at once
    sim.fail_next_create("cluster-snapshot", "failed")
    snapshot = unique("snap")
    rds.create_db_cluster_snapshot(DBClusterIdentifier=healthy, DBClusterSnapshotIdentifier=snapshot)
    assert snapshot_status(rds, snapshot) == "failed"


def test_next_create_rules_are_validated(sim: SimulatorClient) -> None:
    with pytest.raises(SimulatorApiError) as bad_kind:
        sim.fail_next_create("volume", "failed")
    assert bad_kind.value.status == 400
    with pytest.raises(SimulatorApiError) as bad_count:
        sim.fail_next_create("cluster", "failed", count=-1)
    assert bad_count.value.status == 400
    assert sim.next_create_statuses() == []


# -- applied, but the answer was lost ---------------------------------------------------------


def test_an_applied_call_whose_answer_is_lost_is_retried_into_already_exists(
    rds: Any, aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    sim.set_delay(0)
    cluster = create_cluster(rds)
    rule = sim.add_fault("rds", "CreateDBInstance", "InternalFailure", after=True)
    assert rule["after"] is True and rule["drop"] is False
    first = unique("instance")
    with pytest.raises(ClientError) as lost:
        create_instance(rds, cluster, first)
    assert code(lost) == "InternalFailure"
    assert instance_status(rds, first) == "available"  # it took effect

    retrying = aws_client("rds", config=Config(retries={"mode": "standard", "total_max_attempts": 4}))
    sim.clear_calls()
    sim.add_fault("rds", "CreateDBInstance", "InternalFailure", after=True)
    second = unique("instance")
    with pytest.raises(ClientError) as retried:
        create_instance(retrying, cluster, second)
    assert code(retried) == "DBInstanceAlreadyExists"  # botocore's retry met its own instance
    calls = sim.calls(service="rds", action="CreateDBInstance")
    assert [call["fault"] for call in calls] == ["InternalFailure:applied", None]
    assert [call["status"] for call in calls] == [500, 400]


def test_an_applied_fault_passes_a_refusal_through_and_waits_for_a_call_that_succeeds(
    rds: Any, sim: SimulatorClient
) -> None:
    """Nothing was applied when moto refuses the call, so no answer is lost: the client sees the real refusal."""
    sim.set_delay(0)
    sim.add_fault("rds", "CreateDBInstance", "InternalFailure", after=True)
    with pytest.raises(ClientError) as refused:
        create_instance(rds, unique("no-such-cluster"))
    assert code(refused) == "DBClusterNotFoundFault"
    assert [rule["count"] for rule in sim.faults()] == [1]  # still armed

    cluster = create_cluster(rds)
    with pytest.raises(ClientError) as lost:
        create_instance(rds, cluster, unique("instance"))
    assert code(lost) == "InternalFailure"
    assert sim.faults() == []


def test_a_dropped_connection_before_or_after_the_call(
    rds: Any, aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    sim.set_delay(0)
    cluster = create_cluster(rds)
    sim.clear_calls()
    sim.add_fault("rds", "CreateDBInstance", drop=True, after=True)
    applied = unique("instance")
    with pytest.raises(ConnectionClosedError):
        create_instance(rds, cluster, applied)
    assert instance_status(rds, applied) == "available"

    sim.add_fault("rds", "CreateDBInstance", drop=True)  # lost on the way in: nothing happens
    never = unique("instance")
    with pytest.raises(ConnectionClosedError):
        create_instance(rds, cluster, never)
    with pytest.raises(ClientError) as missing:
        instance_status(rds, never)
    assert code(missing) == "DBInstanceNotFound"
    calls = sim.calls(service="rds", action="CreateDBInstance")
    assert [(call["fault"], call["status"]) for call in calls] == [
        ("ConnectionDropped:applied", 0),
        ("ConnectionDropped", 0),
    ]

    retrying = aws_client("rds", config=Config(retries={"mode": "standard", "total_max_attempts": 4}))
    sim.add_fault("rds", "CreateDBInstance", drop=True, after=True)
    with pytest.raises(ClientError) as retried:
        create_instance(retrying, cluster, applied + "x")
    assert code(retried) == "DBInstanceAlreadyExists"


# -- eventual consistency ----------------------------------------------------------------------


def test_new_objects_are_missing_from_describes_for_a_while(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    source = create_cluster(rds)  # created before the window is set: seen at once
    assert sim.set_consistency(0.5) == 0 and sim.consistency() == 0.5
    cluster = create_cluster(rds)
    instance = create_instance(rds, source)
    snapshot = unique("snap")
    rds.create_db_cluster_snapshot(DBClusterIdentifier=source, DBClusterSnapshotIdentifier=snapshot)
    created = time.monotonic()

    with pytest.raises(ClientError) as no_cluster:
        cluster_status(rds, cluster)
    assert code(no_cluster) == "DBClusterNotFoundFault"
    with pytest.raises(ClientError) as no_instance:
        instance_status(rds, instance)
    assert code(no_instance) == "DBInstanceNotFound"
    with pytest.raises(ClientError) as no_snapshot:
        snapshot_status(rds, snapshot)
    assert code(no_snapshot) == "DBClusterSnapshotNotFoundFault"
    listed = [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]]
    assert source in listed and cluster not in listed
    with pytest.raises(ClientError) as taken:  # every other call sees it already
        create_cluster(rds, cluster)
    assert code(taken) == "DBClusterAlreadyExistsFault"

    wait_until(lambda: cluster in [c["DBClusterIdentifier"]
                                   for c in rds.describe_db_clusters()["DBClusters"]])
    assert time.monotonic() - created >= 0.45
    assert cluster_status(rds, cluster) == "available"
    assert instance_status(rds, instance) == "available"
    assert snapshot_status(rds, snapshot) == "available"
    listed_after = [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]]
    assert listed_after.index(source) < listed_after.index(cluster)  # the order is kept
