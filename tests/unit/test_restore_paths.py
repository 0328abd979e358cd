"""The phase machine end to end against the in-memory RDS: which phases, which AWS calls, what status."""

import copy
from datetime import datetime, timedelta, timezone

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.aws.rds import tags_of
from aurora_restore.steps.context import MANAGED_BY_TAG, RESTORE_NAME_TAG, RESTORE_UID_TAG
from aurora_restore.steps.outcomes import Advance, Wait

from .conftest import REPLACEABLE, KMS_KEY, OTHER_REGION, SAME_REGION_PHASES, SNAPSHOT, SOURCE_REGION, START, TARGET, UID
from .fake_rds import aws_error, throttling

COPY_ID = f"aurora-restore-{UID}"
CROSS_REGION = {"target": {"region": OTHER_REGION}, "copy": {"kmsKeyId": KMS_KEY}}


def successful(calls):
    return [c for c in calls if c.error is None]


# --- same region -------------------------------------------------------------------------------------------------


def test_same_region_restore_visits_every_phase_in_order(restore):
    run = restore()
    run.run()
    assert run.phases == SAME_REGION_PHASES
    assert run.status.message == f"cluster {TARGET} restored with 2 instance(s)"
    assert run.status.failure is None


def test_same_region_restore_creates_one_cluster_and_count_instances_tagged_with_the_uid(restore, cloud):
    run = restore({"target": {"tags": {"team": "data"}, "instances": {"count": 3}}})
    run.run()

    restores = cloud.calls_to("restore_cluster_from_snapshot")
    assert len(restores) == 1
    assert restores[0].params["SnapshotIdentifier"] == SNAPSHOT
    assert restores[0].params["Engine"] == "aurora-postgresql"
    creates = cloud.calls_to("create_instance")
    assert [c.params["DBInstanceIdentifier"] for c in creates] == [f"{TARGET}-1", f"{TARGET}-2", f"{TARGET}-3"]
    assert [c.params["PromotionTier"] for c in creates] == [0, 1, 1]
    assert not cloud.calls_to("copy_snapshot")

    cluster = run.target.clusters[TARGET]
    for resource in [cluster, *run.target.instances.values()]:
        tags = tags_of(resource)
        assert tags[RESTORE_UID_TAG] == UID
        assert tags[RESTORE_NAME_TAG] == "team-a/nightly"
        assert tags[MANAGED_BY_TAG] == "aurora-restore-operator"
        assert tags["team"] == "data" and tags["cost-center"] == "data"
    assert set(run.target.instances) == {f"{TARGET}-1", f"{TARGET}-2", f"{TARGET}-3"}


def test_the_first_instance_is_the_writer_and_status_records_the_cluster(restore):
    run = restore()
    status = run.run()
    assert [(i.identifier, i.writer, i.status) for i in status.instances] == [
        (f"{TARGET}-1", True, "available"),
        (f"{TARGET}-2", False, "available"),
    ]
    assert status.cluster.identifier == TARGET
    assert status.cluster.status == "available"
    assert status.cluster.endpoint == f"{TARGET}.cluster-c0ffee.{SOURCE_REGION}.rds.amazonaws.com"
    assert status.cluster.port == 5432
    assert status.completed_at is not None and status.completed_at > status.started_at


def test_user_tags_never_override_the_restore_uid_tag(restore):
    run = restore({"target": {"tags": {RESTORE_UID_TAG: "someone-else", MANAGED_BY_TAG: "me"}}})
    run.run()
    tags = tags_of(run.target.clusters[TARGET])
    assert tags[RESTORE_UID_TAG] == UID
    assert tags[MANAGED_BY_TAG] == "aurora-restore-operator"


def test_restore_passes_every_target_field_given_and_nothing_else(restore, cloud):
    run = restore(
        {
            "target": {
                "engineVersion": "15.5",
                "port": 6543,
                "dbSubnetGroupName": "private",
                "vpcSecurityGroupIds": ["sg-1", "sg-2"],
                "dbClusterParameterGroupName": "pg15-tuned",
                "deletionProtection": True,
                "iamDatabaseAuthentication": True,
                "enableCloudwatchLogsExports": ["postgresql"],
                "serverlessV2Scaling": {"minCapacity": 0.5, "maxCapacity": 8},
                "instances": {"count": 1, "instanceClass": "db.serverless", "dbParameterGroupName": "pg15-inst"},
            }
        }
    )
    run.target.add_group("subnet group", "private")
    run.target.add_group("cluster parameter group", "pg15-tuned")
    run.target.add_group("parameter group", "pg15-inst")
    run.target_ec2.add_security_group("sg-1", "sg-2")
    assert run.run().phase == Phase.SUCCEEDED
    params = cloud.calls_to("restore_cluster_from_snapshot")[0].params
    assert {k: v for k, v in params.items() if k != "Tags"} == {
        "DBClusterIdentifier": TARGET,
        "SnapshotIdentifier": SNAPSHOT,
        "Engine": "aurora-postgresql",
        "CopyTagsToSnapshot": True,
        "EngineVersion": "15.5",
        "Port": 6543,
        "DBSubnetGroupName": "private",
        "VpcSecurityGroupIds": ["sg-1", "sg-2"],
        "DBClusterParameterGroupName": "pg15-tuned",
        "EnableIAMDatabaseAuthentication": True,
        "EnableCloudwatchLogsExports": ["postgresql"],
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 8},
    }
    instance = cloud.calls_to("create_instance")[0].params
    assert instance["DBInstanceClass"] == "db.serverless"
    assert instance["DBParameterGroupName"] == "pg15-inst"


def test_restore_leaves_out_fields_the_user_did_not_give(restore, cloud):
    restore().run()
    params = cloud.calls_to("restore_cluster_from_snapshot")[0].params
    assert set(params) == {"DBClusterIdentifier", "SnapshotIdentifier", "Engine", "Tags", "CopyTagsToSnapshot"}
    assert "DBParameterGroupName" not in cloud.calls_to("create_instance")[0].params


def test_snapshot_can_be_named_by_arn(restore, source, cloud):
    arn = source.snapshots[SNAPSHOT]["DBClusterSnapshotArn"]
    run = restore({"source": {"snapshotIdentifier": arn}})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert status.snapshot.arn == arn
    assert cloud.calls_to("restore_cluster_from_snapshot")[0].params["SnapshotIdentifier"] == SNAPSHOT


def test_source_snapshot_is_never_deleted(restore, source, cloud):
    arn = source.snapshots[SNAPSHOT]["DBClusterSnapshotArn"]
    restore().run()
    cross_region = restore(
        {"target": {"clusterIdentifier": "other"}, **CROSS_REGION}, uid="0a0a0a0a-1111-2222-3333-444455556666"
    )
    assert cross_region.run().phase == Phase.SUCCEEDED
    failing = restore(
        {"target": {"clusterIdentifier": "third", "dbSubnetGroupName": "gone"}, **CROSS_REGION},
        uid="0b0b0b0b-1111-2222-3333-444455556666",
    )
    failing.target.add_group("subnet group", "gone")  # there at preflight, gone by the time of the restore
    failing.target.fail("restore_cluster_from_snapshot", aws_error("DBSubnetGroupNotFoundFault", "no such group"))
    assert failing.run().phase == Phase.FAILED

    deleted = {c.params["identifier"] for c in cloud.calls_to("delete_snapshot")}
    assert deleted and not deleted & {SNAPSHOT, arn}
    assert source.snapshots[SNAPSHOT]["Status"] == "available"


def test_missing_snapshot_fails_naming_the_field(restore, cloud):
    status = restore({"source": {"snapshotIdentifier": "does-not-exist"}}).run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "SnapshotNotFound"
    assert status.failure.phase == Phase.RESOLVING_SNAPSHOT
    assert "spec.source.snapshotIdentifier 'does-not-exist'" in status.failure.message
    assert cloud.mutations == []


def test_failed_snapshot_fails_the_restore(restore, source, cloud):
    source.add_snapshot("broken", status="failed")
    status = restore({"source": {"snapshotIdentifier": "broken"}}).run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "SnapshotFailed")
    assert cloud.mutations == []


# --- cross region ------------------------------------------------------------------------------------------------


def test_cross_region_copies_with_the_kms_key_restores_from_the_copy_and_deletes_it(restore, source, cloud):
    source.add_snapshot("encrypted", encrypted=True)
    run = restore({"source": {"snapshotIdentifier": "encrypted"}, **CROSS_REGION})
    status = run.run()

    assert run.phases == [
        Phase.PENDING,
        Phase.RESOLVING_SNAPSHOT,
        Phase.PREFLIGHT,
        Phase.COPYING_SNAPSHOT,
        Phase.RESTORING_CLUSTER,
        Phase.CREATING_INSTANCES,
        Phase.CONFIGURING_ACCESS,
        Phase.VERIFYING,
        Phase.PUBLISHING,
        Phase.CLEANING_UP,
        Phase.SUCCEEDED,
    ]
    [copy] = cloud.calls_to("copy_snapshot")
    assert copy.region == OTHER_REGION
    assert copy.params["source_arn"] == source.snapshots["encrypted"]["DBClusterSnapshotArn"]
    assert copy.params["source_region"] == SOURCE_REGION
    assert copy.params["identifier"] == COPY_ID
    assert copy.params["kms_key_id"] == KMS_KEY
    assert copy.params["tags"][RESTORE_UID_TAG] == UID

    [restored] = cloud.calls_to("restore_cluster_from_snapshot")
    assert restored.region == OTHER_REGION
    assert restored.params["SnapshotIdentifier"] == COPY_ID
    assert TARGET in run.target.clusters and TARGET not in source.clusters

    [deleted] = cloud.calls_to("delete_snapshot")
    assert (deleted.region, deleted.params["identifier"]) == (OTHER_REGION, COPY_ID)
    assert COPY_ID not in run.target.snapshots
    assert status.copied_snapshot.identifier == COPY_ID
    assert status.copied_snapshot.deleted is True


def test_cross_region_copy_is_kept_when_delete_after_restore_is_false(restore, cloud):
    run = restore({**CROSS_REGION, "copy": {"kmsKeyId": KMS_KEY, "deleteAfterRestore": False}})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert not cloud.calls_to("delete_snapshot")
    assert run.target.snapshots[COPY_ID]["Status"] == "available"
    assert not status.copied_snapshot.deleted


def test_target_region_equal_to_source_region_does_not_copy(restore, cloud):
    restore({"target": {"region": SOURCE_REGION}}).run()
    assert not cloud.calls_to("copy_snapshot")


def test_copy_progress_is_reported_while_waiting(restore):
    run = restore(CROSS_REGION)
    run.target.ticks_by_kind["copy"] = 3
    run.run_until(Phase.COPYING_SNAPSHOT)
    messages = []
    while run.phase == Phase.COPYING_SNAPSHOT:
        outcome = run.step()
        messages.append(outcome.message)
    waiting = messages[:-1]
    assert len(waiting) >= 2
    assert all(m.startswith(f"copying snapshot {SNAPSHOT} to {OTHER_REGION}: ") and m.endswith("%") for m in waiting)
    progress = [int(m.rsplit(" ", 1)[-1].rstrip("%")) for m in waiting]
    assert progress == sorted(progress) and 0 < progress[-1] < 100
    assert run.status.copied_snapshot.arn.endswith(f":cluster-snapshot:{COPY_ID}")


def test_encrypted_snapshot_without_copy_kms_key_fails_naming_the_field(restore, source, cloud):
    source.add_snapshot("encrypted", encrypted=True)
    status = restore({"source": {"snapshotIdentifier": "encrypted"}, "target": {"region": OTHER_REGION}}).run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "KmsKeyRequired"
    assert status.failure.phase == Phase.PREFLIGHT
    assert "spec.copy.kmsKeyId is required" in status.failure.message
    assert cloud.mutations == []


@pytest.mark.parametrize("how", ["key-not-usable-in-region", "queued-aws-error"])
def test_unusable_copy_kms_key_fails_naming_the_field_and_value(restore, source, cloud, how):
    source.add_snapshot("encrypted", encrypted=True)
    run = restore({**CROSS_REGION, "source": {"snapshotIdentifier": "encrypted"}})
    if how == "key-not-usable-in-region":
        run.target.usable_kms_keys = {"arn:aws:kms:us-east-1:123456789012:key/some-other-key"}
    else:
        run.target.fail(
            "copy_snapshot",
            aws_error("KMSKeyNotAccessibleFault", "The key is disabled.", action="copy_snapshot", region=OTHER_REGION),
        )
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "KmsKeyNotUsable"
    assert f"spec.copy.kmsKeyId {KMS_KEY!r} cannot be used in {OTHER_REGION}" in status.failure.message
    assert "KMSKeyNotAccessibleFault" in status.failure.message
    assert not run.target.snapshots


def test_an_unencrypted_snapshot_is_copied_without_a_key_and_encrypted_at_restore(restore, cloud):
    """AWS refuses KmsKeyId when copying an unencrypted snapshot: copy.kmsKeyId encrypts the restore instead."""
    status = restore(CROSS_REGION).run()
    assert status.phase == Phase.SUCCEEDED, status.message
    [copy] = cloud.calls_to("copy_snapshot")
    assert copy.params["kms_key_id"] is None and copy.error is None
    [restored] = cloud.calls_to("restore_cluster_from_snapshot")
    assert restored.params["KmsKeyId"] == KMS_KEY
    check = {c.name: c for c in status.preflight}["spec.copy.kmsKeyId"]
    assert "unencrypted" in check.message and "restored cluster is encrypted with it" in check.message


def test_target_kms_key_wins_over_the_copy_key_for_an_unencrypted_snapshot(restore, cloud):
    other = "arn:aws:kms:us-east-1:123456789012:key/9999aaaa-2222-bbbb-3333-cccc4444dddd"
    cloud.kms(OTHER_REGION).add_key(other)
    status = restore({**CROSS_REGION, "target": {"region": OTHER_REGION, "kmsKeyId": other}}).run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert cloud.calls_to("restore_cluster_from_snapshot")[0].params["KmsKeyId"] == other


def test_failure_after_the_copy_deletes_the_copy(restore, cloud):
    run = restore({**CROSS_REGION, "target": {"region": OTHER_REGION, "dbSubnetGroupName": "gone"}})
    run.target.add_group("subnet group", "gone")  # there at preflight, gone by the time of the restore
    run.target.fail(
        "restore_cluster_from_snapshot",
        aws_error("DBSubnetGroupNotFoundFault", "DBSubnetGroup gone not found.", region=OTHER_REGION),
    )
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.phase == Phase.RESTORING_CLUSTER
    assert status.failure.message.startswith("spec.target.dbSubnetGroupName: ")
    assert [c.params["identifier"] for c in cloud.calls_to("delete_snapshot")] == [COPY_ID]
    assert COPY_ID not in run.target.snapshots
    assert status.copied_snapshot.deleted is True


def test_timeout_while_copying_cancels_the_copy(restore, cloud):
    run = restore({**CROSS_REGION, "timeout": "5m"})
    run.target.ticks_by_kind["copy"] = 1000
    status = run.run()
    assert (status.phase, status.failure.reason, status.failure.phase) == (
        Phase.FAILED,
        "Timeout",
        Phase.COPYING_SNAPSHOT,
    )
    assert COPY_ID not in run.target.snapshots
    assert status.copied_snapshot.deleted is True


def test_failure_keeps_the_copy_when_delete_after_restore_is_false(restore, cloud):
    run = restore({**CROSS_REGION, "copy": {"kmsKeyId": KMS_KEY, "deleteAfterRestore": False}})
    run.target.fail("restore_cluster_from_snapshot", aws_error("StorageQuotaExceeded", "quota", region=OTHER_REGION))
    assert run.run().phase == Phase.FAILED
    assert not cloud.calls_to("delete_snapshot")
    assert COPY_ID in run.target.snapshots


def test_a_foreign_snapshot_with_the_copy_name_is_left_alone(restore, other_region, cloud):
    other_region.add_snapshot(COPY_ID, "elsewhere", tags={RESTORE_UID_TAG: "another-restore"})
    status = restore(CROSS_REGION).run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "CopyNameTaken")
    assert cloud.mutations == []
    assert COPY_ID in other_region.snapshots


# --- latest snapshot selection -----------------------------------------------------------------------------------


def at(day: int, hour: int = 3) -> datetime:
    return datetime(2025, 3, 1, hour, tzinfo=timezone.utc) - timedelta(days=day)


LATEST = {
    "source": {
        "snapshotIdentifier": None,
        "latest": {
            "clusterIdentifier": "prod",
            "snapshotType": "manual",
            "namePattern": "nightly-*",
            "tags": {"env": "prod"},
            "maxAge": "7d",
        },
    }
}


def test_latest_picks_the_newest_snapshot_that_matches_every_filter(restore, source, cloud):
    prod = {"env": "prod"}
    source.add_snapshot("nightly-2025-02-28", created=at(1), tags=prod)  # the answer: listed first on purpose
    source.add_snapshot("nightly-2025-02-27", created=at(2), tags=prod)
    source.add_snapshot("nightly-2025-02-20", created=at(9), tags=prod)  # older than maxAge
    source.add_snapshot("adhoc-2025-03-01", created=at(0), tags=prod)  # name does not match
    source.add_snapshot("nightly-2025-03-01-dev", created=at(0), tags={"env": "dev"})  # tag does not match
    source.add_snapshot("nightly-2025-03-01-untagged", created=at(0))  # tag missing
    source.add_snapshot("nightly-2025-03-01-auto", created=at(0), tags=prod, snapshot_type="automated")  # type
    source.add_snapshot("nightly-2025-03-01-other", "prod-eu", created=at(0), tags=prod)  # another cluster
    source.add_snapshot("nightly-2025-03-01-failed", created=at(0), tags=prod, status="failed")

    run = restore(LATEST)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert status.snapshot.identifier == "nightly-2025-02-28"
    assert status.snapshot.created_at == at(1)
    assert cloud.calls_to("restore_cluster_from_snapshot")[0].params["SnapshotIdentifier"] == "nightly-2025-02-28"
    [listing] = cloud.calls_to("list_cluster_snapshots")
    assert listing.params == {"cluster_identifier": "prod", "snapshot_type": "manual"}


@pytest.mark.parametrize(
    ("snapshot_type", "expected"),
    [("automated", "rds:prod-2025-03-01-03-00"), ("shared", "shared-newest"), ("any", "shared-newest")],
)
def test_latest_snapshot_type_selects_automated_manual_or_shared(restore, source, snapshot_type, expected):
    source.add_snapshot("rds:prod-2025-03-01-03-00", created=at(0, 3), snapshot_type="automated")
    source.add_snapshot("manual-newer", created=at(0, 4))
    shared = source.add_snapshot("shared-newest", created=at(0, 5), shared_from="210987654321")
    latest = {"clusterIdentifier": "prod", "snapshotType": snapshot_type}
    run = restore({"source": {"snapshotIdentifier": None, "latest": latest}})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    chosen = shared["DBClusterSnapshotArn"] if expected == "shared-newest" else expected
    assert status.snapshot.identifier == chosen


def test_latest_with_only_manual_type_ignores_newer_automated_and_shared(restore, source):
    source.add_snapshot("rds:reporting-2025-03-01-03-00", "reporting", created=at(0, 3), snapshot_type="automated")
    source.add_snapshot("shared-newest", "reporting", created=at(0, 5), shared_from="210987654321")
    source.add_snapshot("manual-old", "reporting", created=at(3))
    latest = {"clusterIdentifier": "reporting", "snapshotType": "manual"}
    run = restore({"source": {"snapshotIdentifier": None, "latest": latest}})
    assert run.run().snapshot.identifier == "manual-old"


def test_latest_with_no_match_fails_naming_the_filters_and_touches_nothing(restore, source, cloud):
    source.add_snapshot("nightly-2025-02-10", created=at(19), tags={"env": "prod"})  # too old
    run = restore(LATEST)
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "NoMatchingSnapshot"
    message = status.failure.message
    assert message.startswith("spec.source.latest: none of the")
    for text in ("'prod'", "snapshotType=manual", "namePattern=nightly-*", "maxAge=7d", "env"):
        assert text in message
    assert cloud.mutations == []


def test_a_pinned_snapshot_still_creating_waits_and_stays_chosen(restore, source, cloud):
    source.add_snapshot("nightly-2025-03-01", created=at(0), status="creating", settles_after=3, tags={"env": "prod"})
    run = restore({**LATEST, "existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(Phase.RESOLVING_SNAPSHOT)

    outcome = run.step()
    assert isinstance(outcome, Wait) and not outcome.backoff
    assert outcome.message.startswith("snapshot nightly-2025-03-01 is creating")
    assert run.phase == Phase.RESOLVING_SNAPSHOT
    assert run.status.snapshot.identifier == "nightly-2025-03-01"

    # A newer snapshot appearing meanwhile does not change the choice.
    source.add_snapshot("nightly-2025-03-01-late", created=at(0, 11), tags={"env": "prod"})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert cloud.calls_to("restore_cluster_from_snapshot")[0].params["SnapshotIdentifier"] == "nightly-2025-03-01"
    # The latest filter was evaluated once; afterwards the pinned identifier is described.
    assert len(cloud.calls_to("list_cluster_snapshots")) == 1
    # Nothing was deleted while the snapshot was not yet usable.
    first_delete = next(i for i, c in enumerate(cloud.calls) if c.action.startswith("delete_"))
    last_wait_on_snapshot = max(
        i for i, c in enumerate(cloud.calls)
        if c.action == "describe_snapshot" and c.params["identifier"] == "nightly-2025-03-01"
    )
    assert first_delete > last_wait_on_snapshot


def test_a_pinned_snapshot_that_disappears_fails(restore, source):
    source.add_snapshot("nightly-2025-03-01", created=at(0), status="creating", tags={"env": "prod"})
    run = restore(LATEST)
    run.run_until(Phase.RESOLVING_SNAPSHOT)
    run.step()
    del source.snapshots["nightly-2025-03-01"]
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "SnapshotNotFound")


# --- an existing target cluster ----------------------------------------------------------------------------------


def test_existing_target_with_policy_fail_fails_and_deletes_nothing(restore, cloud):
    run = restore()
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "TargetExists"
    assert status.failure.phase == Phase.PREFLIGHT
    assert "spec.existingTarget.policy" in status.failure.message
    assert cloud.mutations == []
    assert run.target.clusters[TARGET]["Status"] == "available"
    assert len(run.target.instances) == 2


def test_replace_restores_beside_the_target_verifies_then_swaps_and_retires_the_previous_cluster(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    old = run.target.add_cluster(TARGET, instances=2, tags={**REPLACEABLE, "owner": "old"})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message

    temporary, previous, final = f"{TARGET}-restore-7d3f9a2e", f"{TARGET}-previous-7d3f9a2e", f"{TARGET}-final-7d3f9a2e"
    assert run.phases[-6:] == [Phase.VERIFYING, Phase.SWAPPING_TARGET, Phase.RETIRING_PREVIOUS, Phase.PUBLISHING,
                               Phase.CLEANING_UP, Phase.SUCCEEDED]
    actions = [(c.action, c.params.get("identifier") or c.params.get("DBInstanceIdentifier")
                or c.params.get("DBClusterIdentifier")) for c in cloud.mutations]
    assert actions == [
        ("restore_cluster_from_snapshot", temporary),
        ("create_instance", f"{TARGET}-7d3f9a2e-1"),
        ("create_instance", f"{TARGET}-7d3f9a2e-2"),
        ("rename_cluster", TARGET),
        ("rename_cluster", temporary),
        ("delete_instance", f"{TARGET}-instance-1"),
        ("delete_instance", f"{TARGET}-instance-2"),
        ("delete_cluster", previous),
        ("add_tags", None),
    ]
    renames = [(c.params["identifier"], c.params["new_identifier"]) for c in cloud.calls_to("rename_cluster")]
    assert renames == [(TARGET, previous), (temporary, TARGET)]
    [delete] = cloud.calls_to("delete_cluster")
    assert delete.params == {"identifier": previous, "final_snapshot_identifier": final,
                             "keep_automated_backups": True}
    assert all(c.error is None for c in cloud.mutations)  # never asked AWS for something it refuses

    assert tags_of(run.target.clusters[TARGET])[RESTORE_UID_TAG] == UID
    assert set(run.target.clusters) == {TARGET}
    assert set(run.target.instances) == {f"{TARGET}-7d3f9a2e-1", f"{TARGET}-7d3f9a2e-2"}
    assert run.target.retained_backups[previous]["DbClusterResourceId"] == old["DbClusterResourceId"]
    assert tags_of(run.target.snapshots[final])[RESTORE_UID_TAG] == UID
    replaced = status.replaced_cluster
    assert (replaced.identifier, replaced.arn, replaced.resource_id) == (TARGET, old["DBClusterArn"],
                                                                        old["DbClusterResourceId"])
    assert (replaced.renamed_to, replaced.final_snapshot_identifier) == (previous, final)
    assert replaced.swap_started_at <= replaced.swapped_at <= replaced.deleted_at
    assert replaced.deleted_instances == [f"{TARGET}-instance-1", f"{TARGET}-instance-2"]
    assert status.cluster.identifier == TARGET


def test_the_existing_target_is_untouched_until_verification_passed(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    run.run_until(Phase.SWAPPING_TARGET)
    touched = [c for c in cloud.mutations if TARGET in (c.params.get("identifier"), c.params.get("DBClusterIdentifier"))
               or str(c.params.get("DBInstanceIdentifier", "")).startswith(f"{TARGET}-instance")]
    assert touched == []
    assert run.target.clusters[TARGET]["Status"] == "available"
    assert [i["DBClusterIdentifier"] for i in run.target.instances.values()].count(TARGET) == 2


@pytest.mark.parametrize("failing", ["restore_cluster_from_snapshot", "create_instance"])
def test_a_replace_that_fails_before_the_swap_leaves_the_target_as_it_was_and_no_temporary_cluster(
    restore, cloud, failing
):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    before = copy.deepcopy((run.target.clusters[TARGET], run.target.instances))
    refusal = aws_error("InvalidParameterCombination", "refused", action=failing, region=SOURCE_REGION)
    run.target.fail(failing, refusal)
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.phase in (Phase.RESTORING_CLUSTER, Phase.CREATING_INSTANCES)
    assert Phase.CLEANING_UP_AFTER_FAILURE in run.phases
    assert (run.target.clusters[TARGET], {k: v for k, v in run.target.instances.items() if TARGET + "-instance" in k}
            ) == before
    assert set(run.target.clusters) == {TARGET}
    assert not cloud.calls_to("rename_cluster")


def test_the_timeout_no_longer_applies_once_the_swap_began(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}, "timeout": "30m"})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.target.ticks_by_kind["rename"] = 3
    run.send_first_rename()
    run.now += timedelta(hours=1)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message  # the swap and the retirement were finished
    assert tags_of(run.target.clusters[TARGET])[RESTORE_UID_TAG] == UID
    assert set(run.target.clusters) == {TARGET}
    assert len(cloud.calls_to("rename_cluster")) == 2


def test_a_timeout_before_the_swap_fails_and_leaves_the_target(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}, "timeout": "30m"})
    old = run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(Phase.SWAPPING_TARGET)
    run.now += timedelta(hours=1)
    status = run.run()
    assert (status.phase, status.failure.reason, status.failure.phase) == (Phase.FAILED, "Timeout",
                                                                          Phase.SWAPPING_TARGET)
    assert run.target.clusters[TARGET]["DbClusterResourceId"] == old["DbClusterResourceId"]
    assert set(run.target.clusters) == {TARGET} and not cloud.calls_to("rename_cluster")


@pytest.mark.parametrize("broken", ["incompatible-parameters", "gone"])
def test_the_target_is_never_renamed_away_while_its_successor_is_broken(restore, cloud, broken):
    run = restore({"existingTarget": {"policy": "Replace"}})
    old = run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(Phase.SWAPPING_TARGET)
    temporary = f"{TARGET}-restore-7d3f9a2e"
    if broken == "gone":
        for instance in [k for k, v in run.target.instances.items() if v["DBClusterIdentifier"] == temporary]:
            del run.target.instances[instance]
        del run.target.clusters[temporary]
    else:
        run.target.clusters[temporary]["Status"] = broken
    status = run.run()
    assert status.phase == Phase.FAILED and status.failure.phase == Phase.SWAPPING_TARGET
    assert not cloud.calls_to("rename_cluster")
    assert run.target.clusters[TARGET]["DbClusterResourceId"] == old["DbClusterResourceId"]


def test_a_successor_broken_after_the_first_rename_gets_the_previous_cluster_renamed_back(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    old = run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.send_first_rename()
    run.target.clusters[f"{TARGET}-restore-7d3f9a2e"]["Status"] = "inaccessible-encryption-credentials"
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "EncryptionKeyInaccessible")
    assert run.target.clusters[TARGET]["DbClusterResourceId"] == old["DbClusterResourceId"]
    assert status.replaced_cluster.rolled_back_at is not None


def test_a_refused_rollback_keeps_trying_instead_of_failing_with_the_target_away(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.send_first_rename()
    denied = aws_error("AccessDenied", "not allowed", action="rename_cluster")
    run.target.fail("rename_cluster", denied, times=50)  # the second rename, then every rollback attempt
    for _ in range(12):
        run.step()
    assert run.phase == Phase.CLEANING_UP_AFTER_FAILURE
    assert "rolling back the swap" in run.status.message and TARGET not in run.target.clusters
    run.target._queued_errors.clear()  # AWS lets it happen again
    status = run.run()
    assert status.phase == Phase.FAILED
    assert TARGET in run.target.clusters and not tags_of(run.target.clusters[TARGET]).get(RESTORE_UID_TAG)


def test_a_failure_after_the_first_rename_renames_the_previous_cluster_back(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    old = run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.send_first_rename()
    run.target.fail("rename_cluster", aws_error("InvalidParameterCombination", "refused", action="rename_cluster"))
    status = run.run()
    assert (status.phase, status.failure.phase) == (Phase.FAILED, Phase.SWAPPING_TARGET)
    assert run.target.clusters[TARGET]["DbClusterResourceId"] == old["DbClusterResourceId"]
    assert set(run.target.clusters) == {TARGET}  # the temporary cluster is gone, the target is back
    assert [i["DBClusterIdentifier"] for i in run.target.instances.values()] == [TARGET]


def test_keep_previous_succeeds_after_the_swap_and_deletes_the_previous_cluster_when_due(restore, cloud):
    from aurora_restore.machine import has_work, run_aftercare

    run = restore({"existingTarget": {"policy": "Replace", "keepPrevious": "2h"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    status = run.run()
    previous = f"{TARGET}-previous-7d3f9a2e"
    assert status.phase == Phase.SUCCEEDED
    assert Phase.RETIRING_PREVIOUS not in run.phases
    assert previous in run.target.clusters and not cloud.calls_to("delete_cluster")
    record = status.replaced_cluster
    assert record.delete_after == record.swapped_at + timedelta(hours=2)
    assert has_work(status)

    early = run_aftercare(run.context())
    assert isinstance(early, Wait) and 0 < early.delay <= 7200 and not cloud.calls_to("delete_instance")
    run.now = record.delete_after
    run.settle_aftercare()
    assert run.status.phase == Phase.SUCCEEDED
    assert previous not in run.target.clusters
    assert run.status.replaced_cluster.deleted_at is not None
    assert cloud.calls_to("delete_cluster")[0].params["keep_automated_backups"] is True
    assert not has_work(run.status)


def test_replace_without_final_snapshot_skips_it(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace", "finalSnapshot": False}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert cloud.calls_to("delete_cluster")[0].params["final_snapshot_identifier"] is None
    assert status.replaced_cluster.final_snapshot_identifier is None
    assert not [s for s in run.target.snapshots if "final" in s]


def test_replace_refuses_a_cluster_with_deletion_protection(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1, deletion_protection=True)
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "TargetDeletionProtected")
    assert "deletion protection" in status.failure.message
    assert cloud.mutations == []


def test_nothing_is_replaced_when_the_snapshot_does_not_exist(restore, cloud):
    run = restore({"source": {"snapshotIdentifier": "missing"}, "existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    assert run.run().phase == Phase.FAILED
    assert cloud.mutations == []


def test_retiring_waits_while_the_previous_cluster_is_deleting(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.target.ticks_by_kind["cluster-delete"] = 3
    run.run_until(Phase.RETIRING_PREVIOUS)
    messages = []
    while run.phase == Phase.RETIRING_PREVIOUS:
        messages.append(run.step().message)
    previous = f"{TARGET}-previous-7d3f9a2e"
    assert f"waiting for previous cluster {previous} to be deleted" in messages
    assert messages[-1] == f"previous cluster {previous} deleted after final snapshot {TARGET}-final-7d3f9a2e"
    assert len(cloud.calls_to("delete_cluster")) == 1


# --- errors, retries and time ------------------------------------------------------------------------------------


def test_a_retryable_error_waits_with_backoff_and_the_restore_continues(restore, cloud):
    run = restore()
    run.target.fail("restore_cluster_from_snapshot", throttling("restore_cluster_from_snapshot"), times=2)
    run.run_until(Phase.RESTORING_CLUSTER)
    first, second = run.step(), run.step()
    for outcome in (first, second):
        assert isinstance(outcome, Wait) and outcome.backoff
        assert "throttled by AWS (Throttling)" in outcome.message
    assert run.phase == Phase.RESTORING_CLUSTER
    assert run.status.message == second.message
    assert run.run().phase == Phase.SUCCEEDED
    assert len(successful(cloud.calls_to("restore_cluster_from_snapshot"))) == 1


@pytest.mark.parametrize(
    "action",
    [
        "describe_snapshot",
        "copy_snapshot",
        "describe_cluster",
        "restore_cluster_from_snapshot",
        "list_cluster_instances",
        "describe_instance",
        "create_instance",
        "delete_instance",
        "delete_cluster",
        "delete_snapshot",
    ],
)
def test_throttling_anywhere_only_delays_the_restore(restore, source, cloud, action):
    run = restore({**CROSS_REGION, "existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    for region in (source, run.target):
        region.fail(action, throttling(action, region.region), times=2)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert any(isinstance(o, Wait) and o.backoff for o in run.outcomes)
    assert any(c.action == action and c.error == "AwsThrottling" for c in cloud.calls)
    assert len(successful(cloud.calls_to("restore_cluster_from_snapshot"))) == 1
    assert len(successful(cloud.calls_to("create_instance"))) == 2


def test_a_server_error_is_retried(restore):
    run = restore()
    run.target.fail(
        "create_instance", aws_error("InternalFailure", "oops", action="create_instance", http_status=500)
    )
    assert run.run().phase == Phase.SUCCEEDED
    assert any(isinstance(o, Wait) and o.backoff and "AWS side" in o.message for o in run.outcomes)


def test_a_cluster_appearing_between_describe_and_restore_is_looked_at_again(restore, cloud):
    run = restore()
    run.target.fail("restore_cluster_from_snapshot", aws_error("DBClusterAlreadyExistsFault", "exists"))
    run.run_until(Phase.RESTORING_CLUSTER)
    outcome = run.step()
    assert isinstance(outcome, Wait) and outcome.backoff
    assert run.run().phase == Phase.SUCCEEDED


def test_a_cluster_made_by_someone_else_during_the_restore_is_left_alone(restore, cloud):
    run = restore()
    run.run_until(Phase.RESTORING_CLUSTER)
    run.target.add_cluster(TARGET, tags=REPLACEABLE)
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "TargetTaken")
    assert not cloud.calls_to("restore_cluster_from_snapshot")
    assert not cloud.calls_to("delete_cluster")


def test_a_cluster_made_again_by_someone_else_gets_no_instances(restore, cloud):
    """Deleted and made again under the restore's name after RestoringCluster: CreatingInstances adds nothing to
    it and fails TargetTaken; cleanup leaves it."""
    run = restore()
    run.run_until(Phase.CREATING_INSTANCES)
    del run.target.clusters[TARGET]
    run.target.add_cluster(TARGET, tags={"team": "other"})
    status = run.run()
    assert (status.phase, status.failure.reason, status.failure.phase) == (
        Phase.FAILED, "TargetTaken", Phase.CREATING_INSTANCES)
    assert not cloud.calls_to("create_instance")
    assert not cloud.calls_to("delete_cluster")
    assert TARGET in run.target.clusters


def test_timeout_fails_with_reason_timeout_naming_the_phase(restore):
    run = restore({"timeout": "10m"})
    run.target.ticks_by_kind["cluster"] = 1000
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "Timeout"
    assert status.failure.phase == Phase.RESTORING_CLUSTER
    assert "spec.timeout (10m)" in status.failure.message
    assert "RestoringCluster" in status.failure.message
    failed_at = next(h.started_at for h in status.history if h.phase == Phase.CLEANING_UP_AFTER_FAILURE)
    assert timedelta(minutes=10) < failed_at - status.started_at <= timedelta(minutes=10, seconds=30)


def test_timeout_counts_from_acceptance_even_while_waiting_for_the_lock(restore, lock_holders):
    run = restore({"timeout": "2m"})
    lock_holders[run.lock.target] = "team-b/hogger"
    status = run.run()
    assert (status.phase, status.failure.reason, status.failure.phase) == (Phase.FAILED, "Timeout", Phase.PENDING)


def test_engine_version_refusal_names_spec_target_engine_version(restore, cloud):
    """Preflight finds the version missing from the snapshot's valid upgrade targets; nothing is changed."""
    status = restore({"target": {"engineVersion": "11.9"}}).run()
    assert status.phase == Phase.FAILED
    assert (status.failure.reason, status.failure.phase) == ("InvalidEngineVersion", Phase.PREFLIGHT)
    assert "spec.target.engineVersion '11.9': snapshot 'prod-2025-03-01'" in status.failure.message
    assert "aurora-postgresql 15.4" in status.failure.message
    assert status.failure.message.endswith("valid targets: 15.5, 15.6, 15.7, 16.1, 16.2")
    assert cloud.mutations == []


def test_engine_version_refused_by_the_restore_itself_names_spec_target_engine_version(restore):
    """A version AWS lists as a valid target but then refuses (e.g. not offered in the target region)."""
    run = restore({"target": {"engineVersion": "16.1"}})
    run.target.fail(
        "restore_cluster_from_snapshot",
        aws_error(
            "InvalidParameterCombination",
            "Cannot find version 16.1 for aurora-postgresql",
            action="restore_cluster_from_snapshot",
        ),
    )
    status = run.run()
    assert status.phase == Phase.FAILED
    assert (status.failure.reason, status.failure.phase) == ("InvalidEngineVersion", Phase.RESTORING_CLUSTER)
    assert status.failure.message.startswith("spec.target.engineVersion '16.1': ")
    assert status.failure.message.endswith("Cannot find version 16.1 for aurora-postgresql")


def test_a_version_refusal_is_not_blamed_on_engine_version_when_none_was_given(restore):
    run = restore()
    run.target.fail(
        "restore_cluster_from_snapshot",
        aws_error("InvalidParameterCombination", "version mismatch", action="restore_cluster_from_snapshot"),
    )
    status = run.run()
    assert status.failure.reason == "InvalidParameterCombination"
    assert "spec.target.engineVersion" not in status.failure.message


def test_a_refused_restore_parameter_names_the_spec_field(restore):
    """The key exists (preflight passes) but RDS may not use it (its key policy, say): AWS refuses the restore."""
    run = restore({"target": {"kmsKeyId": "alias/no-rds-grant"}})
    run.target_kms.add_key("no-rds-grant-key", alias="alias/no-rds-grant")
    run.target.usable_kms_keys = {"alias/aws/rds"}
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "KMSKeyNotAccessibleFault")
    assert status.failure.message.startswith("spec.target.kmsKeyId: ")
    assert "alias/no-rds-grant" in status.failure.message


def test_a_refused_instance_class_names_the_field_and_value(restore, cloud):
    run = restore({"target": {"instances": {"instanceClass": "db.t1.tiny"}}})
    run.target.fail(
        "create_instance",
        aws_error("InvalidParameterCombination", "RDS does not support db.t1.tiny", action="create_instance"),
    )
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "InvalidInstanceClass")
    assert status.failure.message.startswith("spec.target.instances.instanceClass 'db.t1.tiny': ")
    assert status.failure.phase == Phase.CREATING_INSTANCES


def test_an_instance_name_taken_outside_the_cluster_is_left_alone(restore, cloud):
    run = restore()
    run.target.add_cluster("elsewhere")
    run.target.create_instance(
        DBInstanceIdentifier=f"{TARGET}-2", DBClusterIdentifier="elsewhere", Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    cloud.calls.clear()
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "InstanceNameTaken")
    assert not cloud.calls_to("delete_instance")


# --- the target lock ---------------------------------------------------------------------------------------------


def test_a_lock_held_by_another_restore_keeps_pending_without_calling_aws(restore, lock_holders, cloud):
    run = restore()
    lock_holders[run.lock.target] = "team-b/weekly"
    for _ in range(3):
        outcome = run.step()
        assert isinstance(outcome, Wait) and not outcome.backoff
        assert "team-b/weekly" in outcome.message and f"{SOURCE_REGION}/{TARGET}" in outcome.message
    assert run.phase == Phase.PENDING
    assert run.phases == [Phase.PENDING]
    assert cloud.calls == []

    del lock_holders[run.lock.target]
    assert run.run().phase == Phase.SUCCEEDED
    assert lock_holders == {}  # released at the end


def test_two_restores_of_one_target_run_one_after_the_other(restore, lock_holders, cloud):
    first = restore()
    second = restore(uid="99999999-8888-7777-6666-555555555555", name="second")
    first.step()
    assert first.phase == Phase.RESOLVING_SNAPSHOT
    second.step()
    assert second.phase == Phase.PENDING
    assert "team-a/nightly" in second.status.message

    first.run()
    status = second.run()
    # The second one then finds the first one's cluster and, with policy Fail, leaves it alone.
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "TargetExists")
    assert len(cloud.calls_to("restore_cluster_from_snapshot")) == 1
    assert lock_holders == {}


def test_each_advance_moves_exactly_one_phase_forward(restore):
    run = restore(CROSS_REGION)
    run.run()
    advances = [o.to for o in run.outcomes if isinstance(o, Advance)]
    assert advances == run.phases[1:]
    assert run.status.started_at == START


def test_instances_already_being_deleted_are_not_deleted_again(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    run.target.ticks_by_kind["instance-delete"] = 4
    run.target.delete_instance(f"{TARGET}-instance-1")  # someone started on it already
    cloud.calls.clear()
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert [c.params["identifier"] for c in cloud.calls_to("delete_instance")] == [f"{TARGET}-instance-2"]
    assert all(c.error is None for c in cloud.mutations)


def test_cleanup_never_deletes_a_snapshot_it_did_not_make(restore, cloud):
    """The copy vanished and someone else's snapshot took its name before CleaningUp: it is left alone."""
    run = restore(CROSS_REGION)
    run.run_until(Phase.CLEANING_UP)
    del run.target.snapshots[COPY_ID]
    run.target.add_snapshot(COPY_ID, "elsewhere", tags={RESTORE_UID_TAG: "another-restore"})
    assert run.run().phase == Phase.SUCCEEDED
    assert not cloud.calls_to("delete_snapshot")
    assert COPY_ID in run.target.snapshots


def test_cleanup_after_failure_never_deletes_a_snapshot_it_did_not_make(restore, cloud):
    run = restore({**CROSS_REGION, "timeout": "10m"})
    run.target.ticks_by_kind["cluster"] = 1000
    run.run_until(Phase.RESTORING_CLUSTER)
    del run.target.snapshots[COPY_ID]
    run.target.add_snapshot(COPY_ID, "elsewhere", tags={RESTORE_UID_TAG: "another-restore"})
    assert run.run().failure.reason == "Timeout"
    assert not cloud.calls_to("delete_snapshot")
    assert COPY_ID in run.target.snapshots
