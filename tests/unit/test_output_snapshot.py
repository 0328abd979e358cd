"""spec.output.snapshot: the sanitized snapshot for other accounts (SnapshottingOutput, steps/output.py)."""

from datetime import datetime, timedelta, timezone

import pytest

from aurora_restore.api.models import AuroraRestoreSpec
from aurora_restore.api.phase import Phase
from aurora_restore.aws.rds import tags_of
from aurora_restore.machine import run_aftercare
from aurora_restore.notify.payload import build_payload
from aurora_restore.steps.deletion import delete_restored_cluster
from aurora_restore.steps.context import RESTORE_UID_TAG, SNAPSHOT_ROLE_TAG
from aurora_restore.steps.outcomes import Advance
from aurora_restore.steps.output import fill_identifier

from .conftest import BASE_SPEC, PERMISSIVE_POLICY, REPLACEABLE, SOURCE_REGION, TARGET, UID, merged
from .fake_rds import aws_error

CONSUMER = "444455556666"
INTERMEDIATE = f"aurora-restore-{UID}-output"


# The permissive policy, also allowing any account to be shared with (snapshotShareAccounts is empty by default).
SHARING_POLICY = {**PERMISSIVE_POLICY, "snapshotShareAccounts": ["*"]}


@pytest.fixture
def restore(restore):
    """The conftest harness under SHARING_POLICY unless a test names policies."""
    def build(changes=None, **fields):
        fields.setdefault("policies", {"sharing": SHARING_POLICY})
        return restore(changes, **fields)

    return build


@pytest.fixture
def keys(cloud):
    """A customer-managed key in the source (= target) region, for the cluster and the output snapshot."""
    kms = cloud.kms(SOURCE_REGION)
    kms.add_key("cluster-key", alias="alias/cluster")
    kms.add_key("share-key", alias="alias/share", users=[CONSUMER])
    return kms


def output(**fields) -> dict:
    return {"output": {"snapshot": {"identifier": "orders-masked-{date}-{time}", **fields}},
            "target": {"kmsKeyId": "alias/cluster"}}


def test_placeholders_are_filled_from_the_start_in_utc_and_lower_cased():
    started = datetime(2026, 12, 2, 23, 7, tzinfo=timezone.utc)
    assert fill_identifier("Orders-{date}-{time}", started) == "orders-20261202-2307"
    assert fill_identifier("orders-masked", started) == "orders-masked"


def test_the_output_snapshot_is_copied_with_the_key_shared_and_kept(restore, keys, cloud):
    run = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER]))
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.phases.index(Phase.SNAPSHOTTING_OUTPUT) == run.phases.index(Phase.VERIFYING) + 1
    assert run.phases[run.phases.index(Phase.SNAPSHOTTING_OUTPUT) + 1] == Phase.PUBLISHING
    identifier = "orders-masked-20250301-1200"  # conftest START
    record = status.output_snapshot
    assert record.identifier == identifier and record.arn.endswith(f":cluster-snapshot:{identifier}")
    assert record.kms_key_id == "alias/share" and record.shared_with == [CONSUMER]
    assert record.intermediate_identifier == INTERMEDIATE and record.intermediate_deleted is True
    assert record.available_at is not None and record.cluster_deleted_at is None and record.deleted is None
    # The snapshot of the restored cluster first, then the copy with the consumers' key, then the share.
    [created] = cloud.calls_to("create_cluster_snapshot")
    assert created.params["identifier"] == INTERMEDIATE and created.params["cluster_identifier"] == TARGET
    assert created.params["tags"][SNAPSHOT_ROLE_TAG] == "output-intermediate"
    [copied] = cloud.calls_to("copy_snapshot")
    assert copied.params["identifier"] == identifier and copied.params["kms_key_id"] == "alias/share"
    snapshot = run.target.describe_snapshot(identifier)
    assert tags_of(snapshot)[RESTORE_UID_TAG] == UID and tags_of(snapshot)[SNAPSHOT_ROLE_TAG] == "output"
    assert run.target.describe_snapshot(INTERMEDIATE) is None
    assert run.target.restore_accounts(identifier) == [CONSUMER]
    assert identifier in status.message and CONSUMER in status.message
    # The product stays: aftercare owes nothing and deletes nothing, deletionPolicy Delete takes only the cluster.
    assert run_aftercare(run.context(), due_now=True) is None
    while delete_restored_cluster(run.context()) is not None:
        pass
    assert run.target.describe_cluster(TARGET) is None
    assert run.target.describe_snapshot(identifier)["Status"] == "available"


def test_every_step_survives_a_crash_without_a_second_snapshot(restore, keys, cloud):
    run = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER, "777788889999"]))
    status = run.run(crash_every_step=True)
    assert status.phase == Phase.SUCCEEDED, status.message
    assert [c.params["identifier"] for c in cloud.calls_to("create_cluster_snapshot")] == [INTERMEDIATE]
    assert [c.params["identifier"] for c in cloud.calls_to("copy_snapshot")] == ["orders-masked-20250301-1200"]
    assert [c.params["identifier"] for c in cloud.calls_to("delete_snapshot")] == [INTERMEDIATE]
    assert run.target.restore_accounts("orders-masked-20250301-1200") == [CONSUMER, "777788889999"]
    # each account shared once: the pass run again after a crash reads the restore attribute first
    assert sorted(c.params["account_id"] for c in cloud.calls_to("share_snapshot")) == sorted(
        [CONSUMER, "777788889999"])


def test_without_a_key_the_cluster_is_snapshotted_straight_into_the_identifier(restore, keys, cloud):
    run = restore(output())
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert [c.params["identifier"] for c in cloud.calls_to("create_cluster_snapshot")] == [
        "orders-masked-20250301-1200"]
    assert cloud.calls_to("copy_snapshot") == [] and cloud.calls_to("share_snapshot") == []
    assert status.output_snapshot.intermediate_identifier is None and status.output_snapshot.shared_with == []


def test_delete_cluster_after_deletes_the_cluster_and_keeps_the_snapshot(restore, keys, cloud):
    run = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER], deleteClusterAfter=True))
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.target.describe_cluster(TARGET) is None
    assert run.target.list_cluster_instances(TARGET) == []
    deleted = cloud.calls_to("delete_cluster")
    assert [c.params["identifier"] for c in deleted] == [TARGET]
    assert status.output_snapshot.cluster_deleted_at is not None
    assert run.target.describe_snapshot("orders-masked-20250301-1200")["Status"] == "available"
    assert "deleted after it" in status.message


def test_a_snapshot_of_that_name_made_by_someone_else_fails_preflight_untouched(restore, keys, cloud):
    run = restore(output(kmsKeyId="alias/share"))
    run.target.add_snapshot("orders-masked-20250301-1200", "someone")
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "OutputSnapshotTaken" and status.failure.phase == Phase.PREFLIGHT
    assert run.target.describe_snapshot("orders-masked-20250301-1200") is not None
    assert cloud.calls_to("delete_snapshot") == [] and cloud.calls_to("restore_cluster_from_snapshot") == []


def test_an_identifier_too_long_once_filled_fails_preflight(restore, keys):
    run = restore(output(identifier="o" * 55 + "-{date}"))
    status = run.run()
    assert status.failure.reason == "InvalidOutputSnapshotIdentifier" and status.failure.phase == Phase.PREFLIGHT
    assert "64 characters" in status.failure.message


def test_an_account_the_policy_does_not_allow_is_refused_before_any_aws_call(restore, keys, cloud):
    policy = {**PERMISSIVE_POLICY, "snapshotShareAccounts": ["4444*"]}
    run = restore(output(shareWith=[CONSUMER, "999999999999"]), policies={"team": policy})
    status = run.run()
    assert status.failure.reason == "NotAllowedByPolicy" and status.failure.phase == Phase.PENDING
    assert "shareWith account '999999999999' is not among its snapshotShareAccounts" in status.failure.message
    assert cloud.calls == []
    allowed = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER]), policies={"team": policy},
                      name="allowed", uid="0b5c9d1e-0000-4000-8000-000000000001")
    assert allowed.run().phase == Phase.SUCCEEDED


@pytest.mark.parametrize("changes", [
    output(kmsKeyId="alias/aws/rds", shareWith=[CONSUMER]),
    {**output(shareWith=[CONSUMER]), "target": {"kmsKeyId": "alias/aws/rds"}},
], ids=["output-key", "cluster-key"])
def test_the_aws_managed_key_is_refused_in_preflight_when_sharing(restore, keys, cloud, changes):
    status = restore(changes).run()
    assert status.failure.reason == "OutputSnapshotKeyNotShareable" and status.failure.phase == Phase.PREFLIGHT
    assert "customer-managed" in status.failure.message
    assert cloud.calls_to("restore_cluster_from_snapshot") == []


def test_a_key_that_does_not_exist_fails_preflight(restore, keys):
    status = restore(output(kmsKeyId="alias/nope")).run()
    assert status.failure.reason == "KmsKeyNotUsable" and "spec.output.snapshot.kmsKeyId" in status.failure.message


def test_a_key_for_an_unencrypted_cluster_fails_preflight(restore, keys):
    status = restore({**output(kmsKeyId="alias/share"), "target": {"kmsKeyId": None}}).run()
    assert status.failure.reason == "OutputSnapshotNotEncrypted"


def test_a_failure_after_the_snapshot_removes_the_partial_output(restore, keys, cloud):
    """AWS refusing the share (as it refuses aws/rds-encrypted snapshots) fails the restore, and the snapshot
    this restore made goes with it: there is no product of a failed restore."""
    run = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER]))
    run.target.fail("share_snapshot", aws_error("InvalidParameterValue", "cannot share", action="share_snapshot"))
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "OutputSnapshotNotShareable" and CONSUMER in status.failure.message
    assert run.target.describe_snapshot("orders-masked-20250301-1200") is None
    assert run.target.describe_snapshot(INTERMEDIATE) is None
    assert status.output_snapshot.deleted is True
    assert run.target.describe_cluster(TARGET) is not None  # a direct restore's cluster is kept for inspection


def test_a_cancel_before_success_removes_the_partial_output(restore, keys, cloud):
    from aurora_restore.steps.cleanup import cancel

    run = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER]))
    run.run_until(Phase.SNAPSHOTTING_OUTPUT)
    for _ in range(3):  # the intermediate is taken
        run.step()
    assert run.target.describe_snapshot(INTERMEDIATE) is not None
    for _ in range(10):  # the fake settles a snapshot by observations: a creating one is deleted a pass later
        outcome = cancel(run.context())
        if isinstance(outcome, Advance):
            break
    assert outcome.to == Phase.CANCELLED
    assert run.target.describe_snapshot(INTERMEDIATE) is None
    assert run.target.describe_snapshot("orders-masked-20250301-1200") is None
    # Verifying passed before SnapshottingOutput: like a cancel in Publishing, the direct restore's cluster stays.
    assert run.target.describe_cluster(TARGET) is not None


def test_a_dry_run_plans_the_snapshot_copy_share_and_deletion(restore, keys):
    run = restore({**output(kmsKeyId="alias/share", shareWith=[CONSUMER], deleteClusterAfter=True),
                   "dryRun": True})
    status = run.run()
    assert status.phase == Phase.PLANNED, status.message
    actions = [(step.phase, step.action) for step in status.plan.steps]
    snapshotting = [a for p, a in actions if p == Phase.SNAPSHOTTING_OUTPUT]
    assert snapshotting == ["CreateDBClusterSnapshot", "CopyDBClusterSnapshot", "DeleteDBClusterSnapshot",
                            "ModifyDBClusterSnapshotAttribute"]
    assert (Phase.CLEANING_UP, "DeleteDBCluster") in actions


def test_delete_cluster_after_is_refused_with_replace_and_connection_secrets():
    with pytest.raises(ValueError, match="deleteClusterAfter"):
        AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {**output(deleteClusterAfter=True),
                                                            "existingTarget": {"policy": "Replace"}}))


def test_latest_considers_available_output_snapshots_but_not_their_intermediates(restore, source):
    """An output snapshot is made to be restored from: `latest` picks it without includeOperatorSnapshots. Its
    intermediate and one still being made (deleted if its restore fails) stay skipped."""
    other = {RESTORE_UID_TAG: "another"}
    later = datetime(2025, 3, 1, 4, 0, tzinfo=timezone.utc)
    source.add_snapshot("prod-masked-20250301", "prod", created=later, tags={**other, SNAPSHOT_ROLE_TAG: "output"})
    source.add_snapshot("aurora-restore-another-output", "prod", created=later.replace(hour=5),
                        tags={**other, SNAPSHOT_ROLE_TAG: "output-intermediate"})
    source.add_snapshot("prod-masked-20250302", "prod", created=None, status="creating",
                        tags={**other, SNAPSHOT_ROLE_TAG: "output"})
    run = restore({"source": {"snapshotIdentifier": None, "latest": {"clusterIdentifier": "prod"}}})
    run.run_until(Phase.PREFLIGHT)
    assert run.status.snapshot.identifier == "prod-masked-20250301"


def test_a_policy_narrowed_before_the_share_stops_it_and_removes_the_snapshot(restore, keys, cloud):
    run = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER]))
    run.run_until(Phase.SNAPSHOTTING_OUTPUT)
    run.policies = {"narrowed": {**PERMISSIVE_POLICY, "snapshotShareAccounts": ["9999*"]}}
    status = run.run()
    assert status.failure.reason == "NotAllowedByPolicy" and status.failure.phase == Phase.SNAPSHOTTING_OUTPUT
    assert f"shareWith account '{CONSUMER}'" in status.failure.message
    assert cloud.calls_to("share_snapshot") == []
    assert run.target.describe_snapshot("orders-masked-20250301-1200") is None


def test_delete_cluster_after_leaves_a_cluster_of_that_name_it_does_not_own_and_does_not_claim_it(
        restore, keys, cloud):
    run = restore(output(deleteClusterAfter=True))
    run.run_until(Phase.CLEANING_UP)
    run.target.clusters[TARGET]["TagList"] = [{"Key": RESTORE_UID_TAG, "Value": "someone-else"}]
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.target.describe_cluster(TARGET) is not None and cloud.calls_to("delete_cluster") == []
    assert status.output_snapshot.cluster_deleted_at is None and "deleted after it" not in status.message


def test_the_succeeded_notification_names_the_snapshot_and_a_failed_one_does_not(restore, keys):
    run = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER]))
    status = run.run()
    payload = build_payload("nightly", "team-a", UID, run.spec, status, Phase.SUCCEEDED, run.now)
    assert payload["outputSnapshot"] == {"identifier": "orders-masked-20250301-1200",
                                         "arn": status.output_snapshot.arn, "sharedWith": [CONSUMER]}
    failed = build_payload("nightly", "team-a", UID, run.spec, status, Phase.FAILED, run.now)
    assert failed["outputSnapshot"] is None


def test_a_point_in_time_source_under_the_aws_managed_key_is_refused_in_preflight_when_sharing(
        restore, keys, source, cloud):
    """Without target.kmsKeyId the restored cluster keeps the source cluster's key: aws/rds cannot be shared."""
    source.add_cluster("prod", instances=1)
    source.clusters["prod"].update(StorageEncrypted=True, KmsKeyId=cloud.kms(SOURCE_REGION).aws_managed_key_arn)
    status = restore({**output(shareWith=[CONSUMER]), "target": {"kmsKeyId": None}, "source": {
        "snapshotIdentifier": None, "pointInTime": {"clusterIdentifier": "prod", "useLatestRestorableTime": True}}}
    ).run()
    assert status.failure.reason == "OutputSnapshotKeyNotShareable" and status.failure.phase == Phase.PREFLIGHT
    assert cloud.calls_to("restore_cluster_to_point_in_time") == []


def test_a_replace_snapshots_the_new_cluster_under_its_temporary_name_before_the_swap(restore, keys, cloud):
    run = restore({**output(shareWith=[CONSUMER]), "existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.phases.index(Phase.SWAPPING_TARGET) == run.phases.index(Phase.SNAPSHOTTING_OUTPUT) + 1
    [created] = cloud.calls_to("create_cluster_snapshot")
    assert created.params["cluster_identifier"] == f"{TARGET}-restore-7d3f9a2e"
    assert run.target.describe_snapshot("orders-masked-20250301-1200")["Status"] == "available"


def test_a_failure_after_the_output_was_finished_keeps_it(restore, keys, cloud):
    """AWS refuses the deleteClusterAfter teardown in CleaningUp, after the snapshot was taken, copied and shared:
    the restore fails, but the finished snapshot is the product (consumers may be restoring from it) and stays."""
    run = restore(output(kmsKeyId="alias/share", shareWith=[CONSUMER], deleteClusterAfter=True))
    run.target.fail("delete_cluster", aws_error("InvalidParameterCombination", "refused", action="delete_cluster"),
                    times=100)
    status = run.run()
    assert status.phase == Phase.FAILED and status.failure.phase == Phase.CLEANING_UP, status.message
    assert status.output_snapshot.available_at is not None and status.output_snapshot.deleted is None
    assert run.target.describe_snapshot("orders-masked-20250301-1200") is not None
    assert run.target.describe_snapshot(INTERMEDIATE) is None


def test_a_shared_output_snapshot_whose_status_write_was_lost_is_kept_after_a_timeout(restore, keys, cloud):
    """Killed after the share (the data has left the account) and before availableAt was written, then restarted
    past spec.timeout: the snapshot AWS shows available and shared with every consumer is the product, kept."""
    from aurora_restore.machine import apply_outcome, run_step

    run = restore({**output(kmsKeyId="alias/share", shareWith=[CONSUMER]), "timeout": "2h"})
    run.run_until(Phase.SNAPSHOTTING_OUTPUT)
    for _ in range(30):  # until the pass that shares, whose outcome is lost
        outcome = run_step(run.context())
        if cloud.calls_to("share_snapshot"):
            break
        run.status = apply_outcome(run.status, outcome, run.now, 1, 20)
        run.now += timedelta(seconds=30)
    else:
        raise AssertionError("never shared")
    assert run.phase == Phase.SNAPSHOTTING_OUTPUT and run.status.output_snapshot.available_at is None
    run.now += timedelta(hours=3)
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "Timeout")
    assert run.target.describe_snapshot("orders-masked-20250301-1200")["Status"] == "available"
    assert [c.params["identifier"] for c in cloud.calls_to("delete_snapshot")] == [
        status.output_snapshot.intermediate_identifier]


def test_an_output_snapshot_not_yet_shared_with_every_consumer_still_goes_after_a_failure(restore, keys, cloud):
    run = restore({**output(kmsKeyId="alias/share", shareWith=[CONSUMER, "555566667777"]), "timeout": "2h"})
    run.run_until(Phase.SNAPSHOTTING_OUTPUT)
    run.target.fail("share_snapshot", aws_error("InternalFailure", "boom", action="share_snapshot"), times=1000)
    for _ in range(30):
        if run.target.snapshots.get("orders-masked-20250301-1200", {}).get("Status") == "available":
            break
        run.step()
    run.now += timedelta(hours=3)
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "Timeout")
    assert run.target.describe_snapshot("orders-masked-20250301-1200") is None
