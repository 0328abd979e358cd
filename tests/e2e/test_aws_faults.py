"""Faults AWS really has: RDS failure statuses, calls applied while their answer was lost, eventual consistency.

The simulator injects them (its control API); the operator must end every failure status in Failed with the
status's reason, and after a lost answer (botocore retries, meets AlreadyExists) or a describe that does not see a
new object yet, must end with exactly one of each resource.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
from restores import CallWindow, create_restore, get_restore, make_source, wait_for_phase

from aurora_restore.aws.rds import FAILED_STATUSES
from aurora_restore.steps.context import RESTORE_UID_TAG

# The reason each status must end in, written out here rather than read from steps/rds_statuses.py, so that a
# wrong entry of that table fails this test ("{Kind}": Cluster or Instance).
EXPECTED_REASONS = {
    "inaccessible-encryption-credentials": "EncryptionKeyInaccessible",
    "inaccessible-encryption-credentials-recoverable": "EncryptionKeyInaccessible",
    "incompatible-parameters": "IncompatibleParameters",
    "incompatible-restore": "IncompatibleRestore",
    "incompatible-network": "IncompatibleNetwork",
    "incompatible-option-group": "IncompatibleOptionGroup",
    "insufficient-capacity": "InsufficientCapacity",
    "storage-full": "StorageFull",
    "restore-error": "RestoreError",
    "cloning-failed": "CloneFailed",
    "migration-failed": "MigrationFailed",
    "failed": "{Kind}Failed",
}
STATUSES = sorted(FAILED_STATUSES)  # one without an entry above fails with a KeyError
PHASE_OF_KIND = {"cluster": "RestoringCluster", "instance": "CreatingInstances"}


@pytest.fixture
def rds_faults(simulator):
    """The simulator, with its next-create statuses and consistency window put back after the test."""
    yield simulator
    simulator.clear_next_create_statuses()
    simulator.set_consistency(0)


def remove_clusters(rds, identifiers):
    """Best effort: delete what failed restores left for inspection, so its database servers stop."""
    for identifier in identifiers:
        try:
            members = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [identifier]}])
            for instance in members["DBInstances"]:
                rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True)
            rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
        except Exception:  # noqa: BLE001 - teardown only; the next describe shows what is left
            pass


@pytest.mark.parametrize("kind", ["cluster", "instance"])
def test_each_failure_status_fails_the_restore_with_its_reason(
    api_client, aws, operator, namespace, uniq, rds_faults, kind
):
    """One restore per failure status, all at once (each with its own target): the cluster (or its first
    instance) is created, ends in that status after its `creating` phase, and the restore fails in the phase
    that waited for it, with the status's reason and a message saying what RDS reported and what to do."""
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    targets = {status: f"tgt-{uniq}-{number}" for number, status in enumerate(STATUSES)}
    for status, target in targets.items():
        broken = target if kind == "cluster" else f"{target}-1"
        rds_faults.fail_next_create(kind, status, identifier=broken, region="us-east-1")
        create_restore(api_client, namespace, f"r{STATUSES.index(status)}", {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": target, "instances": {"count": 1}},
        })
    try:
        with ThreadPoolExecutor(max_workers=len(STATUSES)) as pool:
            ended = dict(zip(STATUSES, pool.map(
                lambda status: wait_for_phase(api_client, namespace, f"r{STATUSES.index(status)}",
                                              {"Succeeded", "Failed"}, timeout=180)["status"],
                STATUSES,
            )))
        for status, result in ended.items():
            expected = EXPECTED_REASONS[status].format(Kind=kind.capitalize())
            assert result["phase"] == "Failed", (status, result)
            failure = result["failure"]
            assert (failure["phase"], failure["reason"]) == (PHASE_OF_KIND[kind], expected), (status, failure)
            assert f"as {status}: " in failure["message"] and "What to do: " in failure["message"], failure
        assert rds_faults.next_create_statuses() == []  # every rule was used, by its own restore
    finally:
        remove_clusters(rds, targets.values())


def count_applied(window: CallWindow, action: str) -> int:
    """Calls of `action` that took effect: answered 200, or applied while the answer was lost."""
    return sum(1 for call in window.calls(service="rds", action=action)
               if call["status"] == 200 or (call["fault"] or "").endswith(":applied"))


@pytest.mark.parametrize("fault", ["error", "drop", "consistency"])
def test_a_create_whose_answer_was_lost_ends_with_exactly_one_resource(
    api_client, aws, operator, namespace, uniq, rds_faults, fault
):
    """CopyDBClusterSnapshot, RestoreDBClusterFromSnapshot and CreateDBInstance each take effect while their
    answer is lost (a 500, or a connection closed without an answer): botocore retries and gets AlreadyExists;
    or, with `consistency`, each is answered but missing from describes for a while, so the next pass calls it
    again. Either way the operator finds what it made by name and UID tag: one copy, one cluster, one instance
    each, and the restore succeeds."""
    kms = aws.client("kms", region_name="us-west-2")
    kms.create_alias(AliasName=f"alias/lost-{uniq}", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    east, west = aws.client("rds", region_name="us-east-1"), aws.client("rds", region_name="us-west-2")
    make_source(east, f"src-{uniq}", [f"snap-{uniq}"])
    window = CallWindow(rds_faults)
    actions = ("CopyDBClusterSnapshot", "RestoreDBClusterFromSnapshot", "CreateDBInstance")
    if fault == "consistency":
        rds_faults.set_consistency(2.0)
    else:
        for action in actions:
            rds_faults.add_fault("rds", action, "InternalFailure", region="us-west-2", after=True,
                                 drop=fault == "drop")

    target = f"tgt-{uniq}"
    create_restore(api_client, namespace, "lost", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"region": "us-west-2", "clusterIdentifier": target, "instances": {"count": 2}},
        "copy": {"kmsKeyId": f"alias/lost-{uniq}"},
    })
    status = wait_for_phase(api_client, namespace, "lost", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    uid = get_restore(api_client, namespace, "lost")["metadata"]["uid"]

    for action in actions[:2]:
        assert count_applied(window, action) == 1, window.calls(service="rds", action=action)
    assert count_applied(window, "CreateDBInstance") == 2
    if fault != "consistency":
        assert rds_faults.faults() == []  # every fault fired
        retried = [c for c in window.calls(service="rds", action="CreateDBInstance") if c["status"] == 400]
        assert retried, "botocore's retry of the lost create should have met DBInstanceAlreadyExists"
    clusters = west.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [target]}])["DBClusters"]
    assert [c["DBClusterIdentifier"] for c in clusters] == [target]
    assert {t["Key"]: t["Value"] for t in clusters[0]["TagList"]}[RESTORE_UID_TAG] == uid
    instances = west.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [target]}])["DBInstances"]
    assert sorted(i["DBInstanceIdentifier"] for i in instances) == [f"{target}-1", f"{target}-2"]
    copies = [s for s in west.describe_db_cluster_snapshots()["DBClusterSnapshots"]
              if uid in s["DBClusterSnapshotIdentifier"]]
    assert copies == []  # the one copy was cleaned up
