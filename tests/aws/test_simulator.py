"""The AWS simulator's extensions of moto, checked over HTTP with boto3 as the operator uses it.

Each test names what would break if an extension stopped working. Objects get unique names,
so tests share the session's simulator; tests that change its delay, page size or faults put
them back (see `restore_simulator`).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from aurora_restore_devenv.simulator import (
    SimulatorApiError,
    SimulatorClient,
    SimulatorProcess,
)
from tests.aws.conftest import poll_until, unique

REGION = "us-east-1"  # the region of the `aws_client` fixture's clients
OTHER_REGION = "us-west-2"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
ENGINE = "aurora-postgresql"
ENGINE_VERSION = "15.4"


# -- helpers -------------------------------------------------------------------------------


wait_until = partial(poll_until, timeout=10.0, interval=0.1)  # this module's patience and pace


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def cluster_status(rds: Any, identifier: str) -> str:
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"]


def instance_status(rds: Any, identifier: str) -> str:
    instances = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    return instances[0]["DBInstanceStatus"]


def snapshot(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=identifier)[
        "DBClusterSnapshots"
    ][0]


def cluster_exists(rds: Any, identifier: str) -> bool:
    try:
        rds.describe_db_clusters(DBClusterIdentifier=identifier)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "DBClusterNotFoundFault"
        return False
    return True


def instance_exists(rds: Any, identifier: str) -> bool:
    try:
        rds.describe_db_instances(DBInstanceIdentifier=identifier)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "DBInstanceNotFound"
        return False
    return True


def cluster_statuses_until_gone(rds: Any, identifier: str, timeout: float = 10.0) -> list[str]:
    """The distinct statuses a cluster shows, in order, until it no longer exists."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = cluster_status(rds, identifier)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "DBClusterNotFoundFault"
            return seen
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.05)
    raise AssertionError(f"cluster {identifier} still exists after {timeout}s: {seen}")


def create_cluster(rds: Any, identifier: str | None = None, **kwargs: Any) -> str:
    identifier = identifier or unique("cluster")
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine=ENGINE,
        EngineVersion=ENGINE_VERSION,
        MasterUsername="postgres",
        MasterUserPassword="not-a-secret-1",
        **kwargs,
    )
    return identifier


def available_cluster(rds: Any) -> str:
    identifier = create_cluster(rds)
    wait_until(lambda: cluster_status(rds, identifier) == "available")
    return identifier


def available_snapshot(rds: Any, cluster: str | None = None) -> dict[str, Any]:
    cluster = cluster or available_cluster(rds)
    identifier = unique("snap")
    rds.create_db_cluster_snapshot(
        DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=identifier
    )
    return wait_until(
        lambda: (found := snapshot(rds, identifier))["Status"] == "available" and found
    )


@contextlib.contextmanager
def immediately(sim: SimulatorClient) -> Iterator[None]:
    """Transitions end at once inside the block: for preparing objects quickly."""
    previous = sim.set_delay(0)
    try:
        yield
    finally:
        sim.set_delay(previous)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def restore_simulator(simulator_client: SimulatorClient) -> Iterator[None]:
    """Put back the delay, page size and faults that a test changed."""
    delay, page_size = simulator_client.delay(), simulator_client.page_size()
    yield
    simulator_client.clear_faults()
    simulator_client.set_delay(delay)
    simulator_client.set_page_size(page_size)


@pytest.fixture
def rds(aws_client: Callable[..., Any]) -> Any:
    return aws_client("rds")


@pytest.fixture
def sim(simulator_client: SimulatorClient) -> SimulatorClient:
    return simulator_client


@pytest.fixture
def delay(simulator: SimulatorProcess) -> float:
    """The session simulator's transition delay (restored after each test)."""
    return simulator.delay


# -- 1. the server -------------------------------------------------------------------------


def test_health_reports_the_settings(sim: SimulatorClient, delay: float, aws_region: str) -> None:
    assert sim.health() == {"status": "ok", "delay": delay, "page_size": None}
    assert aws_region == REGION


def test_serves_every_service_the_operator_uses(aws_client: Callable[..., Any]) -> None:
    assert aws_client("sts").get_caller_identity()["Account"] == ACCOUNT
    key_id = aws_client("kms").create_key()["KeyMetadata"]["KeyId"]
    secret = aws_client("secretsmanager").create_secret(Name=unique("secret"), SecretString="x")
    topic = aws_client("sns").create_topic(Name=unique("topic"))["TopicArn"]
    queue = aws_client("sqs").create_queue(QueueName=unique("queue"))["QueueUrl"]
    role = aws_client("iam").create_role(RoleName=unique("role"), AssumeRolePolicyDocument="{}")
    assert key_id and secret["ARN"] and topic and queue and role["Role"]["Arn"]
    assert "DBClusters" in aws_client("rds").describe_db_clusters()


def test_process_picks_a_free_port_and_stops(tmp_path: Any) -> None:
    with SimulatorProcess(delay=0, log_path=tmp_path / "sim.log") as process:
        assert process.port and process.pid
        assert process.url == f"http://127.0.0.1:{process.port}"
        assert process.client.health()["delay"] == 0
        pid = process.pid
    assert process.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_reset_empties_moto_and_restores_start_up_settings(tmp_path: Any) -> None:
    with SimulatorProcess(delay=0, log_path=tmp_path / "sim.log") as process:
        rds = boto3.client(
            "rds",
            endpoint_url=process.url,
            region_name=REGION,
            aws_access_key_id="AKIDSIMULATOR0000000",
            aws_secret_access_key="x",
        )
        create_cluster(rds, "before-reset")
        process.client.set_delay(3)
        process.client.add_fault("sts")
        process.client.reset()
        assert rds.describe_db_clusters()["DBClusters"] == []
        assert process.client.health()["delay"] == 0
        assert process.client.faults() == []
        assert [call["action"] for call in process.client.calls()] == ["DescribeDBClusters"]


# -- 2. status transitions -----------------------------------------------------------------


def test_created_cluster_is_creating_until_the_delay_passed(rds: Any, delay: float) -> None:
    started = time.monotonic()
    created = rds.create_db_cluster(
        DBClusterIdentifier=(identifier := unique("cluster")),
        Engine=ENGINE,
        MasterUsername="postgres",
        MasterUserPassword="not-a-secret-1",
    )["DBCluster"]
    assert created["Status"] == "creating"
    assert cluster_status(rds, identifier) == "creating"
    wait_until(lambda: cluster_status(rds, identifier) == "available")
    assert time.monotonic() - started >= delay * 0.9


def test_restored_clusters_are_creating_then_available(rds: Any, sim: SimulatorClient) -> None:
    with immediately(sim):
        source = available_snapshot(rds)
    from_snapshot = unique("restored")
    rds.restore_db_cluster_from_snapshot(
        DBClusterIdentifier=from_snapshot,
        SnapshotIdentifier=source["DBClusterSnapshotIdentifier"],
        Engine=ENGINE,
    )
    to_time = unique("pitr")
    rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=to_time,
        SourceDBClusterIdentifier=source["DBClusterIdentifier"],
        UseLatestRestorableTime=True,
    )
    assert cluster_status(rds, from_snapshot) == "creating"
    assert cluster_status(rds, to_time) == "creating"
    wait_until(lambda: cluster_status(rds, from_snapshot) == "available")
    wait_until(lambda: cluster_status(rds, to_time) == "available")


def test_instance_is_creating_then_available_and_may_join_a_creating_cluster(rds: Any) -> None:
    cluster = create_cluster(rds)
    instance = unique("instance")
    created = rds.create_db_instance(
        DBInstanceIdentifier=instance,
        DBClusterIdentifier=cluster,
        Engine=ENGINE,
        DBInstanceClass="db.r6g.large",
    )["DBInstance"]
    assert created["DBInstanceStatus"] == "creating"
    assert instance_status(rds, instance) == "creating"
    wait_until(lambda: instance_status(rds, instance) == "available")


def test_snapshot_is_creating_with_rising_percent_progress(
    rds: Any, sim: SimulatorClient, delay: float
) -> None:
    with immediately(sim):
        cluster = available_cluster(rds)
    identifier = unique("snap")
    created = rds.create_db_cluster_snapshot(
        DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=identifier
    )["DBClusterSnapshot"]
    assert created["Status"] == "creating" and created["PercentProgress"] < 50

    seen = []
    while (current := snapshot(rds, identifier))["Status"] != "available":
        assert current["Status"] == "creating"
        seen.append(current["PercentProgress"])
        time.sleep(delay / 5)
    assert current["PercentProgress"] == 100
    assert seen == sorted(seen) and len(set(seen)) >= 2 and 0 < max(seen) < 100


def test_copy_is_copying_then_available_and_refuses_a_source_in_progress(
    rds: Any, sim: SimulatorClient
) -> None:
    with immediately(sim):
        cluster = available_cluster(rds)
    creating = unique("snap")
    rds.create_db_cluster_snapshot(
        DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=creating
    )
    with pytest.raises(ClientError) as refused:
        rds.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=creating,
            TargetDBClusterSnapshotIdentifier=unique("copy"),
        )
    assert error_code(refused) == "InvalidDBClusterSnapshotStateFault"

    wait_until(lambda: snapshot(rds, creating)["Status"] == "available")
    copy = unique("copy")
    copied = rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=creating, TargetDBClusterSnapshotIdentifier=copy
    )["DBClusterSnapshot"]
    assert copied["Status"] == "copying"
    assert snapshot(rds, copy)["Status"] == "copying"
    with pytest.raises(ClientError) as restore_refused:
        rds.restore_db_cluster_from_snapshot(
            DBClusterIdentifier=unique("restored"), SnapshotIdentifier=copy, Engine=ENGINE
        )
    assert error_code(restore_refused) == "InvalidDBClusterSnapshotStateFault"
    wait_until(lambda: snapshot(rds, copy)["Status"] == "available")


def test_snapshot_of_a_creating_cluster_is_refused(rds: Any) -> None:
    cluster = create_cluster(rds)
    with pytest.raises(ClientError) as refused:
        rds.create_db_cluster_snapshot(
            DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=unique("snap")
        )
    assert error_code(refused) == "InvalidDBClusterStateFault"


def test_cluster_deletion_waits_for_its_instances(rds: Any, sim: SimulatorClient) -> None:
    with immediately(sim):
        cluster = available_cluster(rds)
    instance = unique("instance")
    rds.create_db_instance(
        DBInstanceIdentifier=instance,
        DBClusterIdentifier=cluster,
        Engine=ENGINE,
        DBInstanceClass="db.r6g.large",
    )
    with pytest.raises(ClientError) as refused:
        rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)
    assert error_code(refused) == "InvalidDBClusterStateFault"

    deleted = rds.delete_db_instance(DBInstanceIdentifier=instance)["DBInstance"]
    assert deleted["DBInstanceStatus"] == "deleting"
    assert instance_status(rds, instance) == "deleting"
    with pytest.raises(ClientError) as twice:
        rds.delete_db_instance(DBInstanceIdentifier=instance)
    assert error_code(twice) == "InvalidDBInstanceState"

    # An instance that is being deleted no longer blocks the cluster's deletion.
    assert (
        rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)["DBCluster"][
            "Status"
        ]
        == "deleting"
    )
    assert cluster_status(rds, cluster) == "deleting"
    wait_until(lambda: not instance_exists(rds, instance))
    wait_until(lambda: not cluster_exists(rds, cluster))


def test_cluster_deletion_with_final_snapshot(rds: Any, sim: SimulatorClient) -> None:
    with immediately(sim):
        cluster, other = available_cluster(rds), available_cluster(rds)
    final = unique("final")
    deleting = rds.delete_db_cluster(DBClusterIdentifier=cluster, FinalDBSnapshotIdentifier=final)
    assert deleting["DBCluster"]["Status"] == "backing-up"
    assert snapshot(rds, final)["Status"] == "creating"
    assert cluster_statuses_until_gone(rds, cluster) == ["backing-up", "deleting"]
    assert snapshot(rds, final)["Status"] == "available"
    with pytest.raises(ClientError) as no_choice:
        rds.delete_db_cluster(DBClusterIdentifier=other)
    assert error_code(no_choice) == "InvalidParameterCombination"


def test_zero_delay_behaves_like_plain_moto(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    cluster = create_cluster(rds)
    assert cluster_status(rds, cluster) == "available"
    created = rds.create_db_cluster_snapshot(
        DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=(snap := unique("snap"))
    )
    assert (
        created["DBClusterSnapshot"]["Status"],
        created["DBClusterSnapshot"]["PercentProgress"],
    ) == ("available", 100)
    rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)
    assert not cluster_exists(rds, cluster)
    assert snapshot(rds, snap)["Status"] == "available"


def test_changing_the_delay_affects_objects_in_transition(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(60)
    cluster = create_cluster(rds)
    assert cluster_status(rds, cluster) == "creating"
    sim.set_delay(0)
    assert cluster_status(rds, cluster) == "available"


# -- 3. ARNs -------------------------------------------------------------------------------


def test_snapshot_arns_are_accepted_where_aws_accepts_them(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    source = available_snapshot(rds)
    arn = source["DBClusterSnapshotArn"]
    assert (
        snapshot(rds, arn)["DBClusterSnapshotIdentifier"] == source["DBClusterSnapshotIdentifier"]
    )

    restored = unique("restored")
    rds.restore_db_cluster_from_snapshot(
        DBClusterIdentifier=restored, SnapshotIdentifier=arn, Engine=ENGINE
    )
    assert cluster_exists(rds, restored)

    copy = unique("copy")
    rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier=copy
    )
    copy_arn = wait_until(
        lambda: (found := snapshot(rds, copy))["Status"] == "available" and found
    )["DBClusterSnapshotArn"]
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=copy_arn)
    with pytest.raises(ClientError) as gone:
        snapshot(rds, copy)
    assert error_code(gone) == "DBClusterSnapshotNotFoundFault"


def test_cross_region_copy_takes_the_source_arn(
    rds: Any, aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    with immediately(sim):
        source = available_snapshot(rds)
    rds_west = aws_client("rds", region_name=OTHER_REGION)
    copy = unique("copy")
    copied = rds_west.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=source["DBClusterSnapshotArn"],
        TargetDBClusterSnapshotIdentifier=copy,
        SourceRegion=REGION,
    )["DBClusterSnapshot"]
    assert copied["DBClusterSnapshotArn"].startswith(f"arn:aws:rds:{OTHER_REGION}:")
    assert snapshot(rds_west, copy)["Status"] == "copying"


def test_cluster_arns_are_accepted_where_aws_accepts_them(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    cluster = available_cluster(rds)
    arn = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["DBClusterArn"]
    assert (
        rds.describe_db_clusters(DBClusterIdentifier=arn)["DBClusters"][0]["DBClusterIdentifier"]
        == cluster
    )
    by_filter = rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [arn]}])
    assert [found["DBClusterIdentifier"] for found in by_filter["DBClusters"]] == [cluster]
    manual = available_snapshot(rds, cluster)
    by_cluster_arn = rds.describe_db_cluster_snapshots(
        DBClusterIdentifier=arn, SnapshotType="manual"
    )
    assert [
        found["DBClusterSnapshotIdentifier"] for found in by_cluster_arn["DBClusterSnapshots"]
    ] == [manual["DBClusterSnapshotIdentifier"]]


def test_snapshots_shared_by_another_account_are_used_by_arn(
    aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    sim.set_delay(0)
    owner, restorer = aws_client("rds"), aws_client("rds")
    restorer.meta.events.register(
        "before-sign.rds.*",
        lambda request, **_: request.headers.add_header("x-moto-account-id", OTHER_ACCOUNT),
    )
    arn = available_snapshot(owner)["DBClusterSnapshotArn"]
    with pytest.raises(ClientError) as not_shared:
        snapshot(restorer, arn)
    assert error_code(not_shared) == "DBClusterSnapshotNotFoundFault"

    owner.modify_db_cluster_snapshot_attribute(
        DBClusterSnapshotIdentifier=arn, AttributeName="restore", ValuesToAdd=[OTHER_ACCOUNT]
    )
    assert snapshot(restorer, arn)["DBClusterSnapshotArn"] == arn
    restored = restorer.restore_db_cluster_from_snapshot(
        DBClusterIdentifier=unique("restored"), SnapshotIdentifier=arn, Engine=ENGINE
    )["DBCluster"]
    assert f":{OTHER_ACCOUNT}:cluster:" in restored["DBClusterArn"]
    copied = restorer.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier=unique("copy")
    )["DBClusterSnapshot"]
    assert f":{OTHER_ACCOUNT}:cluster-snapshot:" in copied["DBClusterSnapshotArn"]
    with pytest.raises(ClientError) as own_lookup_untouched:
        snapshot(owner, copied["DBClusterSnapshotIdentifier"])
    assert error_code(own_lookup_untouched) == "DBClusterSnapshotNotFoundFault"


# -- 4. pagination -------------------------------------------------------------------------


def test_snapshots_come_in_pages_of_the_server_page_size(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    cluster = create_cluster(rds)
    expected = [unique("snap") for _ in range(7)]
    for identifier in expected:
        rds.create_db_cluster_snapshot(
            DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=identifier
        )
    sim.set_page_size(3)

    pages, marker = [], None
    while True:
        kwargs = {"Marker": marker} if marker else {}
        page = rds.describe_db_cluster_snapshots(
            DBClusterIdentifier=cluster, SnapshotType="manual", MaxRecords=100, **kwargs
        )
        pages.append([found["DBClusterSnapshotIdentifier"] for found in page["DBClusterSnapshots"]])
        marker = page.get("Marker")
        if not marker:
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    assert sorted(sum(pages, [])) == sorted(expected)

    paginator = rds.get_paginator("describe_db_cluster_snapshots")
    listed = [
        found["DBClusterSnapshotIdentifier"]
        for page in paginator.paginate(DBClusterIdentifier=cluster, SnapshotType="manual")
        for found in page["DBClusterSnapshots"]
    ]
    assert sorted(listed) == sorted(expected)


def test_clusters_and_instances_are_paginated(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    cluster = create_cluster(rds)
    for _ in range(3):
        rds.create_db_instance(
            DBInstanceIdentifier=unique("instance"),
            DBClusterIdentifier=cluster,
            Engine=ENGINE,
            DBInstanceClass="db.r6g.large",
        )
    sim.set_page_size(2)
    for operation, key in (
        ("describe_db_clusters", "DBClusters"),
        ("describe_db_instances", "DBInstances"),
    ):
        pages = list(rds.get_paginator(operation).paginate())
        assert len(pages) >= 2 and all(len(page[key]) <= 2 for page in pages)
        assert all("Marker" in page for page in pages[:-1]) and "Marker" not in pages[-1]
    instances = [
        found
        for page in rds.get_paginator("describe_db_instances").paginate(
            Filters=[{"Name": "db-cluster-id", "Values": [cluster]}]
        )
        for found in page["DBInstances"]
    ]
    assert len(instances) == 3


def test_max_records_follows_aws_limits(rds: Any) -> None:
    with pytest.raises(ClientError) as too_small:
        rds.describe_db_clusters(MaxRecords=5)
    assert error_code(too_small) == "InvalidParameterValue"
    with pytest.raises(ClientError) as too_large:
        rds.describe_db_clusters(MaxRecords=101)
    assert error_code(too_large) == "InvalidParameterValue"
    assert "DBClusters" in rds.describe_db_clusters(MaxRecords=20)


# -- 5. validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, accepted",
    [
        (ENGINE_VERSION, True),  # the snapshot's own version
        ("15.7", True),  # a later minor version
        ("15.99", False),  # unknown
        ("15.2", False),  # lower
        ("16.4", False),  # another major version
    ],
)
def test_restore_engine_version_must_suit_the_snapshot(
    rds: Any, shared_snapshot: dict[str, Any], target: str, accepted: bool
) -> None:
    restore = lambda: rds.restore_db_cluster_from_snapshot(  # noqa: E731
        DBClusterIdentifier=unique("restored"),
        SnapshotIdentifier=shared_snapshot["DBClusterSnapshotIdentifier"],
        Engine=ENGINE,
        EngineVersion=target,
    )
    if accepted:
        assert restore()["DBCluster"]["EngineVersion"] == target
    else:
        with pytest.raises(ClientError) as refused:
            restore()
        assert error_code(refused) == "InvalidParameterCombination"
        assert target in refused.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def shared_snapshot(
    aws_client: Callable[..., Any], simulator_client: SimulatorClient
) -> dict[str, Any]:
    """An available snapshot that several tests only read."""
    with immediately(simulator_client):
        return available_snapshot(aws_client("rds"))


def test_copy_with_a_missing_kms_key_is_refused(
    rds: Any, aws_client: Callable[..., Any], shared_snapshot: dict[str, Any]
) -> None:
    kms = aws_client("kms")
    key = kms.create_key()["KeyMetadata"]
    alias = f"alias/{unique('key')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    west_key = aws_client("kms", region_name=OTHER_REGION).create_key()["KeyMetadata"]["Arn"]
    source = shared_snapshot["DBClusterSnapshotIdentifier"]

    for missing in ("alias/does-not-exist", str(uuid.uuid4()), west_key):
        with pytest.raises(ClientError) as refused:
            rds.copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=source,
                TargetDBClusterSnapshotIdentifier=unique("copy"),
                KmsKeyId=missing,
            )
        assert error_code(refused) == "KMSKeyNotAccessibleFault", missing

    with pytest.raises(ClientError) as restore_refused:
        rds.restore_db_cluster_from_snapshot(
            DBClusterIdentifier=unique("restored"),
            SnapshotIdentifier=source,
            Engine=ENGINE,
            KmsKeyId="alias/does-not-exist",
        )
    assert error_code(restore_refused) == "KMSKeyNotAccessibleFault"

    # An unencrypted snapshot cannot be encrypted by copying it, even with a usable key; an encrypted one can
    # be re-encrypted with any usable key.
    with pytest.raises(ClientError) as unencrypted:
        rds.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=source,
            TargetDBClusterSnapshotIdentifier=unique("copy"),
            KmsKeyId=alias,
        )
    assert error_code(unencrypted) == "InvalidParameterCombination"
    plain = rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=source, TargetDBClusterSnapshotIdentifier=unique("copy")
    )["DBClusterSnapshot"]
    assert plain["StorageEncrypted"] is False
    cluster = create_cluster(rds, StorageEncrypted=True, KmsKeyId=key["Arn"])
    wait_until(lambda: cluster_status(rds, cluster) == "available")
    encrypted = available_snapshot(rds, cluster)["DBClusterSnapshotIdentifier"]
    for usable in (alias, key["KeyId"], key["Arn"]):
        copied = rds.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=encrypted,
            TargetDBClusterSnapshotIdentifier=unique("copy"),
            KmsKeyId=usable,
        )["DBClusterSnapshot"]
        assert copied["StorageEncrypted"] is True


def test_existing_cluster_ids_are_refused(rds: Any, shared_snapshot: dict[str, Any]) -> None:
    existing = shared_snapshot["DBClusterIdentifier"]
    with pytest.raises(ClientError) as created:
        create_cluster(rds, existing)
    assert error_code(created) == "DBClusterAlreadyExistsFault"
    with pytest.raises(ClientError) as restored:
        rds.restore_db_cluster_from_snapshot(
            DBClusterIdentifier=existing,
            SnapshotIdentifier=shared_snapshot["DBClusterSnapshotIdentifier"],
            Engine=ENGINE,
        )
    assert error_code(restored) == "DBClusterAlreadyExistsFault"


def test_modifying_a_missing_cluster_is_not_found(rds: Any) -> None:
    with pytest.raises(ClientError) as missing:
        rds.modify_db_cluster(DBClusterIdentifier=unique("missing"), MasterUserPassword="secret-12")
    assert error_code(missing) == "DBClusterNotFoundFault"


def test_a_refused_modification_keeps_the_cluster(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    unmanaged = create_cluster(rds)
    with pytest.raises(ClientError) as not_managed:
        rds.modify_db_cluster(
            DBClusterIdentifier=unmanaged, RotateMasterUserPassword=True, ApplyImmediately=True
        )
    assert error_code(not_managed) == "InvalidParameterCombination"
    managed = rds.create_db_cluster(
        DBClusterIdentifier=unique("managed"),
        Engine=ENGINE,
        MasterUsername="postgres",
        ManageMasterUserPassword=True,
    )["DBCluster"]["DBClusterIdentifier"]
    with pytest.raises(ClientError) as not_immediate:  # moto's own check, after its removal
        rds.modify_db_cluster(DBClusterIdentifier=managed, RotateMasterUserPassword=True)
    assert error_code(not_immediate) == "InvalidParameterCombination"
    assert cluster_exists(rds, unmanaged) and cluster_exists(rds, managed)


def test_a_crash_inside_moto_is_an_aws_internal_failure(rds: Any, sim: SimulatorClient) -> None:
    sim.clear_calls()
    with pytest.raises(ClientError) as crashed:  # moto raises KeyError for a missing cluster
        rds.promote_read_replica_db_cluster(DBClusterIdentifier=unique("missing"))
    assert error_code(crashed) == "InternalFailure"
    assert [call["status"] for call in sim.calls(service="rds")] == [500]


@pytest.mark.parametrize("immediate", [True, False], ids=["no-delay", "session-delay"])
def test_same_cluster_id_can_be_restored_twice_within_a_minute(
    rds: Any, sim: SimulatorClient, shared_snapshot: dict[str, Any], immediate: bool
) -> None:
    if immediate:
        sim.set_delay(0)
    identifier = unique("again")
    for _ in range(2):
        rds.restore_db_cluster_from_snapshot(
            DBClusterIdentifier=identifier,
            SnapshotIdentifier=shared_snapshot["DBClusterSnapshotIdentifier"],
            Engine=ENGINE,
        )
        wait_until(lambda: cluster_status(rds, identifier) == "available")
        rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
        wait_until(lambda: not cluster_exists(rds, identifier))
    automated = rds.describe_db_cluster_snapshots(  # a filter: DBClusterIdentifier must name a cluster
        Filters=[{"Name": "db-cluster-id", "Values": [identifier]}], SnapshotType="automated"
    )
    assert automated["DBClusterSnapshots"] == []  # removed with the cluster, as AWS does


def test_retained_automated_backup_does_not_block_re_creation(
    rds: Any, sim: SimulatorClient
) -> None:
    sim.set_delay(0)
    identifier = create_cluster(rds)
    rds.delete_db_cluster(
        DBClusterIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=False
    )
    create_cluster(rds, identifier)  # moto names its automated snapshot by id and minute
    automated = rds.describe_db_cluster_snapshots(  # a filter: DBClusterIdentifier must name a cluster
        Filters=[{"Name": "db-cluster-id", "Values": [identifier]}], SnapshotType="automated"
    )["DBClusterSnapshots"]
    assert len(automated) in (1, 2)  # 2 only if the minute changed in between


# -- 6. request log ------------------------------------------------------------------------


def test_every_request_is_logged_by_service_and_action(
    rds: Any, aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    sim.clear_calls()
    rds.describe_db_clusters()
    aws_client("rds", region_name=OTHER_REGION).describe_db_cluster_snapshots()
    aws_client("kms").list_keys()  # JSON protocol: the action comes from X-Amz-Target
    aws_client("sts").get_caller_identity()

    calls = sim.calls()
    assert [(call["service"], call["action"], call["region"]) for call in calls] == [
        ("rds", "DescribeDBClusters", REGION),
        ("rds", "DescribeDBClusterSnapshots", OTHER_REGION),
        ("kms", "ListKeys", REGION),
        ("sts", "GetCallerIdentity", REGION),
    ]
    assert all(call["account"] == ACCOUNT and call["status"] == 200 for call in calls)
    assert datetime.fromisoformat(calls[0]["timestamp"]) > datetime.now(timezone.utc) - timedelta(
        minutes=1
    )
    assert [call["action"] for call in sim.calls(service="rds", region=OTHER_REGION)] == [
        "DescribeDBClusterSnapshots"
    ]
    assert len(sim.calls(action="ListKeys")) == 1
    assert sim.clear_calls() == 4 and sim.calls() == []


# -- 7. faults -----------------------------------------------------------------------------


def test_fault_by_count_fails_the_next_calls_only(rds: Any, sim: SimulatorClient) -> None:
    sim.clear_calls()
    rule = sim.add_fault("rds", "DescribeDBClusters", "Throttling", count=2)
    assert rule["status"] == 400 and sim.faults()[0]["id"] == rule["id"]
    for _ in range(2):
        with pytest.raises(ClientError) as throttled:
            rds.describe_db_clusters()
        assert error_code(throttled) == "Throttling"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    rds.describe_db_clusters()
    rds.describe_db_cluster_snapshots()  # another action: never matched
    assert sim.faults() == []
    assert [call["fault"] for call in sim.calls(service="rds")] == [
        "Throttling",
        "Throttling",
        None,
        None,
    ]


def test_fault_by_rate_and_region(
    rds: Any, aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    sim.add_fault("rds", "*", "InternalFailure", rate=1.0, region=OTHER_REGION)
    rds_west = aws_client("rds", region_name=OTHER_REGION)
    for _ in range(3):
        with pytest.raises(ClientError) as failed:
            rds_west.describe_db_instances()
        assert error_code(failed) == "InternalFailure"
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    rds.describe_db_instances()  # the default region is not affected
    sim.clear_faults()

    sim.add_fault("rds", "DescribeDBInstances", "ServiceUnavailable", rate=0.5, seed=7)
    outcomes = []
    for _ in range(20):
        try:
            rds.describe_db_instances()
            outcomes.append("ok")
        except ClientError as error:
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            outcomes.append(error.response["Error"]["Code"])
    assert {"ok", "ServiceUnavailable"} == set(outcomes)
    assert sim.faults()[0]["fired"] == outcomes.count("ServiceUnavailable")


def test_botocore_retries_injected_throttling(
    aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    rds = aws_client("rds", config=Config(retries={"mode": "standard"}))
    sim.clear_calls()
    sim.add_fault("rds", "DescribeDBClusters", "Throttling", count=2)
    rds.describe_db_clusters()
    calls = sim.calls(service="rds", action="DescribeDBClusters")
    assert [call["fault"] for call in calls] == ["Throttling", "Throttling", None]


def test_json_protocol_faults_are_json(
    aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    sim.add_fault("kms", "ListKeys", "ThrottlingException", count=1)
    kms = aws_client("kms")
    with pytest.raises(ClientError) as throttled:
        kms.list_keys()
    assert error_code(throttled) == "ThrottlingException"
    assert throttled.value.response["Error"]["Message"] == "Rate exceeded"
    sim.add_fault("secretsmanager", "*", "InternalFailure", count=1)
    with pytest.raises(ClientError) as failed:
        aws_client("secretsmanager").list_secrets()
    assert error_code(failed) == "InternalFailure"
    retrying_kms = aws_client("kms", config=Config(retries={"mode": "standard"}))
    sim.add_fault("kms", "ListKeys", "ThrottlingException", count=2)
    assert "Keys" in retrying_kms.list_keys()


def test_invalid_fault_rules_are_refused(sim: SimulatorClient) -> None:
    with pytest.raises(SimulatorApiError) as both:
        sim.add_fault("rds", count=1, rate=0.5)
    assert both.value.status == 400
    with pytest.raises(SimulatorApiError):
        sim.add_fault("rds", rate=1.5)
    assert sim.faults() == []


# -- 8. accounts ---------------------------------------------------------------------------


def test_accounts_by_header_and_by_assumed_role(
    simulator: SimulatorProcess, aws_client: Callable[..., Any], sim: SimulatorClient
) -> None:
    other_account = OTHER_ACCOUNT
    rds_other = aws_client("rds")
    rds_other.meta.events.register(
        "before-sign.rds.*",
        lambda request, **_: request.headers.add_header("x-moto-account-id", other_account),
    )
    cluster = create_cluster(rds_other)
    assert cluster_exists(rds_other, cluster)
    assert not cluster_exists(aws_client("rds"), cluster)

    credentials = aws_client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{other_account}:role/restorer", RoleSessionName="test"
    )["Credentials"]
    role_session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    assert (
        role_session.client("sts", endpoint_url=simulator.url).get_caller_identity()["Account"]
        == other_account
    )
    rds_role = role_session.client("rds", endpoint_url=simulator.url)
    assert cluster_exists(rds_role, cluster)
    sim.clear_calls()
    rds_role.describe_db_clusters()
    assert sim.calls(service="rds")[0]["account"] == other_account


# -- back-dated snapshot creation time ---------------------------------------------------


def test_snapshot_create_time_can_be_back_dated(rds: Any, sim: SimulatorClient) -> None:
    sim.set_delay(0)
    source = available_snapshot(rds)
    identifier = source["DBClusterSnapshotIdentifier"]
    back_then = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    sim.set_snapshot_create_time(identifier, back_then, region=REGION)
    assert snapshot(rds, identifier)["SnapshotCreateTime"] == back_then

    by_arn = "2024-02-03T04:05:06+00:00"
    sim.set_snapshot_create_time(source["DBClusterSnapshotArn"], by_arn)
    assert snapshot(rds, identifier)["SnapshotCreateTime"] == datetime.fromisoformat(by_arn)
    with pytest.raises(SimulatorApiError) as missing:
        sim.set_snapshot_create_time("no-such-snapshot", by_arn, region=REGION)
    assert missing.value.status == 404


def test_a_restore_is_encrypted_with_the_key_given_else_as_its_snapshot(
    rds: Any, aws_client: Callable[..., Any], shared_snapshot: dict[str, Any]
) -> None:
    """RestoreDBClusterFromSnapshot KmsKeyId: the key given encrypts the cluster (even from an unencrypted
    snapshot, reported by ARN); without one the cluster is encrypted as its snapshot is, or not at all."""
    key = aws_client("kms").create_key()["KeyMetadata"]
    alias = f"alias/{unique('restore-key')}"
    aws_client("kms").create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    plain = shared_snapshot["DBClusterSnapshotIdentifier"]

    def restored(snapshot: str, **kms: str) -> dict[str, Any]:
        identifier = unique("restored")
        rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=identifier, SnapshotIdentifier=snapshot,
                                             Engine=ENGINE, **kms)
        return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]

    with_key = restored(plain, KmsKeyId=alias)
    assert (with_key["StorageEncrypted"], with_key["KmsKeyId"]) == (True, key["Arn"])
    assert restored(plain)["StorageEncrypted"] is False
    cluster = create_cluster(rds, StorageEncrypted=True, KmsKeyId=key["Arn"])
    wait_until(lambda: cluster_status(rds, cluster) == "available")
    encrypted = available_snapshot(rds, cluster)["DBClusterSnapshotIdentifier"]
    inherited = restored(encrypted)
    assert inherited["StorageEncrypted"] is True and inherited["KmsKeyId"] == key["Arn"]
