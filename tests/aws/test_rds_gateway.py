"""RdsGateway and the error classification against the simulator over HTTP (what the operator really sends)."""

import time
import uuid

import pytest

from aurora_restore.aws.clients import CLIENT_CONFIG, AwsClients
from aurora_restore.aws.rds import RdsGateway
from aurora_restore.errors import RetryableError, TerminalError


@pytest.fixture
def uniq() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def gateway(aws_client):
    return RdsGateway(aws_client("rds", region_name="us-east-1"), "us-east-1")


def _wait(check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _cluster_with_snapshots(rds, cluster: str, snapshots: list[str]) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier=cluster,
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="gateway-test-1",
    )
    _wait(lambda: rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["Status"] == "available")
    for name in snapshots:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=name, DBClusterIdentifier=cluster)


def test_describes_return_none_when_missing(gateway, uniq):
    assert gateway.describe_snapshot(f"missing-{uniq}") is None
    assert gateway.describe_cluster(f"missing-{uniq}") is None
    assert gateway.describe_instance(f"missing-{uniq}") is None
    assert gateway.list_cluster_instances(f"missing-{uniq}") == []


def test_snapshot_by_name_arn_and_automated_name(gateway, aws_client, uniq):
    rds = aws_client("rds", region_name="us-east-1")
    _cluster_with_snapshots(rds, f"gw-{uniq}", [f"manual-{uniq}"])
    by_name = gateway.describe_snapshot(f"manual-{uniq}")
    assert by_name["DBClusterSnapshotIdentifier"] == f"manual-{uniq}"
    by_arn = gateway.describe_snapshot(by_name["DBClusterSnapshotArn"])
    assert by_arn["DBClusterSnapshotIdentifier"] == f"manual-{uniq}"
    automated = gateway.list_cluster_snapshots(f"gw-{uniq}", "automated")
    assert automated and all(s["SnapshotType"] == "automated" for s in automated)
    assert gateway.describe_snapshot(automated[0]["DBClusterSnapshotIdentifier"]) is not None


def test_list_cluster_snapshots_reads_every_page(gateway, aws_client, simulator_client, uniq):
    rds = aws_client("rds", region_name="us-east-1")
    names = [f"page-{uniq}-{n}" for n in range(7)]
    _cluster_with_snapshots(rds, f"gw-{uniq}", names)
    previous = simulator_client.set_page_size(2)
    try:
        simulator_client.clear_calls()
        manual = gateway.list_cluster_snapshots(f"gw-{uniq}", "manual")
        pages = simulator_client.calls(service="rds", action="DescribeDBClusterSnapshots")
    finally:
        simulator_client.set_page_size(previous)
    assert sorted(s["DBClusterSnapshotIdentifier"] for s in manual) == names
    assert len(pages) == 4
    both = gateway.list_cluster_snapshots(f"gw-{uniq}", "any")
    assert {s["SnapshotType"] for s in both} == {"manual", "automated"}


def test_throttling_beyond_botocore_retries_is_retryable(aws_client, simulator_client, uniq):
    gateway = RdsGateway(aws_client("rds", region_name="us-east-1", config=CLIENT_CONFIG), "us-east-1")
    simulator_client.add_fault(service="rds", action="DescribeDBClusters", error="Throttling", count=4)
    try:
        with pytest.raises(RetryableError) as raised:
            gateway.describe_cluster(f"any-{uniq}")
    finally:
        simulator_client.clear_faults()
    assert raised.value.reason == "AwsThrottling"


def test_botocore_absorbs_a_short_throttling_burst(aws_client, simulator_client, uniq):
    gateway = RdsGateway(aws_client("rds", region_name="us-east-1", config=CLIENT_CONFIG), "us-east-1")
    simulator_client.add_fault(service="rds", action="DescribeDBClusters", error="Throttling", count=2)
    try:
        assert gateway.describe_cluster(f"any-{uniq}") is None
    finally:
        simulator_client.clear_faults()


def test_server_errors_are_retryable(gateway, simulator_client, uniq):
    simulator_client.add_fault(service="rds", action="DescribeDBClusterSnapshots", error="InternalFailure", count=1)
    try:
        with pytest.raises(RetryableError) as raised:
            gateway.describe_snapshot(f"any-{uniq}")
    finally:
        simulator_client.clear_faults()
    assert raised.value.reason == "AwsServerError"


def test_deleting_a_cluster_with_instances_is_a_busy_resource(gateway, aws_client, uniq):
    rds = aws_client("rds", region_name="us-east-1")
    _cluster_with_snapshots(rds, f"gw-{uniq}", [])
    rds.create_db_instance(
        DBInstanceIdentifier=f"gw-{uniq}-1",
        DBClusterIdentifier=f"gw-{uniq}",
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    with pytest.raises(RetryableError) as raised:
        gateway.delete_cluster(f"gw-{uniq}", None)
    assert raised.value.reason == "AwsResourceBusy"
    assert [i["DBInstanceIdentifier"] for i in gateway.list_cluster_instances(f"gw-{uniq}")] == [f"gw-{uniq}-1"]
    gateway.delete_instance(f"gw-{uniq}-1")
    _wait(lambda: gateway.describe_instance(f"gw-{uniq}-1") is None)
    gateway.delete_cluster(f"gw-{uniq}", f"gw-{uniq}-final")
    _wait(lambda: gateway.describe_cluster(f"gw-{uniq}") is None)
    assert gateway.describe_snapshot(f"gw-{uniq}-final") is not None


def test_copy_with_unknown_kms_key_is_terminal_with_the_aws_code(aws_client, uniq):
    east = aws_client("rds", region_name="us-east-1")
    _cluster_with_snapshots(east, f"gw-{uniq}", [f"src-{uniq}"])
    _wait(lambda: east.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"src-{uniq}")[
        "DBClusterSnapshots"][0]["Status"] == "available")
    arn = east.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"src-{uniq}")["DBClusterSnapshots"][0][
        "DBClusterSnapshotArn"
    ]
    west = RdsGateway(aws_client("rds", region_name="us-west-2"), "us-west-2")
    with pytest.raises(TerminalError) as raised:
        west.copy_snapshot(arn, "us-east-1", f"copy-{uniq}", f"alias/none-{uniq}", True, {"k": "v"})
    assert raised.value.reason == "KMSKeyNotAccessibleFault"
    copy = west.copy_snapshot(arn, "us-east-1", f"copy-{uniq}", None, True, {"k": "v"})
    assert copy["DBClusterSnapshotIdentifier"] == f"copy-{uniq}"
    assert west.describe_snapshot(f"copy-{uniq}")["Status"] == "copying"
    west.delete_snapshot(f"copy-{uniq}")  # deleting a copy in progress cancels it, as in AWS
    assert west.describe_snapshot(f"copy-{uniq}") is None
    west.delete_snapshot(f"copy-{uniq}")  # already gone: a no-op, so cleanup can run twice


def test_a_snapshot_being_created_cannot_be_deleted_yet(gateway, aws_client, uniq):
    rds = aws_client("rds", region_name="us-east-1")
    _cluster_with_snapshots(rds, f"gw-{uniq}", [f"new-{uniq}"])
    with pytest.raises(RetryableError) as raised:
        gateway.delete_snapshot(f"new-{uniq}")
    assert raised.value.reason == "AwsResourceBusy"


def test_clients_are_reused_per_service_and_region(aws_session, simulator, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", simulator.url)
    clients = AwsClients(aws_session)
    assert clients.client("rds", "us-east-1") is clients.client("rds", "us-east-1")
    assert clients.client("rds", "us-east-1") is not clients.client("rds", "us-west-2")
    assert clients.client("rds", "us-west-2").meta.region_name == "us-west-2"


def test_an_answer_botocore_cannot_parse_is_a_retryable_error(gateway, uniq):
    """The simulator echoes a control character into its XML answer, which botocore cannot parse
    (ResponseParserError, not a BotoCoreError): the gateway turns it into a retry, never an unclassified crash."""
    with pytest.raises(RetryableError) as raised:
        gateway.describe_cluster(f"gw-{uniq}\x01")
    assert raised.value.reason == "AwsServerError"


def test_a_replica_that_lost_the_leader_lease_sends_no_call(simulator, aws_session, monkeypatch, uniq):
    """The fence: AwsClients checks `leading` just before each call is sent; the simulator logs nothing."""
    from aurora_restore.errors import NotLeading
    from aurora_restore_devenv.simulator import SimulatorClient

    monkeypatch.setenv("AWS_ENDPOINT_URL", simulator.url)
    leads = {"now": True}
    clients = AwsClients(session=aws_session, leading=lambda: leads["now"], replica=f"fence-{uniq}")
    gateway = RdsGateway(clients.client("rds", "us-east-1"), "us-east-1")
    assert gateway.describe_cluster(f"missing-{uniq}") is None
    leads["now"] = False
    with pytest.raises(NotLeading):
        gateway.describe_cluster(f"missing-{uniq}")
    sent = [c for c in SimulatorClient(simulator.url).calls(service="rds")
            if f"pod/fence-{uniq}" in c.get("user_agent", "")]
    assert len(sent) == 1  # only the call made while leading
