"""Crashes and contention: the operator killed with SIGKILL mid-restore, two restores aimed at one target."""

from datetime import datetime

import pytest
from databases import create_secret, make_database_source
from restores import CallWindow, create_restore, get_restore, make_source, wait_for_phase, wait_until


# Every simulated RDS transition takes this long while a kill test runs, so the restore is certainly still in
# the phase the test kills it in (each of these phases waits for a transition), however loaded the machine is.
HOLD_SECONDS = 6


@pytest.mark.parametrize("kill_in", ["ResolvingSnapshot", "CopyingSnapshot", "RestoringCluster", "CreatingInstances"])
def test_killed_operator_finishes_the_restore_after_restart(
    api_client, aws, operator, namespace, uniq, simulator, kill_in
):
    kms = aws.client("kms", region_name="us-west-2")
    kms.create_alias(AliasName=f"alias/kill-{uniq}", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    east = aws.client("rds", region_name="us-east-1")
    west = aws.client("rds", region_name="us-west-2")
    make_source(east, f"src-{uniq}", [f"snap-{uniq}"])
    simulator.set_delay(HOLD_SECONDS)  # the simulator fixture puts the previous delay back
    if kill_in == "ResolvingSnapshot":  # a snapshot still being created holds the restore in this phase
        east.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=f"snap-{uniq}-new", DBClusterIdentifier=f"src-{uniq}")
    window = CallWindow(simulator)
    snapshot = f"snap-{uniq}-new" if kill_in == "ResolvingSnapshot" else f"snap-{uniq}"

    create_restore(
        api_client,
        namespace,
        "crash",
        {
            "source": {"region": "us-east-1", "snapshotIdentifier": snapshot},
            "target": {"region": "us-west-2", "clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 2}},
            "copy": {"kmsKeyId": f"alias/kill-{uniq}"},
        },
    )
    wait_for_phase(api_client, namespace, "crash", kill_in, timeout=90)
    operator.kill()
    killed_in = get_restore(api_client, namespace, "crash")["status"]
    assert killed_in["phase"] == kill_in, killed_in  # the operator died in the phase this test is about
    operator.start()

    status = wait_for_phase(api_client, namespace, "crash", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status

    clusters = west.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])["DBClusters"]
    assert len(clusters) == 1
    instances = west.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])
    assert sorted(i["DBInstanceIdentifier"] for i in instances["DBInstances"]) == [f"tgt-{uniq}-1", f"tgt-{uniq}-2"]
    copies = [
        s
        for s in west.describe_db_cluster_snapshots()["DBClusterSnapshots"]
        if s["DBClusterSnapshotIdentifier"] == status["copiedSnapshot"]["identifier"]
    ]
    assert copies == []
    assert len(window.calls(service="rds", action="CopyDBClusterSnapshot")) == 1
    assert len(window.calls(service="rds", action="RestoreDBClusterFromSnapshot")) == 1
    assert len(window.calls(service="rds", action="CreateDBInstance")) == 2


def test_two_restores_to_one_target_never_run_at_once(api_client, aws, operator, namespace, uniq, db_ca_file):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", "aurora-postgresql", "source-Pass-1", db_ca_file)
    spec = {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "existingTarget": {"policy": "Replace", "finalSnapshot": False},
        "masterPassword": {"secretRef": {"name": "master", "key": "password"}},
    }
    # The first restore holds the target while it waits for its Secret (which does not exist yet).
    create_restore(api_client, namespace, "first", spec)
    wait_until(
        lambda: "waiting for Secret" in ((get_restore(api_client, namespace, "first").get("status") or {})
                                         .get("message", "")),
        timeout=60, what="first restore waiting for its Secret",
    )
    create_restore(api_client, namespace, "second", spec)
    waiting = wait_until(
        lambda: (lambda s: s if s.get("message", "").startswith("waiting: restore") else None)(
            get_restore(api_client, namespace, "second").get("status") or {}),
        timeout=30,
        what="second restore waiting for the first",
    )
    assert waiting["phase"] == "Pending"
    assert f"{namespace}/first" in waiting["message"]

    create_secret(api_client, namespace, "master", {"password": "restored-Pass-2"})
    first = wait_for_phase(api_client, namespace, "first", {"Succeeded", "Failed"}, timeout=120)["status"]
    second = wait_for_phase(api_client, namespace, "second", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert first["phase"] == "Succeeded" and second["phase"] == "Succeeded", (first, second)
    second_left_pending = datetime.fromisoformat(second["history"][1]["startedAt"])
    assert second_left_pending >= datetime.fromisoformat(first["completedAt"])
    assert second["replacedCluster"]["identifier"] == f"tgt-{uniq}"


def test_timeout_fails_and_the_copy_is_still_cleaned_up(api_client, aws, operator, namespace, uniq, simulator):
    kms = aws.client("kms", region_name="us-west-2")
    kms.create_alias(AliasName=f"alias/slow-{uniq}", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    east = aws.client("rds", region_name="us-east-1")
    west = aws.client("rds", region_name="us-west-2")
    make_source(east, f"src-{uniq}", [f"snap-{uniq}"])
    previous_delay = simulator.set_delay(8)  # the copy outlasts spec.timeout; deleting it cancels it
    try:
        create_restore(
            api_client,
            namespace,
            "slow",
            {
                "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
                "target": {"region": "us-west-2", "clusterIdentifier": f"tgt-{uniq}"},
                "copy": {"kmsKeyId": f"alias/slow-{uniq}"},
                "timeout": "3s",
            },
        )
        status = wait_for_phase(api_client, namespace, "slow", {"Succeeded", "Failed"}, timeout=60)["status"]
        assert status["failure"]["reason"] == "Timeout"
        assert status["failure"]["phase"] == "CopyingSnapshot"
        assert "spec.timeout (3s)" in status["failure"]["message"]
        copy_id = status["copiedSnapshot"]["identifier"]
        wait_until(
            lambda: get_restore(api_client, namespace, "slow")["status"]["copiedSnapshot"].get("deleted"),
            timeout=60,
            what="copied snapshot deleted after the failure",
        )
    finally:
        simulator.set_delay(previous_delay)
    remaining = [s for s in west.describe_db_cluster_snapshots()["DBClusterSnapshots"]
                 if s["DBClusterSnapshotIdentifier"] == copy_id]
    assert remaining == [] or remaining[0]["Status"] == "deleting"
    assert not west.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [f"tgt-{uniq}"]}])["DBClusters"]
