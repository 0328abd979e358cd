"""Replace by restore-then-swap, failure cleanup and cancel by deletion, on the real control plane and simulator.

Every test checks the AWS side through the simulator's API: the existing target must be exactly as it was until
the new cluster is verified, and nothing tagged with the restore's UID may remain after a failure or a cancel.
"""

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from restores import (
    CallWindow,
    create_restore,
    events_for,
    get_restore,
    make_source,
    tags,
    wait_for_phase,
    wait_until,
)

from aurora_restore.api import GROUP, PLURAL, VERSION

UID_TAG = "dbrestore.io/restore-uid"


def make_target(rds, identifier: str, instance: str) -> dict:
    """An existing target cluster with one instance, as a user's own cluster would be."""
    make_source(rds, identifier, [])
    rds.create_db_instance(DBInstanceIdentifier=instance, DBClusterIdentifier=identifier,
                           Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
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


def delete_and_wait_gone(api_client, namespace: str, name: str, timeout: float = 120) -> None:
    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def gone():
        try:
            get_restore(api_client, namespace, name)
        except ApiException as error:
            return error.status == 404
        return False

    wait_until(gone, timeout=timeout, what=f"{name} deleted")


def test_replace_swaps_the_verified_cluster_in_and_retires_the_previous_one(api_client, aws, operator, namespace,
                                                                            uniq, simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    old = make_target(rds, f"tgt-{uniq}", f"old-{uniq}")
    window = CallWindow(simulator)

    create_restore(api_client, namespace, "replace", replace_spec(uniq))
    restore = wait_for_phase(api_client, namespace, "replace", {"Succeeded", "Failed"}, timeout=180)
    status, uid = restore["status"], restore["metadata"]["uid"]
    assert status["phase"] == "Succeeded", status
    phases = [entry["phase"] for entry in status["history"]]
    assert phases[-6:] == ["Verifying", "SwappingTarget", "RetiringPrevious", "Publishing", "CleaningUp", "Succeeded"]

    new = target_state(rds, f"tgt-{uniq}")
    assert new["uid"] == uid and new["resource_id"] != old["resource_id"] and new["status"] == "available"
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
