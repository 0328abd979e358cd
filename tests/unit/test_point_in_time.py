"""Point-in-time restores: a source cluster as it was at a moment within its restorable window, in its region."""

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from aurora_restore.api.models import AuroraRestoreSpec
from aurora_restore.api.phase import Phase
from aurora_restore.aws.rds import tags_of
from aurora_restore.steps.context import RESTORE_UID_TAG

from .conftest import (
    BASE_SPEC,
    OTHER_REGION,
    SAME_REGION_PHASES,
    SOURCE_ACCOUNT,
    SOURCE_REGION,
    SOURCE_ROLE,
    TARGET,
    UID,
    merged,
)
from .fake_rds import RESTORABLE_FROM, RESTORABLE_UNTIL

SOURCE_CLUSTER = "prod"
INSIDE = datetime(2025, 3, 1, 6, 30, tzinfo=timezone.utc)


def point_in_time(**when) -> dict:
    return {"source": {"snapshotIdentifier": None, "pointInTime": {"clusterIdentifier": SOURCE_CLUSTER, **when}}}


AT_A_TIME = point_in_time(restoreTime="2025-03-01T06:30:00Z")
LATEST = point_in_time(useLatestRestorableTime=True)


@pytest.fixture
def source_cluster(source):
    """The cluster to restore from, with one instance and a restorable window of a week."""
    return source.add_cluster(SOURCE_CLUSTER, instances=1)


def test_restore_time_inside_the_window_restores_to_that_time_then_creates_the_instances(
    restore, source_cluster, cloud
):
    run = restore(AT_A_TIME)
    status = run.run()

    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.phases == SAME_REGION_PHASES
    [restored] = cloud.calls_to("restore_cluster_to_point_in_time")
    assert restored.region == SOURCE_REGION
    params = {k: v for k, v in restored.params.items() if k != "Tags"}
    assert params == {
        "SourceDBClusterIdentifier": SOURCE_CLUSTER,
        "DBClusterIdentifier": TARGET,
        "RestoreType": "full-copy",
        "RestoreToTime": INSIDE,
        "CopyTagsToSnapshot": True,
    }
    assert {"Key": RESTORE_UID_TAG, "Value": UID} in restored.params["Tags"]
    creates = cloud.calls_to("create_instance")
    assert [(c.params["DBInstanceIdentifier"], c.params["Engine"]) for c in creates] == [
        (f"{TARGET}-1", "aurora-postgresql"),
        (f"{TARGET}-2", "aurora-postgresql"),
    ]
    first_create = cloud.calls.index(creates[0])
    assert cloud.calls.index(restored) < first_create
    # No snapshot is involved at all.
    assert not cloud.calls_to("restore_cluster_from_snapshot")
    assert not cloud.calls_to("copy_snapshot") and not cloud.calls_to("describe_snapshot")
    assert status.snapshot is None
    assert tags_of(run.target.clusters[TARGET])[RESTORE_UID_TAG] == UID
    assert SOURCE_CLUSTER in run.source.clusters  # the source cluster is left as it was


def test_latest_restorable_time_is_asked_for_by_flag(restore, source_cluster, cloud):
    status = restore(LATEST).run()
    assert status.phase == Phase.SUCCEEDED, status.message
    [restored] = cloud.calls_to("restore_cluster_to_point_in_time")
    assert restored.params["UseLatestRestorableTime"] is True
    assert "RestoreToTime" not in restored.params
    assert len(cloud.calls_to("create_instance")) == 2


def test_the_target_fields_given_are_passed_to_the_point_in_time_restore(restore, source_cluster, cloud):
    run = restore({**LATEST, "target": {"port": 6543, "dbSubnetGroupName": "private", "deletionProtection": True}})
    run.target.add_group("subnet group", "private")
    assert run.run().phase == Phase.SUCCEEDED
    params = cloud.calls_to("restore_cluster_to_point_in_time")[0].params
    assert (params["Port"], params["DBSubnetGroupName"]) == (6543, "private")
    assert "DeletionProtection" not in params  # turned on in Publishing (tests/unit/test_deletion_protection.py)
    assert run.target.clusters[TARGET]["DeletionProtection"] is True


@pytest.mark.parametrize(
    "moment",
    [RESTORABLE_FROM.replace(hour=2), RESTORABLE_UNTIL.replace(hour=13)],
    ids=["before-the-earliest", "in-the-future"],
)
def test_restore_time_outside_the_window_fails_before_anything_is_done(restore, source_cluster, cloud, moment):
    status = restore(point_in_time(restoreTime=moment.isoformat())).run()
    assert status.phase == Phase.FAILED
    assert (status.failure.reason, status.failure.phase) == ("RestoreTimeOutOfRange", Phase.RESOLVING_SNAPSHOT)
    message = status.failure.message
    assert f"spec.source.pointInTime.restoreTime {moment.isoformat()} is outside the restorable window" in message
    assert f"({RESTORABLE_FROM.isoformat()} to {RESTORABLE_UNTIL.isoformat()})" in message
    assert cloud.mutations == []


def test_a_past_restore_time_after_the_latest_restorable_time_is_waited_for_until_the_window_reaches_it(
    restore, source, source_cluster, cloud
):
    """LatestRestorableTime (11:55) trails the present (12:00): 11:59 has happened and soon becomes restorable."""
    run = restore(point_in_time(restoreTime=RESTORABLE_UNTIL.replace(minute=59).isoformat()))
    run.step()  # Pending
    outcome = run.step()
    assert run.phase == Phase.RESOLVING_SNAPSHOT
    assert "not restorable yet: the LatestRestorableTime of prod is 2025-03-01T11:55:00+00:00" in outcome.message
    source.clusters[SOURCE_CLUSTER]["LatestRestorableTime"] = RESTORABLE_UNTIL.replace(hour=12, minute=0)
    assert run.run().phase == Phase.SUCCEEDED, run.status.message
    assert cloud.calls_to("restore_cluster_to_point_in_time")[0].params["RestoreToTime"] == RESTORABLE_UNTIL.replace(
        minute=59)


def test_a_restore_time_without_a_zone_is_taken_as_utc(restore, source_cluster):
    status = restore(point_in_time(restoreTime="2025-03-01T12:56:00")).run()
    assert status.failure.reason == "RestoreTimeOutOfRange"  # 12:56 UTC is in the future (the clock says 12:00)


def test_a_cluster_without_a_restorable_time_is_waited_for(restore, source):
    source.add_cluster(SOURCE_CLUSTER, restorable=None)
    run = restore(LATEST)
    run.step()
    assert "reports no LatestRestorableTime yet" in run.step().message


def test_a_missing_source_cluster_fails_naming_the_field(restore, cloud):
    status = restore(AT_A_TIME).run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "SourceClusterNotFound")
    assert f"spec.source.pointInTime.clusterIdentifier {SOURCE_CLUSTER!r}" in status.failure.message
    assert cloud.mutations == []


def test_a_crash_right_after_the_point_in_time_restore_call_does_not_restore_twice(restore, source_cluster, cloud):
    run = restore(AT_A_TIME)
    run.run_until(Phase.RESTORING_CLUSTER)
    run.crash_then_step()
    run.crash_then_step()
    assert run.run(crash_every_step=True).phase == Phase.SUCCEEDED
    assert len(cloud.calls_to("restore_cluster_to_point_in_time")) == 1
    assert len([c for c in cloud.calls_to("create_instance") if c.error is None]) == 2


def test_dry_run_plans_the_point_in_time_restore(restore, source_cluster, cloud):
    status = restore({**AT_A_TIME, "dryRun": True}).run()
    assert status.phase == Phase.PLANNED
    steps = [(step.action, step.parameters) for step in status.plan.steps]
    assert steps[0] == (
        "RestoreDBClusterToPointInTime",
        {
            "SourceDBClusterIdentifier": SOURCE_CLUSTER,
            "DBClusterIdentifier": TARGET,
            "RestoreToTime": INSIDE.isoformat(),
        },
    )
    assert [action for action, _ in steps[1:]] == ["CreateDBInstance", "CreateDBInstance"]
    assert cloud.mutations == []


# --- what the model refuses --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {**AT_A_TIME, "target": {"region": OTHER_REGION}},
        {"source": {**AT_A_TIME["source"], "accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE}},
    ],
    ids=["another-target-region", "another-account"],
)
def test_point_in_time_with_another_region_or_account_is_rejected(changes):
    with pytest.raises(ValidationError, match="pointInTime restores in the source cluster's region and account"):
        AuroraRestoreSpec.model_validate(merged(BASE_SPEC, changes))


def test_point_in_time_with_the_source_region_named_as_target_region_is_accepted():
    spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {**AT_A_TIME, "target": {"region": SOURCE_REGION}}))
    assert not spec.needs_copy


@pytest.mark.parametrize(
    "when",
    [{}, {"restoreTime": "2025-03-01T06:30:00Z", "useLatestRestorableTime": True}],
    ids=["neither", "both"],
)
def test_point_in_time_needs_exactly_one_time(when):
    with pytest.raises(ValidationError, match="exactly one of restoreTime or useLatestRestorableTime"):
        AuroraRestoreSpec.model_validate(merged(BASE_SPEC, point_in_time(**when)))


@pytest.mark.parametrize(
    "target", [{"engineVersion": "16.1"}, {"availabilityZones": ["eu-west-1a"]}], ids=["engineVersion", "zones"]
)
def test_snapshot_only_fields_with_point_in_time_are_refused_rather_than_ignored(target):
    """RestoreDBClusterToPointInTime has no EngineVersion or AvailabilityZones."""
    with pytest.raises(ValidationError, match="leave target.engineVersion and target.availabilityZones unset"):
        AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {**LATEST, "target": target}))
