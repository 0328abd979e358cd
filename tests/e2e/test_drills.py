"""Drills and ttlSecondsAfterFinished against the simulator and a real PostgreSQL behind the restored cluster.

A drill restores into its own cluster, verifies it with a query, reports RTO and RPO in status.drill, marks a
missed objective (ObjectiveMet False, a Warning Event, still Succeeded), and after keepFor leaves nothing tagged
with its UID in AWS (clusters, instances, snapshots of every type, automated backups), nor its connection Secret,
nor the Lease of its cluster. A finished restore with ttlSecondsAfterFinished disappears by itself; a drill's only
after its teardown (the ttl counts from status.workCompletedAt).
"""

from datetime import datetime, timedelta, timezone

from databases import create_secret, make_database_source
from kubernetes import client, watch
from restores import (
    OPERATOR_NAMESPACE, create_restore, delete_and_wait_gone, events_for, get_restore, make_source, tags,
    wait_for_phase, wait_until,
)

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore.k8s.leases import lease_name

SOURCE_PASSWORD = "source-Pa55word-3"
MASTER_PASSWORD = "drill-Master-4"
UID_TAG = "dbrestore.io/restore-uid"


def uid_tagged(rds, uid: str) -> list[str]:
    """Every cluster, instance and cluster snapshot (manual and automated) of the account carrying the UID tag,
    and the automated backups of those clusters."""
    found = []
    for cluster in rds.describe_db_clusters()["DBClusters"]:
        if tags(rds, cluster["DBClusterArn"]).get(UID_TAG) == uid:
            found.append(f"cluster {cluster['DBClusterIdentifier']}")
    for instance in rds.describe_db_instances()["DBInstances"]:
        if tags(rds, instance["DBInstanceArn"]).get(UID_TAG) == uid:
            found.append(f"instance {instance['DBInstanceIdentifier']}")
    for kind in ("manual", "automated"):
        for snapshot in rds.describe_db_cluster_snapshots(SnapshotType=kind)["DBClusterSnapshots"]:
            if tags(rds, snapshot["DBClusterSnapshotArn"]).get(UID_TAG) == uid:
                found.append(f"{kind} snapshot {snapshot['DBClusterSnapshotIdentifier']}")
    return found


def automated_backups_of(rds, identifier: str) -> list[dict]:
    try:
        return rds.describe_db_cluster_automated_backups(DBClusterIdentifier=identifier)[
            "DBClusterAutomatedBackups"]
    except rds.exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "DBClusterAutomatedBackupNotFoundFault":
            return []
        raise


def secret_exists(api_client, namespace: str, name: str) -> bool:
    try:
        client.CoreV1Api(api_client).read_namespaced_secret(name, namespace)
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def lease_exists(api_client, cluster_identifier: str) -> bool:
    try:
        client.CoordinationV1Api(api_client).read_namespaced_lease(
            lease_name("us-east-1", cluster_identifier), OPERATOR_NAMESPACE)
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def _drill(api_client, aws, simulator, namespace, uniq, db_ca_file, name: str, drill: dict, **spec):
    """A PostgreSQL source with a snapshot taken an hour ago (back-dated: its RPO is then at least 3600 s), and a
    drill of it verified by a query, with a connection Secret."""
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-postgresql", SOURCE_PASSWORD, db_ca_file)
    an_hour_ago = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)  # startedAt has seconds
    simulator.set_snapshot_create_time(f"snap-{uniq}", an_hour_ago, region="us-east-1")
    create_secret(api_client, namespace, "master", {"password": MASTER_PASSWORD})
    target = f"drilled-{uniq}"
    created = create_restore(api_client, namespace, name, {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": target, "instances": {"count": 1}},
        "masterPassword": {"secretRef": {"name": "master", "key": "password"}},
        "verification": {"queries": [{"sql": "SELECT * FROM orders", "expectRows": 3}]},
        "connectionSecret": {"name": f"{name}-connection"},
        "drill": drill,
        **spec,
    })
    uid = created["metadata"]["uid"]
    status = wait_for_phase(api_client, namespace, name, {"Succeeded", "Failed"}, timeout=240)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["drill"]["clusterIdentifier"] == f"{target}-drill-{uid.replace('-', '')[:8]}"
    assert status["cluster"]["identifier"] == status["drill"]["clusterIdentifier"]
    assert not rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [target]}])["DBClusters"]
    return rds, uid, status


def assert_nothing_left(api_client, rds, namespace: str, uid: str, drill_cluster: str, secret: str) -> None:
    assert uid_tagged(rds, uid) == []
    assert automated_backups_of(rds, drill_cluster) == []
    assert not secret_exists(api_client, namespace, secret)
    assert not lease_exists(api_client, drill_cluster)


def test_a_drill_measures_rto_and_rpo_and_reports_a_missed_objective(
    api_client, aws, simulator, operator, namespace, uniq, db_ca_file
):
    """Deleting the AuroraRestore during keepFor deletes the drill's cluster at once."""
    rds, uid, status = _drill(api_client, aws, simulator, namespace, uniq, db_ca_file, "measured",
                              {"keepFor": "1h", "rtoObjective": "1h", "rpoObjective": "1s"})
    drill = status["drill"]
    assert status["verification"]["results"] == [{"index": 0, "rows": 3}]
    assert 0 < drill["rtoSeconds"] < 3600 and drill["rtoObjectiveSeconds"] == 3600
    assert drill["rpoSeconds"] >= 3600 and drill["rpoObjectiveSeconds"] == 1
    assert drill["leaseWaitSeconds"] >= 0
    assert drill["objectiveMet"] is False
    [objective] = [c for c in status["conditions"] if c["type"] == "ObjectiveMet"]
    assert (objective["status"], objective["reason"]) == ("False", "RpoObjectiveMissed")
    warnings = [e for e in events_for(api_client, namespace, "measured") if e.reason == "ObjectiveMissed"]
    assert [e.type for e in warnings] == ["Warning"]
    assert secret_exists(api_client, namespace, "measured-connection")  # usable for validation during keepFor
    assert uid_tagged(rds, uid), "the drill's cluster stays during keepFor"

    delete_and_wait_gone(api_client, namespace, "measured", timeout=180)
    assert_nothing_left(api_client, rds, namespace, uid, drill["clusterIdentifier"], "measured-connection")


def statuses_until_deleted(api_client, namespace: str, name: str, resource_version: str) -> list[dict]:
    """Every version of the AuroraRestore after `resource_version` until it is gone (a watch misses none that a
    poll could), each as whether it is being deleted (or gone) and its status."""
    seen = []
    stream = watch.Watch().stream(
        client.CustomObjectsApi(api_client).list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
        field_selector=f"metadata.name={name}", resource_version=resource_version, timeout_seconds=240)
    for event in stream:
        obj = event["object"]
        deleting = event["type"] == "DELETED" or obj["metadata"].get("deletionTimestamp") is not None
        seen.append({"deleting": deleting, "status": obj.get("status") or {}})
        if event["type"] == "DELETED":
            return seen
    raise AssertionError(f"{name} was not deleted; its last version: {seen[-1:] or 'none seen'}")


def test_a_drill_deletes_its_cluster_after_keep_for_and_only_then_goes_by_its_ttl(
    api_client, aws, simulator, operator, namespace, uniq, db_ca_file
):
    rds, uid, status = _drill(api_client, aws, simulator, namespace, uniq, db_ca_file, "kept", {"keepFor": "3s"},
                              ttlSecondsAfterFinished=2)
    assert status["drill"].get("objectiveMet") is None  # no objective given
    version = get_restore(api_client, namespace, "kept")["metadata"]["resourceVersion"]

    seen = statuses_until_deleted(api_client, namespace, "kept", version)
    first_deleting = next(index for index, version in enumerate(seen) if version["deleting"])
    before = [version["status"] for version in seen[:first_deleting]]
    torn_down = [current for current in before if (current.get("drill") or {}).get("deletedAt")]
    assert torn_down, f"the AuroraRestore went before the drill's teardown: {before[-1:]}"
    final = torn_down[-1]
    assert final["phase"] == "Succeeded"
    assert datetime.fromisoformat(final["workCompletedAt"]) >= datetime.fromisoformat(final["drill"]["deletedAt"])
    assert_nothing_left(api_client, rds, namespace, uid, status["drill"]["clusterIdentifier"], "kept-connection")


def test_a_finished_restore_is_deleted_after_ttl_seconds_after_finished(api_client, aws, operator, namespace, uniq):
    make_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", [f"snap-{uniq}"])
    create_restore(api_client, namespace, "planned", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"ttl-{uniq}"},
        "dryRun": True,
        "ttlSecondsAfterFinished": 2,
    })
    objects = client.CustomObjectsApi(api_client)

    def gone() -> bool:
        try:
            objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "planned")
        except client.exceptions.ApiException as error:
            return error.status == 404
        return False

    wait_until(gone, timeout=120, interval=0.5, what="the Planned restore deleted by its ttl")
    reasons = [e.reason for e in events_for(api_client, namespace, "planned")]
    assert "Planned" in reasons  # it finished first, then went
