"""Renaming DB clusters (ModifyDBCluster with NewDBClusterIdentifier) and their automated backups in the
simulator, checked over HTTP with boto3 as the operator uses it.

moto alone renames the cluster's key only: its instances keep the old cluster id (so the renamed cluster has no
members), a cluster that has the new name is overwritten, there is no `renaming`, and there is no
DescribeDBClusterAutomatedBackups. Each test says what it would catch. The session simulator (1 s delay) is
shared; objects get unique names, and a test that changes the delay puts it back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aurora_restore_devenv.simulator import SimulatorClient
from tests.aws.conftest import poll_until, unique

ENGINE = "aurora-postgresql"
ENGINE_VERSION = "15.4"
REGION = "us-east-1"
TAGS = [{"Key": "team", "Value": "payments"}, {"Key": "restore", "Value": "nightly"}]


# -- helpers -----------------------------------------------------------------------------------------------------


wait_until = partial(poll_until, timeout=10.0, interval=0.05)  # this module's patience and pace


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def describe_cluster(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]


def cluster_exists(rds: Any, identifier: str) -> bool:
    try:
        rds.describe_db_clusters(DBClusterIdentifier=identifier)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "DBClusterNotFoundFault"
        return False
    return True


def available_cluster(rds: Any, identifier: str) -> dict[str, Any]:
    return wait_until(lambda: (found := describe_cluster(rds, identifier))["Status"] == "available" and found)


def create_cluster(rds: Any, identifier: str | None = None, instances: int = 0) -> tuple[str, list[str]]:
    """An available cluster with `instances` available instances (the first is the writer)."""
    identifier = identifier or unique("cluster")
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine=ENGINE,
        EngineVersion=ENGINE_VERSION,
        MasterUsername="postgres",
        MasterUserPassword="not-a-secret-1",
        Tags=TAGS,
    )
    names = [f"{identifier}-{n}" for n in range(1, instances + 1)]
    for name in names:
        rds.create_db_instance(
            DBInstanceIdentifier=name, DBClusterIdentifier=identifier, Engine=ENGINE, DBInstanceClass="db.r6g.large"
        )
    available_cluster(rds, identifier)
    for name in names:
        wait_until(lambda: instance(rds, name)["DBInstanceStatus"] == "available")
    return identifier, names


def instance(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def instances_of(rds: Any, cluster: str) -> list[str]:
    found = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [cluster]}])["DBInstances"]
    return sorted(i["DBInstanceIdentifier"] for i in found)


def members(cluster: dict[str, Any]) -> dict[str, bool]:
    return {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in cluster["DBClusterMembers"]}


def rename(rds: Any, identifier: str, new_identifier: str) -> dict[str, Any]:
    return rds.modify_db_cluster(
        DBClusterIdentifier=identifier, NewDBClusterIdentifier=new_identifier, ApplyImmediately=True
    )["DBCluster"]


def automated_snapshots(rds: Any, cluster: str) -> list[dict[str, Any]]:
    """By filter: DBClusterIdentifier must name an existing cluster (rulebook), the cluster may be gone."""
    return rds.describe_db_cluster_snapshots(
        Filters=[{"Name": "db-cluster-id", "Values": [cluster]}], SnapshotType="automated"
    )["DBClusterSnapshots"]


def delete_cluster(rds: Any, identifier: str, instances: list[str], **kwargs: Any) -> None:
    for name in instances:
        rds.delete_db_instance(DBInstanceIdentifier=name)
    rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True, **kwargs)


@contextlib.contextmanager
def immediately(sim: SimulatorClient) -> Iterator[None]:
    """Transitions end at once inside the block."""
    previous = sim.set_delay(0)
    try:
        yield
    finally:
        sim.set_delay(previous)


# -- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def restore_simulator(simulator_client: SimulatorClient) -> Iterator[None]:
    """Put back the delay and page size that a test changed."""
    delay, page_size = simulator_client.delay(), simulator_client.page_size()
    yield
    simulator_client.set_delay(delay)
    simulator_client.set_page_size(page_size)


@pytest.fixture
def rds(aws_client: Callable[..., Any]) -> Any:
    return aws_client("rds")


@pytest.fixture
def sim(simulator_client: SimulatorClient) -> SimulatorClient:
    return simulator_client


# -- renames -----------------------------------------------------------------------------------------------------


def test_a_renamed_cluster_takes_its_instances_endpoints_tags_and_backups_along(rds: Any) -> None:
    """Twice (A -> B -> C): moto left the instances with the old id, so the cluster lost its members."""
    first, instances = create_cluster(rds, instances=2)
    original = describe_cluster(rds, first)
    writers = members(original)
    assert sorted(writers) == instances and sum(writers.values()) == 1
    resource_id = original["DbClusterResourceId"]

    previous = first
    for new_identifier in (unique("renamed"), unique("renamed-again")):
        answer = rename(rds, previous, new_identifier)
        assert (answer["DBClusterIdentifier"], answer["Status"]) == (new_identifier, "renaming")
        assert describe_cluster(rds, new_identifier)["Status"] == "renaming"
        assert not cluster_exists(rds, previous)  # stored under the new name at once

        cluster = available_cluster(rds, new_identifier)
        assert members(cluster) == writers  # the same instances, the writer unchanged
        assert [instance(rds, name)["DBClusterIdentifier"] for name in instances] == [new_identifier] * 2
        assert instances_of(rds, new_identifier) == instances
        assert instances_of(rds, previous) == []
        assert cluster["Endpoint"].startswith(f"{new_identifier}.cluster-")
        assert cluster["ReaderEndpoint"].startswith(f"{new_identifier}.cluster-ro-")
        assert cluster["DBClusterArn"] == f"{original['DBClusterArn'].rsplit(':', 1)[0]}:{new_identifier}"
        assert cluster["DbClusterResourceId"] == resource_id
        assert cluster["TagList"] == TAGS
        assert rds.list_tags_for_resource(ResourceName=cluster["DBClusterArn"])["TagList"] == TAGS
        [automated] = automated_snapshots(rds, new_identifier)
        assert automated["DBClusterSnapshotIdentifier"].startswith(f"rds:{first}-")  # its name stays
        assert automated_snapshots(rds, previous) == []
        previous = new_identifier

    delete_cluster(rds, previous, instances)  # the cluster's instances are found under its new name
    wait_until(lambda: not cluster_exists(rds, previous))


def test_without_a_delay_the_renamed_cluster_is_available_at_once(rds: Any, sim: SimulatorClient) -> None:
    identifier, _ = create_cluster(rds)
    new_identifier = unique("renamed")
    with immediately(sim):
        assert rename(rds, identifier, new_identifier)["Status"] == "available"
        assert describe_cluster(rds, new_identifier)["Status"] == "available"


def test_the_new_identifier_is_stored_in_lower_case(rds: Any) -> None:
    """The reference: the new identifier is stored in lower case; the cluster answers to that name."""
    identifier, _ = create_cluster(rds)
    new_identifier = unique("Renamed-Cluster")
    assert rename(rds, identifier, new_identifier)["DBClusterIdentifier"] == new_identifier.lower()
    available_cluster(rds, new_identifier.lower())
    rename(rds, new_identifier.lower(), identifier)  # found by the name it reports
    assert describe_cluster(rds, identifier)["DBClusterIdentifier"] == identifier


def test_renaming_onto_a_taken_name_is_refused_and_changes_nothing(rds: Any) -> None:
    """moto replaced the cluster that had the name, losing it."""
    moving, moving_instances = create_cluster(rds, instances=1)
    staying, staying_instances = create_cluster(rds, instances=1)
    before = {name: describe_cluster(rds, name)["DbClusterResourceId"] for name in (moving, staying)}

    with pytest.raises(ClientError) as refused:
        rename(rds, moving, staying)
    assert error_of(refused) == ("DBClusterAlreadyExistsFault", 400)

    assert {name: describe_cluster(rds, name)["DbClusterResourceId"] for name in (moving, staying)} == before
    assert instances_of(rds, moving) == moving_instances
    assert instances_of(rds, staying) == staying_instances
    assert describe_cluster(rds, moving)["Status"] == "available"


@pytest.mark.parametrize(
    "new_identifier",
    ["1-starts-with-a-digit", "two--hyphens", "ends-with-a-hyphen-", "under_score", "a" * 64, ""],
    ids=["digit-first", "double-hyphen", "trailing-hyphen", "underscore", "64-characters", "empty"],
)
def test_an_invalid_new_identifier_is_refused(rds: Any, new_identifier: str) -> None:
    identifier, _ = create_cluster(rds)
    with pytest.raises(ClientError) as refused:
        rename(rds, identifier, new_identifier)
    assert error_of(refused) == ("InvalidParameterValue", 400)
    assert describe_cluster(rds, identifier)["Status"] == "available"


def test_a_cluster_that_is_not_available_cannot_be_renamed(rds: Any) -> None:
    creating = unique("creating")
    rds.create_db_cluster(
        DBClusterIdentifier=creating, Engine=ENGINE, MasterUsername="postgres", MasterUserPassword="not-a-secret-1"
    )
    with pytest.raises(ClientError) as refused:
        rename(rds, creating, unique("renamed"))
    assert error_of(refused) == ("InvalidDBClusterStateFault", 400)

    renamed = unique("renamed")
    available_cluster(rds, creating)
    rename(rds, creating, renamed)
    with pytest.raises(ClientError) as refused_while_renaming:
        rename(rds, renamed, unique("renamed-again"))
    assert error_of(refused_while_renaming) == ("InvalidDBClusterStateFault", 400)


def test_swapping_two_names_swaps_the_clusters_behind_them(rds: Any) -> None:
    """The usual replacement: the current cluster steps aside, the restored one takes its name."""
    current, current_instances = create_cluster(rds, instances=1)
    replacement, replacement_instances = create_cluster(rds, instances=1)
    current_resource = describe_cluster(rds, current)["DbClusterResourceId"]
    replacement_resource = describe_cluster(rds, replacement)["DbClusterResourceId"]

    retired = f"{current}-old"
    rename(rds, current, retired)
    available_cluster(rds, retired)
    rename(rds, replacement, current)
    now_current = available_cluster(rds, current)

    assert now_current["DbClusterResourceId"] == replacement_resource
    assert list(members(now_current)) == replacement_instances
    assert instances_of(rds, current) == replacement_instances
    assert describe_cluster(rds, retired)["DbClusterResourceId"] == current_resource
    assert instances_of(rds, retired) == current_instances
    assert not cluster_exists(rds, replacement)


# -- automated backups -------------------------------------------------------------------------------------------


def test_a_cluster_deleted_with_its_automated_backups_kept_leaves_a_retained_backup(
    rds: Any, sim: SimulatorClient
) -> None:
    identifier, instances = create_cluster(rds, instances=1)
    renamed = unique("renamed")
    rename(rds, identifier, renamed)
    cluster = available_cluster(rds, renamed)
    resource_id = cluster["DbClusterResourceId"]
    with pytest.raises(ClientError) as not_yet:  # a current cluster has no retained backup
        rds.describe_db_cluster_automated_backups(DbClusterResourceId=resource_id)
    assert error_of(not_yet) == ("DBClusterAutomatedBackupNotFoundFault", 404)

    with immediately(sim):
        delete_cluster(rds, renamed, instances, DeleteAutomatedBackups=False)
    assert not cluster_exists(rds, renamed)

    [backup] = rds.describe_db_cluster_automated_backups(DbClusterResourceId=resource_id)["DBClusterAutomatedBackups"]
    assert backup["Status"] == "retained"
    assert backup["DBClusterIdentifier"] == renamed  # the name it had when it was deleted
    assert backup["DBClusterArn"] == cluster["DBClusterArn"]
    assert (backup["Engine"], backup["EngineVersion"], backup["Region"]) == (ENGINE, ENGINE_VERSION, REGION)
    assert backup["DBClusterAutomatedBackupsArn"].startswith(f"arn:aws:rds:{REGION}:")
    assert backup["RestoreWindow"]["EarliestTime"] <= backup["RestoreWindow"]["LatestTime"]
    assert backup["TagList"] == TAGS
    assert [s["DBClusterIdentifier"] for s in automated_snapshots(rds, renamed)] == [renamed]

    by_identifier = rds.describe_db_cluster_automated_backups(DBClusterIdentifier=renamed)
    assert by_identifier["DBClusterAutomatedBackups"] == [backup]
    listed = rds.describe_db_cluster_automated_backups()["DBClusterAutomatedBackups"]
    assert backup in listed
    for name, value in (("db-cluster-id", renamed), ("db-cluster-resource-id", resource_id), ("status", "retained")):
        found = rds.describe_db_cluster_automated_backups(Filters=[{"Name": name, "Values": [value]}])
        assert backup in found["DBClusterAutomatedBackups"], name
    unknown = rds.describe_db_cluster_automated_backups(Filters=[{"Name": "db-cluster-id", "Values": ["nobody"]}])
    assert unknown["DBClusterAutomatedBackups"] == []
    with pytest.raises(ClientError) as not_found:
        rds.describe_db_cluster_automated_backups(DBClusterIdentifier=identifier)  # its name before the rename
    assert error_of(not_found) == ("DBClusterAutomatedBackupNotFoundFault", 404)


def test_by_default_a_deleted_cluster_leaves_no_automated_backup(rds: Any, sim: SimulatorClient) -> None:
    identifier, instances = create_cluster(rds)
    resource_id = describe_cluster(rds, identifier)["DbClusterResourceId"]
    delete_cluster(rds, identifier, instances)
    wait_until(lambda: not cluster_exists(rds, identifier))
    with pytest.raises(ClientError) as not_found:
        rds.describe_db_cluster_automated_backups(DbClusterResourceId=resource_id)
    assert error_of(not_found) == ("DBClusterAutomatedBackupNotFoundFault", 404)
    found = rds.describe_db_cluster_automated_backups(Filters=[{"Name": "db-cluster-id", "Values": [identifier]}])
    assert found["DBClusterAutomatedBackups"] == []
    assert automated_snapshots(rds, identifier) == []


def test_a_retained_backup_stays_with_the_deleted_cluster_when_its_name_is_reused_and_renamed(
    rds: Any, sim: SimulatorClient
) -> None:
    """Backups belong to the resource id: renaming the new cluster of that name must not take the old backup."""
    identifier = unique("reused")
    with immediately(sim):
        create_cluster(rds, identifier)
        deleted_resource = describe_cluster(rds, identifier)["DbClusterResourceId"]
        delete_cluster(rds, identifier, [], DeleteAutomatedBackups=False)
        create_cluster(rds, identifier)
        renamed = unique("renamed")
        rename(rds, identifier, renamed)

    [backup] = rds.describe_db_cluster_automated_backups(DBClusterIdentifier=identifier)["DBClusterAutomatedBackups"]
    assert backup["DbClusterResourceId"] == deleted_resource
    retained_snapshots = automated_snapshots(rds, identifier)
    assert retained_snapshots and all(s["DBClusterIdentifier"] == identifier for s in retained_snapshots)
    with immediately(sim):
        delete_cluster(rds, renamed, [])  # removes the renamed cluster's own automated backups only
    assert automated_snapshots(rds, identifier) == retained_snapshots


def test_retained_backups_come_in_pages(rds: Any, sim: SimulatorClient) -> None:
    by_cluster = [{"Name": "db-cluster-id", "Values": []}]
    with immediately(sim):
        for _ in range(3):
            identifier, _ = create_cluster(rds)
            delete_cluster(rds, identifier, [], DeleteAutomatedBackups=False)
            by_cluster[0]["Values"].append(identifier)
    sim.set_page_size(2)
    first = rds.describe_db_cluster_automated_backups(Filters=by_cluster)
    assert len(first["DBClusterAutomatedBackups"]) == 2 and first["Marker"]
    second = rds.describe_db_cluster_automated_backups(Filters=by_cluster, Marker=first["Marker"])
    assert len(second["DBClusterAutomatedBackups"]) == 1 and "Marker" not in second
    listed = first["DBClusterAutomatedBackups"] + second["DBClusterAutomatedBackups"]
    assert sorted(b["DBClusterIdentifier"] for b in listed) == sorted(by_cluster[0]["Values"])
