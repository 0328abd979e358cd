"""Replace by restore-then-swap, failure cleanup and cancel by deletion, on the real control plane and simulator.

Every test checks the AWS side through the simulator's API: the existing target must be exactly as it was until
the new cluster is verified, and nothing tagged with the restore's UID may remain after a failure or a cancel.
"""

import pytest
from databases import ROWS, connect, execute, make_database_source
from kubernetes import client
from restores import (
    REPLACEABLE,
    SOURCE_MASTER_PASSWORD,
    CallWindow,
    create_restore,
    delete_and_wait_gone,
    events_for,
    get_restore,
    make_source,
    tags,
    wait_for_phase,
    wait_until,
)

from aurora_restore.api import GROUP, PLURAL, VERSION

UID_TAG = "dbrestore.io/restore-uid"
# make_source's (so make_target's) and the restored clusters' master password: one, so rows_at reads both.
SOURCE_PASSWORD = SOURCE_MASTER_PASSWORD


def make_target(rds, identifier: str, instance: str) -> dict:
    """An existing target cluster with one instance, as a user's own cluster would be, both tagged replaceable by
    the account owner."""
    make_source(rds, identifier, [], tags=REPLACEABLE)
    rds.create_db_instance(DBInstanceIdentifier=instance, DBClusterIdentifier=identifier,
                           Engine="aurora-postgresql", DBInstanceClass="db.r6g.large",
                           Tags=[{"Key": key, "Value": value} for key, value in REPLACEABLE.items()])
    wait_until(lambda: rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["DBInstanceStatus"]
               == "available", what=f"instance {instance} available")
    return target_state(rds, identifier)


def target_state(rds, identifier: str) -> dict:
    """What a user of the target sees: its identity, status, endpoint and instances."""
    cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    instances = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [identifier]}])["DBInstances"]
    return {
        "resource_id": cluster["DbClusterResourceId"],
        "status": cluster["Status"],
        "endpoint": (cluster["Endpoint"], cluster["Port"]),
        "instances": sorted(i["DBInstanceIdentifier"] for i in instances),
        "uid": tags(rds, cluster["DBClusterArn"]).get(UID_TAG),
    }


def tagged_with(rds, uid: str) -> list[str]:
    """Every cluster, instance and snapshot of the region carrying the restore's UID tag."""
    found = []
    for cluster in rds.describe_db_clusters()["DBClusters"]:
        if tags(rds, cluster["DBClusterArn"]).get(UID_TAG) == uid:
            found.append(cluster["DBClusterIdentifier"])
    for instance in rds.describe_db_instances()["DBInstances"]:
        if tags(rds, instance["DBInstanceArn"]).get(UID_TAG) == uid:
            found.append(instance["DBInstanceIdentifier"])
    for snapshot in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]:
        if tags(rds, snapshot["DBClusterSnapshotArn"]).get(UID_TAG) == uid:
            found.append(snapshot["DBClusterSnapshotIdentifier"])
    return found


def replace_spec(uniq: str, **existing) -> dict:
    return {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "existingTarget": {"policy": "Replace", **existing},
    }


def rows_at(rds, identifier: str, ca_file: str) -> list[tuple] | None:
    """The `orders` rows the cluster now called `identifier` serves (None: it has no such table)."""
    cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    with connect("aurora-postgresql", cluster["Endpoint"], cluster["Port"], "admin_user", SOURCE_PASSWORD,
                 "postgres", ca_file) as conn:
        if not execute(conn, "SELECT 1 FROM pg_database WHERE datname = 'orders'"):
            return None
    with connect("aurora-postgresql", cluster["Endpoint"], cluster["Port"], "admin_user", SOURCE_PASSWORD,
                 "orders", ca_file) as conn:
        return execute(conn, "SELECT id, item FROM orders ORDER BY id")


def test_replace_swaps_the_verified_cluster_in_and_retires_the_previous_one(api_client, aws, operator, namespace,
                                                                            uniq, simulator, db_ca_file):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-postgresql", SOURCE_PASSWORD, db_ca_file)
    old = make_target(rds, f"tgt-{uniq}", f"old-{uniq}")
    assert rows_at(rds, f"tgt-{uniq}", db_ca_file) is None  # the existing target holds other data
    window = CallWindow(simulator)

    create_restore(api_client, namespace, "replace", replace_spec(uniq))
    restore = wait_for_phase(api_client, namespace, "replace", {"Succeeded", "Failed"}, timeout=180)
    status, uid = restore["status"], restore["metadata"]["uid"]
    assert status["phase"] == "Succeeded", status
    phases = [entry["phase"] for entry in status["history"]]
    assert phases[-6:] == ["Verifying", "SwappingTarget", "RetiringPrevious", "Publishing", "CleaningUp", "Succeeded"]

    new = target_state(rds, f"tgt-{uniq}")
    assert new["uid"] == uid and new["resource_id"] != old["resource_id"] and new["status"] == "available"
    assert rows_at(rds, f"tgt-{uniq}", db_ca_file) == ROWS  # the target identifier answers with the new data
    assert new["instances"] == [f"tgt-{uniq}-{uid.replace('-', '')[:8]}-1"]
    replaced = status["replacedCluster"]
    previous = replaced["renamedTo"]
    assert (replaced["identifier"], replaced["resourceId"]) == (f"tgt-{uniq}", old["resource_id"])
    assert replaced["deletedInstances"] == [f"old-{uniq}"] and replaced["deletedAt"]
    assert not rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [previous]}])["DBClusters"]
    final = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=replaced["finalSnapshotIdentifier"])
    assert tags(rds, final["DBClusterSnapshots"][0]["DBClusterSnapshotArn"])[UID_TAG] == uid
    backups = rds.describe_db_cluster_automated_backups(DbClusterResourceId=old["resource_id"])
    assert [b["Status"] for b in backups["DBClusterAutomatedBackups"]] == ["retained"]

    assert len(window.calls(service="rds", action="ModifyDBCluster")) == 2  # the two renames, nothing else
    assert len(window.calls(service="rds", action="DeleteDBCluster")) == 1


def test_replace_that_fails_while_restoring_leaves_the_target_as_it_was(api_client, aws, operator, namespace,
                                                                        uniq, simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    before = make_target(rds, f"tgt-{uniq}", f"old-{uniq}")
    simulator.add_fault(service="rds", action="RestoreDBClusterFromSnapshot", error="InvalidParameterCombination",
                        message="The parameter combination is not supported.", count=1)

    create_restore(api_client, namespace, "refused", replace_spec(uniq))
    restore = wait_for_phase(api_client, namespace, "refused", {"Succeeded", "Failed"}, timeout=120)
    status = restore["status"]
    assert status["phase"] == "Failed", status
    assert status["failure"]["phase"] == "RestoringCluster"
    assert "CleaningUpAfterFailure" in [entry["phase"] for entry in status["history"]]
    assert target_state(rds, f"tgt-{uniq}") == before
    assert tagged_with(rds, restore["metadata"]["uid"]) == []


def test_keep_previous_keeps_the_renamed_cluster_until_it_is_due(api_client, aws, operator, namespace, uniq):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    old = make_target(rds, f"tgt-{uniq}", f"old-{uniq}")

    create_restore(api_client, namespace, "keep", replace_spec(uniq, keepPrevious="8s"))
    restore = wait_for_phase(api_client, namespace, "keep", {"Succeeded", "Failed"}, timeout=180)
    status = restore["status"]
    assert status["phase"] == "Succeeded", status
    assert "RetiringPrevious" not in [entry["phase"] for entry in status["history"]]
    previous = status["replacedCluster"]["renamedTo"]
    kept = rds.describe_db_clusters(DBClusterIdentifier=previous)["DBClusters"][0]
    assert kept["DbClusterResourceId"] == old["resource_id"]

    def retired():
        record = get_restore(api_client, namespace, "keep")["status"]["replacedCluster"]
        return record if record.get("deletedAt") else None

    record = wait_until(retired, timeout=90, what="previous cluster deleted after keepPrevious")
    assert record["deleteAfter"] <= record["deletedAt"]
    assert not rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [previous]}])["DBClusters"]
    assert get_restore(api_client, namespace, "keep")["status"]["phase"] == "Succeeded"


@pytest.mark.parametrize("cancel_in", ["CopyingSnapshot", "RestoringCluster", "CreatingInstances"])
def test_cancel_by_deletion_removes_what_the_restore_made(api_client, aws, operator, namespace, uniq, simulator,
                                                          cancel_in):
    east, west = aws.client("rds", region_name="us-east-1"), aws.client("rds", region_name="us-west-2")
    kms = aws.client("kms", region_name="us-west-2")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    make_source(east, f"src-{uniq}", [f"snap-{uniq}"])
    before = make_target(west, f"tgt-{uniq}", f"old-{uniq}")
    simulator.set_delay(4.0)  # each RDS transition lasts long enough to be cancelled in
    try:
        create_restore(api_client, namespace, "cancelled", {
            **replace_spec(uniq), "target": {"region": "us-west-2", "clusterIdentifier": f"tgt-{uniq}",
                                             "instances": {"count": 1}},
            "copy": {"kmsKeyId": key},
        })
        restore = wait_for_phase(api_client, namespace, "cancelled", cancel_in, timeout=60)
        uid = restore["metadata"]["uid"]
        delete_and_wait_gone(api_client, namespace, "cancelled")
    finally:
        simulator.set_delay(1.0)
    reasons = [e.reason for e in events_for(api_client, namespace, "cancelled")]
    assert "Cancelling" in reasons and "Cancelled" in reasons
    assert tagged_with(west, uid) == []
    assert target_state(west, f"tgt-{uniq}") == before
    assert east.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"snap-{uniq}")["DBClusterSnapshots"]


def test_the_skip_cleanup_annotation_lets_go_and_says_so(api_client, aws, operator, namespace, uniq, simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    simulator.set_delay(4.0)
    try:
        create_restore(api_client, namespace, "abandoned", {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        })
        wait_for_phase(api_client, namespace, "abandoned", "RestoringCluster", timeout=60)
        client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "abandoned",
            {"metadata": {"annotations": {"dbrestore.io/skip-cleanup": "true"}}})
        delete_and_wait_gone(api_client, namespace, "abandoned", timeout=60)
    finally:
        simulator.set_delay(1.0)
    events = events_for(api_client, namespace, "abandoned")
    assert [e.type for e in events if e.reason == "CleanupSkipped"] == ["Warning"]
    # Left as it was: the cluster the restore had started is still there.
    assert rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"]


@pytest.mark.parametrize("outage", ["restart", "restart-after-the-timeout"])
def test_kill_during_the_swap_then_restart_finishes_the_swap(api_client, aws, operator, namespace, uniq, simulator,
                                                              outage):
    """SIGKILL once the first rename was sent; with the operator down past spec.timeout the swap is still
    finished (the timeout no longer applies once the swap began), and so is the rest of the restore."""
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    old = make_target(rds, f"tgt-{uniq}", f"old-{uniq}")
    window = CallWindow(simulator)
    simulator.set_delay(3.0)  # each rename lasts 3 s: long enough to be killed in
    try:
        create_restore(api_client, namespace, "swap", {**replace_spec(uniq), "timeout": "90s"})
        swapping = wait_for_phase(api_client, namespace, "swap", "SwappingTarget", timeout=60)
        wait_until(lambda: window.calls(service="rds", action="ModifyDBCluster"), timeout=30,
                   interval=0.05, what="the first rename sent")
        operator.kill()
        assert get_restore(api_client, namespace, "swap")["status"]["phase"] == "SwappingTarget"
        if outage == "restart-after-the-timeout":
            started = swapping["status"]["startedAt"]
            wait_until(lambda: _seconds_since(started) > 95, timeout=120, interval=1, what="spec.timeout passed")
        operator.start()
        status = wait_for_phase(api_client, namespace, "swap", {"Succeeded", "Failed"}, timeout=120)["status"]
    finally:
        simulator.set_delay(1.0)
    uid = swapping["metadata"]["uid"]
    assert target_state(rds, f"tgt-{uniq}")["uid"] == uid  # the target identifier is the new cluster
    assert len(window.calls(service="rds", action="ModifyDBCluster")) == 2  # each rename exactly once
    previous = status["replacedCluster"]["renamedTo"]
    assert status["phase"] == "Succeeded", status
    assert status["replacedCluster"]["resourceId"] == old["resource_id"]
    assert not rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [previous]}])["DBClusters"]
    if outage == "restart-after-the-timeout":
        assert _seconds_since(status["startedAt"]) > 90  # it did outlive spec.timeout


def test_kill_during_cleanup_after_a_failure_then_restart_leaves_nothing(api_client, aws, operator, namespace,
                                                                         uniq, simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    before = make_target(rds, f"tgt-{uniq}", f"old-{uniq}")
    simulator.add_fault(service="rds", action="CreateDBInstance", error="InvalidParameterCombination",
                        message="The instance class is not offered.", count=1)
    simulator.set_delay(3.0)  # deleting the temporary cluster lasts long enough to be killed in
    try:
        create_restore(api_client, namespace, "cleanup", replace_spec(uniq))
        restore = wait_for_phase(api_client, namespace, "cleanup", "CleaningUpAfterFailure", timeout=60)
        operator.kill()
        assert get_restore(api_client, namespace, "cleanup")["status"]["phase"] == "CleaningUpAfterFailure"
        operator.start()
        status = wait_for_phase(api_client, namespace, "cleanup", "Failed", timeout=120)["status"]
    finally:
        simulator.set_delay(1.0)
    assert status["failure"]["phase"] == "CreatingInstances"
    assert tagged_with(rds, restore["metadata"]["uid"]) == []
    assert target_state(rds, f"tgt-{uniq}") == before


@pytest.mark.parametrize("source_kind", ["latest", "pointInTime"])
def test_a_restore_of_the_target_from_itself(api_client, aws, operator, namespace, uniq, source_kind):
    """The source cluster is the target: refused with Fail, swapped safely with Replace."""
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"tgt-{uniq}", [f"snap-{uniq}"], tags=REPLACEABLE)
    kind = ({"latest": {"clusterIdentifier": f"tgt-{uniq}", "snapshotType": "manual"}} if source_kind == "latest"
            else {"pointInTime": {"clusterIdentifier": f"tgt-{uniq}", "useLatestRestorableTime": True}})
    spec = {"source": {"region": "us-east-1", **kind},
            "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}}}
    create_restore(api_client, namespace, "refused", spec)
    refused = wait_for_phase(api_client, namespace, "refused", {"Succeeded", "Failed"})["status"]
    assert refused["failure"]["reason"] == "SourceIsTarget", refused

    old = target_state(rds, f"tgt-{uniq}")
    create_restore(api_client, namespace, "itself", {**spec, "existingTarget": {"policy": "Replace"}})
    restore = wait_for_phase(api_client, namespace, "itself", {"Succeeded", "Failed"}, timeout=180)
    assert restore["status"]["phase"] == "Succeeded", restore["status"]
    new = target_state(rds, f"tgt-{uniq}")
    assert new["uid"] == restore["metadata"]["uid"] and new["resource_id"] != old["resource_id"]
    # The pinned snapshot survives the swap, and the source's automated backups are retained.
    assert rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"snap-{uniq}")["DBClusterSnapshots"]
    backups = rds.describe_db_cluster_automated_backups(DbClusterResourceId=old["resource_id"])
    assert [b["Status"] for b in backups["DBClusterAutomatedBackups"]] == ["retained"]


def _seconds_since(timestamp: str) -> float:
    from datetime import datetime, timezone

    return (datetime.now(timezone.utc) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
