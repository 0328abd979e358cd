"""Generated names within RDS rules, `latest` never picking the operator's own snapshots, a restore onto its own
source, the swap's preflight checks, and cancelling (the step the deletion handler runs)."""

import pytest

from aurora_restore.api.models import CancellationStatus
from aurora_restore.api.phase import Phase
from aurora_restore.aws.rds import tags_of
from aurora_restore.machine import apply_outcome, run_step
from aurora_restore.steps import names
from aurora_restore.steps.context import RESTORE_NAME_TAG, RESTORE_UID_TAG, SNAPSHOT_ROLE_TAG
from aurora_restore.steps.outcomes import Advance

from .conftest import REPLACEABLE, KMS_KEY, OTHER_REGION, POLL, SOURCE_REGION, TARGET, UID

LONGEST_TARGET = "a" + "b-" * 30 + "cd"  # 63 characters, legal, with hyphens where a cut may fall
UIDS = [UID, "00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"]


@pytest.mark.parametrize("uid", UIDS)
@pytest.mark.parametrize("target", [LONGEST_TARGET, "a" * 63, "x", "ab-" * 20 + "abc"])
def test_every_generated_name_fits_rds_rules_whatever_the_target(target, uid):
    assert len(target) <= 63 and names.is_valid_identifier(target)
    generated = [
        names.copied_snapshot(uid), names.staged_snapshot(uid), names.shared_snapshot(uid),
        names.temporary_cluster(target, uid), names.previous_cluster(target, uid), names.final_snapshot(target, uid),
        *(names.instance(target, uid, n, replacing) for n in (1, 16) for replacing in (True, False)),
    ]
    for name in generated:
        assert names.is_valid_identifier(name), name
    # Unique per role: a temporary cluster, a previous cluster and an instance never share a name.
    assert len(set(generated)) == len(generated)
    assert names.short_uid(uid) in names.temporary_cluster(target, uid)


def test_identifier_rule_refuses_what_rds_refuses():
    for bad in ["", "1abc", "a--b", "ab-", "a_b", "a" * 64, "Abc"]:
        assert not names.is_valid_identifier(bad), bad


def test_the_restore_name_tag_fits_the_tag_value_limit(restore, cloud):
    run = restore(name="n" * 253, namespace="m" * 63)
    run.run()
    tag = tags_of(run.target.clusters[TARGET])[RESTORE_NAME_TAG]
    assert len(tag) == 256 and tag.startswith("m" * 63 + "/")


def test_latest_skips_another_restores_copy_and_final_snapshots(restore, source, cloud):
    latest = {"source": {"snapshotIdentifier": None, "latest": {"clusterIdentifier": "prod"}}}
    source.add_snapshot("aurora-restore-11111111-2222-4333-8444-555555555555", "prod", created=None)
    source.add_snapshot("prod-final-1a2b3c4d", "prod", created=None,
                        tags={RESTORE_UID_TAG: "another", SNAPSHOT_ROLE_TAG: "final"})
    run = restore(latest)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert status.snapshot.identifier == "prod-2025-03-01"

    opted_in = restore({"source": {"snapshotIdentifier": None, "latest": {"clusterIdentifier": "prod",
                                                                         "includeOperatorSnapshots": True}}},
                       uid="9c0e6a1b-1111-4222-8333-444455556666", name="other")
    opted_in.spec = opted_in.spec.model_copy(update={"target": opted_in.spec.target.model_copy(
        update={"cluster_identifier": "other-target"})})
    opted_in.run_until(Phase.PREFLIGHT)
    assert opted_in.status.snapshot.identifier in {"aurora-restore-11111111-2222-4333-8444-555555555555",
                                                   "prod-final-1a2b3c4d"}


@pytest.mark.parametrize("source_kind", ["latest", "pointInTime"])
def test_a_restore_onto_its_own_source_is_refused_unless_replace(restore, source, cloud, source_kind):
    kind = ({"latest": {"clusterIdentifier": TARGET}} if source_kind == "latest"
            else {"pointInTime": {"clusterIdentifier": TARGET, "useLatestRestorableTime": True}})
    source.add_snapshot("staging-nightly", TARGET)
    source.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    refused = restore({"source": {"snapshotIdentifier": None, **kind}})
    status = refused.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "SourceIsTarget")
    assert cloud.mutations == []

    replaced = restore({"source": {"snapshotIdentifier": None, **kind}, "existingTarget": {"policy": "Replace"}},
                       uid="5e5e5e5e-1111-4222-8333-444455556666", name="replace")
    status = replaced.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert tags_of(replaced.target.clusters[TARGET])[RESTORE_UID_TAG] == replaced.uid
    if source_kind == "latest":
        assert "staging-nightly" in source.snapshots  # the pinned snapshot survives the swap
    [delete] = cloud.calls_to("delete_cluster")
    assert delete.params["keep_automated_backups"] is True


@pytest.mark.parametrize(
    "setup, reason",
    [
        (lambda rds: rds.add_cluster(TARGET, tags=REPLACEABLE, instances=1, deletion_protection=True), "TargetDeletionProtected"),
        (lambda rds: rds.add_cluster(TARGET, tags=REPLACEABLE, instances=1, global_cluster="orders-global"), "TargetInGlobalDatabase"),
        (lambda rds: (rds.add_cluster(TARGET, tags=REPLACEABLE), rds.add_cluster(f"{TARGET}-previous-7d3f9a2e")), "ClusterNameTaken"),
        (lambda rds: (rds.add_cluster(TARGET, tags=REPLACEABLE), rds.add_cluster(f"{TARGET}-restore-7d3f9a2e")), "ClusterNameTaken"),
        (lambda rds: (rds.add_cluster(TARGET, tags=REPLACEABLE), rds.add_snapshot(f"{TARGET}-final-7d3f9a2e", "x")), "SnapshotNameTaken"),
    ],
)
def test_preflight_refuses_what_would_make_the_swap_fail_before_touching_anything(restore, cloud, setup, reason):
    run = restore({"existingTarget": {"policy": "Replace"}})
    setup(run.target)
    status = run.run()
    assert (status.phase, status.failure.phase, status.failure.reason) == (Phase.FAILED, Phase.PREFLIGHT, reason)
    assert cloud.mutations == []


def test_preflight_refuses_a_taken_instance_name(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE)
    run.target.add_cluster("elsewhere", instances=1)
    run.target.instances[f"{TARGET}-7d3f9a2e-1"] = {**run.target.instances["elsewhere-instance-1"],
                                                    "DBInstanceIdentifier": f"{TARGET}-7d3f9a2e-1"}
    status = run.run()
    assert status.failure.reason == "InstanceNameTaken" and cloud.mutations == []


def cancel(run):
    """What the deletion handler does: move to Cancelling, then run the machine until Cancelled."""
    run.status = apply_outcome(run.status, Advance(Phase.CANCELLING, "cancelling", updates={
        "cancellation": CancellationStatus(phase=run.phase, requested_at=run.now)}), run.now, 1, 20)
    for _ in range(50):
        if run.phase == Phase.CANCELLED:
            return run.status
        run.status = apply_outcome(run.status, run_step(run.context()), run.now, 1, 20)
        run.now += POLL
    raise AssertionError(f"not cancelled: {run.status.message}")


def owned(cloud, uid=UID) -> list[str]:
    found = []
    for rds in cloud.regions.values():
        for table in (rds.clusters, rds.instances, rds.snapshots):
            found += [key for key, item in table.items() if tags_of(item).get(RESTORE_UID_TAG) == uid]
    return found


@pytest.mark.parametrize("phase", [Phase.COPYING_SNAPSHOT, Phase.RESTORING_CLUSTER, Phase.CREATING_INSTANCES])
def test_cancel_removes_everything_the_restore_made_and_leaves_the_target(restore, cloud, phase):
    run = restore({"target": {"region": OTHER_REGION}, "copy": {"kmsKeyId": KMS_KEY},
                   "existingTarget": {"policy": "Replace"}})
    existing = run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(phase)
    run.step()
    status = cancel(run)
    assert status.cancellation.phase == phase
    assert owned(cloud) == []
    assert run.target.clusters[TARGET]["DbClusterResourceId"] == existing["DbClusterResourceId"]
    assert list(run.target.instances) == [f"{TARGET}-instance-1"]
    assert "prod-2025-03-01" in cloud.rds(SOURCE_REGION).snapshots


def test_a_cancel_during_the_swap_finishes_it_and_keeps_both_clusters(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.send_first_rename()
    status = cancel(run)
    assert status.phase == Phase.CANCELLED
    assert tags_of(run.target.clusters[TARGET])[RESTORE_UID_TAG] == UID  # the verified cluster took its place
    assert f"{TARGET}-previous-7d3f9a2e" in run.target.clusters  # the replaced one is never deleted by a cancel
    assert not cloud.calls_to("delete_cluster")


def test_a_cancel_before_anything_was_made_calls_no_aws(restore, cloud):
    run = restore()
    run.run_until(Phase.RESOLVING_SNAPSHOT)
    calls = len(cloud.calls)
    cancel(run)
    assert len(cloud.calls) == calls


def test_cleanup_after_a_crash_finds_an_unrecorded_copy_by_name_and_tag(restore, cloud):
    """The copy was made but the status that would have recorded it was lost; then the restore fails."""
    run = restore({"target": {"region": OTHER_REGION}, "copy": {"kmsKeyId": KMS_KEY}})
    run.run_until(Phase.COPYING_SNAPSHOT)
    before = run.status
    run.step()  # CopyDBClusterSnapshot; then the operator dies before the status is written
    run.status = before.model_copy(update={"copied_snapshot": None})
    run.target.fail("*", aws_terminal())
    status = run.run()
    assert status.phase == Phase.FAILED
    assert f"aurora-restore-{UID}" not in run.target.snapshots


def aws_terminal():
    from .fake_rds import aws_error

    return aws_error("AccessDenied", "not allowed", action="describe_snapshot", region=OTHER_REGION)


def test_a_cancel_while_retiring_finishes_deleting_the_previous_cluster(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    run.run_until(Phase.RETIRING_PREVIOUS)
    run.step()  # the previous cluster's instances are being deleted
    status = cancel(run)
    assert status.phase == Phase.CANCELLED
    assert set(run.target.clusters) == {TARGET} and not [i for i in run.target.instances if "instance" in i]
    assert status.replaced_cluster.deleted_at is not None
    assert cloud.calls_to("delete_cluster")[0].params["keep_automated_backups"] is True


def test_a_cancel_mid_swap_that_cannot_finish_rolls_the_swap_back(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace"}})
    old = run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.send_first_rename()
    run.target.clusters[f"{TARGET}-restore-7d3f9a2e"]["Status"] = "incompatible-parameters"
    status = cancel(run)
    assert status.replaced_cluster.rolled_back_at is not None
    assert run.target.clusters[TARGET]["DbClusterResourceId"] == old["DbClusterResourceId"]
    assert owned(cloud) == []  # the broken new cluster is removed too


def test_latest_still_picks_snapshots_of_a_cluster_the_operator_restored(restore, source, cloud):
    """A restored cluster copies its tags (our UID among them) to its snapshots: a nightly refresh from it must
    still find them; only what the operator itself made (copies, final snapshots) is skipped."""
    source.add_snapshot("staging-nightly", "prod", created=None,
                        tags={RESTORE_UID_TAG: "an-earlier-restore", "managed-by": "aurora-restore-operator"})
    run = restore({"source": {"snapshotIdentifier": None, "latest": {"clusterIdentifier": "prod"}}})
    assert run.run().snapshot.identifier == "staging-nightly"
