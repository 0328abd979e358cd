"""Cross-account restores: the source account shares the snapshot (an automated one through a manual copy of
its own), the target account copies it with its own KMS key and restores from the copy; the share, the
intermediate copy and the copy are removed at the end, and after a failure."""

from collections import Counter

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.steps.context import RESTORE_UID_TAG

from .conftest import KMS_KEY, OTHER_REGION, SOURCE_ACCOUNT, SOURCE_REGION, SOURCE_ROLE, TARGET, UID
from .fake_rds import ACCOUNT_ID, aws_error

MANUAL = "prod-manual-2025-03-01"
AUTOMATED = "rds:prod-2025-03-01-03-00"
COPY_ID = f"aurora-restore-{UID}"
SHARE_ID = f"aurora-restore-{UID}-share"
STAGE_ID = f"aurora-restore-{UID}-stage"
# A customer-managed key of the target account in SOURCE_REGION: what the target account copies the share with.
TARGET_KEY = f"arn:aws:kms:{SOURCE_REGION}:{ACCOUNT_ID}:key/2222bbbb-3333-cccc-4444-dddd5555eeee"


def from_source_account(snapshot: str = MANUAL, **copy) -> dict:
    return {
        "source": {"snapshotIdentifier": snapshot, "accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE},
        "copy": {"kmsKeyId": TARGET_KEY, **copy},
    }


@pytest.fixture
def foreign(cloud):
    """The source account's SOURCE_REGION: a manual and an automated snapshot of "prod", both encrypted with a
    customer-managed key of that account."""
    rds = cloud.account(SOURCE_ACCOUNT).rds(SOURCE_REGION)
    rds.add_snapshot(MANUAL, encrypted=True)
    rds.add_snapshot(AUTOMATED, encrypted=True, snapshot_type="automated")
    cloud.kms(SOURCE_REGION).add_key(TARGET_KEY)
    return rds


@pytest.fixture
def cross_account(restore):
    def build(changes: dict | None = None, **fields):
        return restore(changes or from_source_account(), **fields)

    return build


def in_account(calls, account: str) -> list:
    return [c for c in calls if c.account == account]


def ok(calls) -> list:
    return [c for c in calls if c.error is None]


# --- a manual snapshot -------------------------------------------------------------------------------------------


def test_a_manual_snapshot_is_shared_copied_by_the_target_account_restored_then_unshared(
    cross_account, foreign, cloud
):
    run = cross_account()
    status = run.run()

    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.phases == [
        Phase.PENDING,
        Phase.RESOLVING_SNAPSHOT,
        Phase.PREFLIGHT,
        Phase.SHARING_SNAPSHOT,
        Phase.COPYING_SNAPSHOT,
        Phase.RESTORING_CLUSTER,
        Phase.CREATING_INSTANCES,
        Phase.CONFIGURING_ACCESS,
        Phase.VERIFYING,
        Phase.PUBLISHING,
        Phase.CLEANING_UP,
        Phase.SUCCEEDED,
    ]
    arn = foreign.snapshots[MANUAL]["DBClusterSnapshotArn"]
    assert f":{SOURCE_ACCOUNT}:" in arn

    [share] = cloud.calls_to("share_snapshot")
    assert (share.account, share.region, share.params) == (
        SOURCE_ACCOUNT, SOURCE_REGION, {"identifier": MANUAL, "account_id": ACCOUNT_ID}
    )
    [copy] = cloud.calls_to("copy_snapshot")
    assert (copy.account, copy.region) == (ACCOUNT_ID, SOURCE_REGION)
    assert (copy.params["source_arn"], copy.params["identifier"]) == (arn, COPY_ID)
    assert copy.params["kms_key_id"] == TARGET_KEY
    [restored] = cloud.calls_to("restore_cluster_from_snapshot")
    assert (restored.account, restored.params["SnapshotIdentifier"]) == (ACCOUNT_ID, COPY_ID)
    [unshare] = cloud.calls_to("unshare_snapshot")
    assert (unshare.account, unshare.params) == (SOURCE_ACCOUNT, {"identifier": MANUAL, "account_id": ACCOUNT_ID})
    assert cloud.calls.index(share) < cloud.calls.index(copy) < cloud.calls.index(restored) < cloud.calls.index(unshare)

    assert foreign.shared_with[MANUAL] == []  # restore_accounts is empty again
    assert foreign.snapshots[MANUAL]["Status"] == "available"  # the source snapshot stays
    assert COPY_ID not in run.target.snapshots
    assert TARGET in run.target.clusters and TARGET not in foreign.clusters
    assert (status.shared_snapshot.identifier, status.shared_snapshot.shared_with) == (MANUAL, ACCOUNT_ID)
    assert status.shared_snapshot.unshared is True and status.shared_snapshot.intermediate is False
    assert status.copied_snapshot.deleted is True
    # The source account made no change but the share and its removal; the copy and restore are the target's.
    assert Counter(c.action for c in in_account(cloud.mutations, SOURCE_ACCOUNT)) == Counter(
        {"share_snapshot": 1, "unshare_snapshot": 1}
    )


def test_the_source_key_is_checked_with_the_source_identity_and_the_copy_key_with_the_target(
    cross_account, foreign, cloud
):
    run = cross_account()
    run.run_until(Phase.SHARING_SNAPSHOT)
    keys = {(c.account, c.params["key_id"]) for c in cloud.calls_to("describe_key")}
    assert keys == {(SOURCE_ACCOUNT, foreign.snapshots[MANUAL]["KmsKeyId"]), (ACCOUNT_ID, TARGET_KEY)}


def test_the_target_account_is_asked_of_the_target_identity_once(cross_account, foreign, cloud):
    assert cross_account().run().phase == Phase.SUCCEEDED
    assert [c.account for c in cloud.calls_to("get_caller_identity")] == [ACCOUNT_ID]


def test_an_encrypted_share_without_a_copy_key_fails_at_preflight(cross_account, foreign, cloud):
    status = cross_account(from_source_account(kmsKeyId=None)).run()
    assert (status.failure.reason, status.failure.phase) == ("KmsKeyRequired", Phase.PREFLIGHT)
    assert "spec.copy.kmsKeyId is required" in status.failure.message
    assert cloud.mutations == []


# --- an automated snapshot ---------------------------------------------------------------------------------------


def test_an_automated_snapshot_is_shared_through_a_manual_copy_that_is_deleted_at_the_end(
    cross_account, foreign, cloud
):
    run = cross_account(from_source_account(AUTOMATED))
    status = run.run()

    assert status.phase == Phase.SUCCEEDED, status.message
    automated = foreign.snapshots[AUTOMATED]
    copies = cloud.calls_to("copy_snapshot")
    assert [(c.account, c.params["identifier"]) for c in copies] == [(SOURCE_ACCOUNT, SHARE_ID), (ACCOUNT_ID, COPY_ID)]
    intermediate, final = copies
    assert intermediate.params["source_arn"] == automated["DBClusterSnapshotArn"]
    assert intermediate.params["kms_key_id"] == automated["KmsKeyId"]  # re-encrypted with nothing new
    assert intermediate.params["tags"][RESTORE_UID_TAG] == UID
    shared_arn = f"arn:aws:rds:{SOURCE_REGION}:{SOURCE_ACCOUNT}:cluster-snapshot:{SHARE_ID}"
    assert (final.params["source_arn"], final.params["kms_key_id"]) == (shared_arn, TARGET_KEY)

    [share] = cloud.calls_to("share_snapshot")
    assert share.params == {"identifier": SHARE_ID, "account_id": ACCOUNT_ID}
    deleted = [(c.account, c.params["identifier"]) for c in cloud.calls_to("delete_snapshot")]
    assert sorted(deleted) == sorted([(ACCOUNT_ID, COPY_ID), (SOURCE_ACCOUNT, SHARE_ID)])
    assert SHARE_ID not in foreign.snapshots and COPY_ID not in run.target.snapshots
    assert foreign.snapshots[AUTOMATED]["Status"] == "available"
    assert (status.shared_snapshot.identifier, status.shared_snapshot.intermediate) == (SHARE_ID, True)
    assert status.shared_snapshot.unshared is True and status.shared_snapshot.deleted is True


def test_the_automated_snapshot_itself_is_never_shared(cross_account, foreign, cloud):
    cross_account(from_source_account(AUTOMATED)).run()
    assert all(c.params["identifier"] != AUTOMATED for c in cloud.calls_to("share_snapshot"))
    assert all(c.error is None for c in cloud.mutations)


def test_an_intermediate_name_taken_by_someone_else_fails_and_is_left_alone(cross_account, foreign, cloud):
    foreign.add_snapshot(SHARE_ID, tags={RESTORE_UID_TAG: "another-restore"})
    status = cross_account(from_source_account(AUTOMATED)).run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "ShareNameTaken")
    assert SHARE_ID in foreign.snapshots
    assert cloud.mutations == []


# --- keys AWS will not share ---------------------------------------------------------------------------------------


def test_a_snapshot_with_the_aws_managed_key_fails_at_preflight_without_sharing(cross_account, cloud):
    source_account = cloud.account(SOURCE_ACCOUNT)
    foreign = source_account.rds(SOURCE_REGION)
    foreign.add_snapshot(MANUAL, encrypted=True, kms_key_id=source_account.kms(SOURCE_REGION).aws_managed_key_arn)
    cloud.kms(SOURCE_REGION).add_key(TARGET_KEY)
    status = cross_account().run()

    assert status.phase == Phase.FAILED
    assert (status.failure.reason, status.failure.phase) == ("SnapshotKeyNotShareable", Phase.PREFLIGHT)
    assert f"snapshot {MANUAL!r} is encrypted with the AWS-managed key" in status.failure.message
    assert "customer-managed KMS key" in status.failure.message
    assert not cloud.calls_to("share_snapshot")
    assert cloud.mutations == []
    assert foreign.shared_with == {}


def test_an_unencrypted_snapshot_needs_no_key_to_be_shared_and_copied(cross_account, cloud):
    foreign = cloud.account(SOURCE_ACCOUNT).rds(SOURCE_REGION)
    foreign.add_snapshot(MANUAL)
    status = cross_account(from_source_account(kmsKeyId=None)).run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert cloud.calls_to("copy_snapshot")[0].params["kms_key_id"] is None
    assert not cloud.calls_to("describe_key")


# --- failures and crashes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("snapshot", [MANUAL, AUTOMATED], ids=["manual", "automated"])
def test_a_failure_after_sharing_removes_the_share_the_intermediate_and_the_copy(
    cross_account, foreign, cloud, snapshot
):
    run = cross_account(from_source_account(snapshot))
    run.target.fail("restore_cluster_from_snapshot", aws_error("StorageQuotaExceeded", "quota", region=SOURCE_REGION))
    status = run.run()

    assert (status.phase, status.failure.reason, status.failure.phase) == (
        Phase.FAILED, "QuotaExceeded", Phase.RESTORING_CLUSTER
    )
    shared = SHARE_ID if snapshot == AUTOMATED else MANUAL
    # The user's manual snapshot is unshared; the intermediate copy is deleted instead (which ends its share).
    unshared = [c.params["identifier"] for c in ok(cloud.calls_to("unshare_snapshot"))]
    assert unshared == ([] if snapshot == AUTOMATED else [MANUAL])
    assert foreign.shared_with.get(shared, []) == []
    assert COPY_ID not in run.target.snapshots
    assert status.shared_snapshot.unshared is True and status.copied_snapshot.deleted is True
    if snapshot == AUTOMATED:
        assert SHARE_ID not in foreign.snapshots and status.shared_snapshot.deleted is True
    assert snapshot.lower() in foreign.snapshots  # the source snapshot itself is never touched


def test_a_failure_before_sharing_has_nothing_to_remove(cross_account, foreign, cloud):
    run = cross_account(from_source_account(AUTOMATED))
    foreign.fail("copy_snapshot", aws_error("KMSKeyNotAccessibleFault", "The key is disabled.", region=SOURCE_REGION))
    status = run.run()
    assert (status.phase, status.failure.phase) == (Phase.FAILED, Phase.SHARING_SNAPSHOT)
    assert status.failure.reason == "KMSKeyNotAccessibleFault"
    assert status.shared_snapshot is None
    assert not cloud.calls_to("unshare_snapshot") and not cloud.calls_to("share_snapshot")


@pytest.mark.parametrize("snapshot", [MANUAL, AUTOMATED], ids=["manual", "automated"])
def test_a_crash_during_sharing_makes_no_duplicates(cross_account, foreign, cloud, snapshot):
    run = cross_account(from_source_account(snapshot))
    run.run_until(Phase.SHARING_SNAPSHOT)
    while run.phase == Phase.SHARING_SNAPSHOT:
        run.crash_then_step()

    shared = SHARE_ID if snapshot == AUTOMATED else MANUAL
    assert foreign.shared_with[shared] == [ACCOUNT_ID]
    assert len(ok(cloud.calls_to("share_snapshot"))) == 1
    expected_copies = 1 if snapshot == AUTOMATED else 0
    assert len(ok(cloud.calls_to("copy_snapshot"))) == expected_copies
    assert all(c.error is None for c in cloud.mutations)
    assert run.status.shared_snapshot.identifier == shared

    assert run.run(crash_every_step=True).phase == Phase.SUCCEEDED
    assert foreign.shared_with.get(shared, []) == []
    assert all(c.error is None for c in cloud.mutations)


def test_a_crash_after_every_step_of_an_automated_cross_account_restore_creates_no_duplicates(
    cross_account, foreign, cloud
):
    run = cross_account(from_source_account(AUTOMATED))
    assert run.run(crash_every_step=True).phase == Phase.SUCCEEDED, run.status.message
    made = Counter(c.action for c in ok(cloud.mutations))
    # The intermediate copy is deleted, not unshared: deleting it ends the share.
    assert "unshare_snapshot" not in made
    assert made == Counter(
        {
            "copy_snapshot": 2,
            "share_snapshot": 1,
            "restore_cluster_from_snapshot": 1,
            "create_instance": 2,
            "delete_snapshot": 2,
        }
    )
    assert [c for c in cloud.mutations if c.error] == []
    assert sorted(foreign.snapshots) == sorted([MANUAL, AUTOMATED])


# --- another region too --------------------------------------------------------------------------------------------


def test_another_account_and_region_copies_the_share_within_its_region_first(cross_account, foreign, cloud):
    run = cross_account(
        {
            **from_source_account(kmsKeyId=KMS_KEY, sourceRegionKmsKeyId=TARGET_KEY),
            "target": {"region": OTHER_REGION},
        }
    )
    status = run.run()

    assert status.phase == Phase.SUCCEEDED, status.message
    copies = cloud.calls_to("copy_snapshot")
    assert [(c.account, c.region, c.params["identifier"], c.params["kms_key_id"]) for c in copies] == [
        (ACCOUNT_ID, SOURCE_REGION, STAGE_ID, TARGET_KEY),
        (ACCOUNT_ID, OTHER_REGION, COPY_ID, KMS_KEY),
    ]
    staged, final = copies
    assert staged.params["source_arn"] == foreign.snapshots[MANUAL]["DBClusterSnapshotArn"]
    assert final.params["source_arn"] == run.staging.arn("cluster-snapshot", STAGE_ID)
    assert cloud.calls_to("restore_cluster_from_snapshot")[0].region == OTHER_REGION
    deleted = sorted((c.region, c.params["identifier"]) for c in cloud.calls_to("delete_snapshot"))
    assert deleted == sorted([(SOURCE_REGION, STAGE_ID), (OTHER_REGION, COPY_ID)])
    assert foreign.shared_with[MANUAL] == []
    assert status.staged_snapshot.deleted is True and status.copied_snapshot.deleted is True


def test_without_a_source_region_key_the_intermediate_copy_uses_the_target_accounts_aws_managed_key(
    cross_account, foreign, cloud
):
    changes = {**from_source_account(kmsKeyId=KMS_KEY), "target": {"region": OTHER_REGION}}
    planned = cross_account({**changes, "dryRun": True}).run()
    assert planned.phase == Phase.PLANNED, planned.message
    staged_plan = [s.parameters for s in planned.plan.steps if s.action == "CopyDBClusterSnapshot"][0]
    assert staged_plan["KmsKeyId"] == "alias/aws/rds"
    [check] = [c for c in planned.preflight if c.name == "spec.copy.sourceRegionKmsKeyId"]
    assert check.passed and "AWS-managed key alias/aws/rds" in check.message and "never shared" in check.message

    status = cross_account(changes, uid="0c0c0c0c-1111-4222-8333-444455556666", name="real").run()
    assert status.phase == Phase.SUCCEEDED, status.message
    copies = cloud.calls_to("copy_snapshot")
    assert [(c.region, c.params["kms_key_id"]) for c in copies] == [
        (SOURCE_REGION, "alias/aws/rds"), (OTHER_REGION, KMS_KEY)]


def test_an_unencrypted_shared_snapshot_looks_up_no_key_in_the_source_region(cross_account, foreign, cloud):
    """Its copies take no key, and describing alias/aws/rds would make AWS create it: Preflight leaves it alone."""
    foreign.add_snapshot("plain", encrypted=False)
    changes = {**from_source_account("plain", kmsKeyId=KMS_KEY), "target": {"region": OTHER_REGION}, "dryRun": True}
    planned = cross_account(changes).run()
    assert planned.phase == Phase.PLANNED, planned.message
    [check] = [c for c in planned.preflight if c.name == "spec.copy.sourceRegionKmsKeyId"]
    assert check.passed and "takes no key" in check.message
    looked_up = [(c.region, c.params["key_id"]) for c in cloud.calls_to("describe_key")]
    assert (SOURCE_REGION, "alias/aws/rds") not in looked_up and (OTHER_REGION, KMS_KEY) in looked_up


# --- shares the restore did not make ---------------------------------------------------------------------------


def test_a_share_that_existed_before_the_restore_is_kept(cross_account, foreign, cloud):
    foreign.share_snapshot(MANUAL, ACCOUNT_ID)  # the owner shared it with the target account long ago
    cloud.calls.clear()
    status = cross_account().run()
    assert status.phase == Phase.SUCCEEDED
    assert not cloud.calls_to("share_snapshot")
    assert foreign.shared_with[MANUAL] == [ACCOUNT_ID]


def test_a_timeout_while_the_intermediate_copy_is_made_cancels_it(cross_account, foreign, cloud):
    foreign.ticks_by_kind["copy"] = 1000
    status = cross_account({**from_source_account(AUTOMATED), "timeout": "5m"}).run()
    assert (status.failure.reason, status.failure.phase) == ("Timeout", Phase.SHARING_SNAPSHOT)
    assert SHARE_ID not in foreign.snapshots
    assert [c for c in cloud.mutations if c.error] == []


# --- dry run -----------------------------------------------------------------------------------------------------


def test_dry_run_of_a_manual_snapshot_plans_share_copy_restore_and_unshare_without_acting(
    cross_account, foreign, cloud
):
    status = cross_account({**from_source_account(), "dryRun": True}).run()
    assert status.phase == Phase.PLANNED, status.message
    arn = foreign.snapshots[MANUAL]["DBClusterSnapshotArn"]
    steps = [(step.phase, step.action, step.parameters) for step in status.plan.steps]
    assert steps[0] == (
        Phase.SHARING_SNAPSHOT,
        "ModifyDBClusterSnapshotAttribute",
        {"AttributeName": "restore", "ValuesToAdd": "<target account>"},
    )
    assert steps[1] == (
        Phase.COPYING_SNAPSHOT,
        "CopyDBClusterSnapshot",
        {
            "SourceDBClusterSnapshotIdentifier": arn,
            "TargetDBClusterSnapshotIdentifier": COPY_ID,
            "Region": SOURCE_REGION,
            "KmsKeyId": TARGET_KEY,
        },
    )
    assert [(phase, action) for phase, action, _ in steps[2:]] == [
        (Phase.RESTORING_CLUSTER, "RestoreDBClusterFromSnapshot"),
        (Phase.CREATING_INSTANCES, "CreateDBInstance"),
        (Phase.CREATING_INSTANCES, "CreateDBInstance"),
        (Phase.CLEANING_UP, "DeleteDBClusterSnapshot"),
        (Phase.CLEANING_UP, "ModifyDBClusterSnapshotAttribute"),
    ]
    assert cloud.mutations == []
    assert foreign.shared_with == {}


def test_dry_run_of_an_automated_snapshot_plans_the_copy_from_the_intermediate_and_its_deletion(
    cross_account, foreign, cloud
):
    status = cross_account({**from_source_account(AUTOMATED), "dryRun": True}).run()
    assert status.phase == Phase.PLANNED
    steps = [(step.phase, step.action, step.parameters) for step in status.plan.steps]
    [copy] = [p for phase, action, p in steps if phase == Phase.COPYING_SNAPSHOT]
    assert copy["SourceDBClusterSnapshotIdentifier"].endswith(f":cluster-snapshot:{SHARE_ID}")
    cleanup = [(action, p) for phase, action, p in steps if phase == Phase.CLEANING_UP]
    assert ("DeleteDBClusterSnapshot", {"DBClusterSnapshotIdentifier": SHARE_ID}) in cleanup


def test_dry_run_for_another_account_and_region_plans_both_copies_and_both_deletions(cross_account, foreign, cloud):
    changes = {**from_source_account(kmsKeyId=KMS_KEY, sourceRegionKmsKeyId=TARGET_KEY), "dryRun": True,
               "target": {"region": OTHER_REGION}}
    status = cross_account(changes).run()
    assert status.phase == Phase.PLANNED
    copies = [s.parameters for s in status.plan.steps if s.action == "CopyDBClusterSnapshot"]
    assert [c["TargetDBClusterSnapshotIdentifier"] for c in copies] == [STAGE_ID, COPY_ID]
    assert copies[0]["KmsKeyId"] == TARGET_KEY
    assert copies[1]["SourceDBClusterSnapshotIdentifier"].endswith(f":cluster-snapshot:{STAGE_ID}")
    deleted = [s.parameters["DBClusterSnapshotIdentifier"] for s in status.plan.steps
               if s.action == "DeleteDBClusterSnapshot"]
    assert sorted(deleted) == sorted([STAGE_ID, COPY_ID])
    assert cloud.mutations == []


# --- one share, several restores ----------------------------------------------------------------------------------


def second_restore(cross_account, counts, target="staging-two"):
    run = cross_account({**from_source_account(), "target": {"clusterIdentifier": target}},
                        uid="0b0b0b0b-1111-4222-8333-444455556666", name="second", share_counts=counts)
    return run


def test_two_restores_of_one_shared_snapshot_keep_the_share_until_the_last_one_is_done(cross_account, foreign):
    counts: dict = {}
    first = cross_account(share_counts=counts)
    second = second_restore(cross_account, counts)
    first.run_until(Phase.COPYING_SNAPSHOT)
    second.run_until(Phase.COPYING_SNAPSHOT)
    assert first.run().phase == Phase.SUCCEEDED
    assert foreign.shared_with[MANUAL] == [ACCOUNT_ID]  # the second restore still copies from it
    assert first.status.shared_snapshot.unshared is False
    assert second.run().phase == Phase.SUCCEEDED, second.status.message
    assert foreign.shared_with.get(MANUAL, []) == []
    assert second.status.shared_snapshot.unshared is True
    assert len(ok(first.cloud.calls_to("share_snapshot"))) == 1  # shared once, by the first


def test_a_cancelled_restore_leaves_the_share_to_the_one_still_running(cross_account, foreign):
    from .test_names_and_ownership import cancel

    counts: dict = {}
    cancelled = cross_account(share_counts=counts)
    running = second_restore(cross_account, counts)
    cancelled.run_until(Phase.COPYING_SNAPSHOT)
    running.run_until(Phase.COPYING_SNAPSHOT)
    cancel(cancelled)
    assert foreign.shared_with[MANUAL] == [ACCOUNT_ID]
    assert running.run().phase == Phase.SUCCEEDED, running.status.message
    assert foreign.shared_with.get(MANUAL, []) == []


def test_a_share_the_owner_made_is_never_removed_whoever_finishes_last(cross_account, foreign):
    foreign.share_snapshot(MANUAL, ACCOUNT_ID)
    counts: dict = {}
    first, second = cross_account(share_counts=counts), second_restore(cross_account, counts)
    first.run_until(Phase.COPYING_SNAPSHOT)
    second.run_until(Phase.COPYING_SNAPSHOT)
    assert first.run().phase == second.run().phase == Phase.SUCCEEDED
    assert foreign.shared_with[MANUAL] == [ACCOUNT_ID]
    assert not [c for c in first.cloud.calls_to("unshare_snapshot") if c.error is None]


def test_a_crash_while_removing_the_share_is_finished_by_the_next_pass(cross_account, foreign):
    counts: dict = {}
    run = cross_account(share_counts=counts)
    run.run_until(Phase.CLEANING_UP)
    foreign.fail("unshare_snapshot", aws_error("InternalFailure", "boom", action="unshare_snapshot",
                                               region=SOURCE_REGION))
    run.step()  # marked as being removed, then the unshare call failed
    assert run.phase == Phase.CLEANING_UP and foreign.shared_with[MANUAL] == [ACCOUNT_ID]
    blocked = second_restore(cross_account, counts)
    blocked.run_until(Phase.SHARING_SNAPSHOT)
    outcome = blocked.step()
    assert outcome.backoff and "removing the share" in outcome.message  # never joins a share going away
    assert run.run().phase == Phase.SUCCEEDED
    assert foreign.shared_with.get(MANUAL, []) == []
    assert blocked.run().phase == Phase.SUCCEEDED, blocked.status.message  # shares it again, removes it again
    assert foreign.shared_with.get(MANUAL, []) == []


def test_a_holder_whose_restore_is_gone_no_longer_keeps_the_share(cross_account, foreign):
    """A restore deleted with skip-cleanup never leaves the count: it stops counting once it no longer exists."""
    from .fake_rds import InMemoryShareGrant

    counts: dict = {}
    gone = cross_account(share_counts=counts)
    gone.run_until(Phase.COPYING_SNAPSHOT)  # joined and shared; then it is deleted without cleanup
    survivor = second_restore(cross_account, counts)
    survivor.run_until(Phase.COPYING_SNAPSHOT)
    grant = InMemoryShareGrant(counts, foreign.snapshots[MANUAL]["DBClusterSnapshotArn"], ACCOUNT_ID,
                               alive=lambda holder: holder.endswith(survivor.uid))
    assert grant.leave(f"team-a/second/{survivor.uid}", lambda: foreign.unshare_snapshot(MANUAL, ACCOUNT_ID))
    assert foreign.shared_with.get(MANUAL, []) == []


def test_delete_after_restore_false_keeps_the_share_for_good(cross_account, foreign):
    counts: dict = {}
    first = cross_account({**from_source_account(deleteAfterRestore=False)}, share_counts=counts)
    assert first.run().phase == Phase.SUCCEEDED
    second = second_restore(cross_account, counts)
    assert second.run().phase == Phase.SUCCEEDED
    assert foreign.shared_with[MANUAL] == [ACCOUNT_ID]  # kept: the first restore asked for it to stay


def test_a_share_whose_last_holder_vanished_mid_removal_is_still_the_operators_to_remove():
    """The last holder marked the removal, then its AuroraRestore was deleted (skip-cleanup) before it unshared:
    the next restore finds the share still there, must not count it as the owner's, and removes it at its end."""
    from .fake_rds import InMemoryShareGrant

    counts: dict = {}
    alive = {"team-a/first/1"}
    grant = InMemoryShareGrant(counts, "arn:aws:rds:eu-west-1:210987654321:cluster-snapshot:prod", ACCOUNT_ID,
                               alive=lambda holder: holder in alive)
    shared = {"now": False}
    assert grant.join("team-a/first/1", lambda: shared["now"]) is True  # the operator adds the share
    shared["now"] = True

    def vanish() -> None:  # the holder's restore disappears between the marker and the unshare call
        alive.clear()
        raise RuntimeError("the operator stopped")

    with pytest.raises(RuntimeError):
        grant.leave("team-a/first/1", vanish)
    alive.add("team-a/second/2")
    assert grant.join("team-a/second/2", lambda: shared["now"]) is True  # still the operator's share
    assert grant.leave("team-a/second/2", lambda: shared.update(now=False)) is True
    assert shared["now"] is False
