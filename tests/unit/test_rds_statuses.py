"""RDS failure statuses of the cluster and its instances, and creates whose answer was lost."""

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.aws.rds import FAILED_STATUSES, tags_of
from aurora_restore.steps.context import RESTORE_UID_TAG
from aurora_restore.steps.outcomes import Wait
from aurora_restore.steps.rds_statuses import FAILURE_STATUSES

from .conftest import REPLACEABLE, KMS_KEY, OTHER_REGION, SOURCE_ACCOUNT, SOURCE_REGION, SOURCE_ROLE, TARGET, UID
from .fake_rds import ACCOUNT_ID, aws_error

STATUSES = sorted(FAILED_STATUSES)
# Written out, not read from FAILURE_STATUSES, so that a wrong entry of the table fails these tests
# (docs/usage.md lists the same reasons).
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


def expected_reason(kind: str, status: str) -> str:
    return EXPECTED_REASONS[status].format(Kind=kind.capitalize())


def test_every_failure_status_has_a_reason_and_advice():
    assert set(FAILURE_STATUSES) == FAILED_STATUSES == set(EXPECTED_REASONS)
    for status, failure in FAILURE_STATUSES.items():
        assert failure.reason and failure.meaning and failure.advice, status


@pytest.mark.parametrize("status", STATUSES)
def test_a_cluster_in_a_failure_status_fails_the_restore_with_its_reason(restore, status):
    run = restore()
    run.target.settles_as["cluster"] = status
    result = run.run()
    assert result.phase == Phase.FAILED
    assert result.failure.phase == Phase.RESTORING_CLUSTER
    assert result.failure.reason == expected_reason("cluster", status)
    message = result.failure.message
    assert f"RDS reports cluster {TARGET!r} as {status}" in message
    assert FAILURE_STATUSES[status].advice.format(kind="cluster") in message
    assert "left for inspection" in message and "create a new AuroraRestore" in message
    assert TARGET in run.target.clusters  # restored into the target identifier: kept for inspection
    assert not run.cloud.calls_to("create_instance")


@pytest.mark.parametrize("status", STATUSES)
def test_an_instance_in_a_failure_status_fails_the_restore_with_its_reason(restore, status):
    run = restore()
    run.target.settles_as["instance"] = status
    result = run.run()
    assert result.phase == Phase.FAILED
    assert result.failure.phase == Phase.CREATING_INSTANCES
    assert result.failure.reason == expected_reason("instance", status)
    assert f"RDS reports instance '{TARGET}-1' as {status}" in result.failure.message


def test_the_encryption_key_is_named_and_a_temporary_cluster_is_removed(restore):
    run = restore({"existingTarget": {"policy": "Replace"}})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.target.settles_as["cluster"] = "inaccessible-encryption-credentials"
    run.run_until(Phase.RESTORING_CLUSTER)
    run.step()  # the restore call
    run.target.clusters[f"{TARGET}-restore-{UID[:8]}"]["KmsKeyId"] = "arn:aws:kms:key/k1"
    result = run.run()
    assert result.failure.reason == "EncryptionKeyInaccessible"
    assert "(key arn:aws:kms:key/k1)" in result.failure.message
    assert "the operator deletes the temporary cluster" in result.failure.message
    assert set(run.target.clusters) == {TARGET}


def lose_the_answer(rds, method: str, code: str) -> None:
    """The next call of `method` takes effect, then botocore's retry of it meets what it made."""
    original = getattr(rds, method)

    def applied_then_lost(**params):
        setattr(rds, method, original)
        original(**params)
        raise aws_error(code, "already exists", action=method, region=rds.region)

    setattr(rds, method, applied_then_lost)


@pytest.mark.parametrize(
    ("method", "code", "changes"),
    [
        ("restore_cluster_from_snapshot", "DBClusterAlreadyExistsFault", {}),
        ("create_instance", "DBInstanceAlreadyExists", {}),
        ("copy_snapshot", "DBClusterSnapshotAlreadyExistsFault",
         {"target": {"region": OTHER_REGION}, "copy": {"kmsKeyId": KMS_KEY}}),
    ],
)
def test_a_create_whose_answer_was_lost_ends_with_exactly_one_resource(restore, method, code, changes):
    run = restore(changes)
    lose_the_answer(run.target, method, code)
    result = run.run()
    assert result.phase == Phase.SUCCEEDED, result.failure
    made = [c for c in run.cloud.calls_to(method) if c.error is None]
    assert len(made) == (2 if method == "create_instance" else 1)  # the lost one is found, never made again
    assert any(isinstance(o, Wait) and o.reason.endswith("Appeared") for o in run.outcomes)
    assert len(run.target.clusters) == 1
    assert set(run.target.instances) == {f"{TARGET}-1", f"{TARGET}-2"}


# --- a failure status met after CreatingInstances -----------------------------------------------------------------

MASTER_SECRET = "aurora-master"
DATABASE_ACCESS = {"masterPassword": {"secretRef": {"name": MASTER_SECRET, "key": "password"}}}
PUBLISHING = {**DATABASE_ACCESS, "connectionSecret": {"name": "staging-db"}}
LATER_PHASES = {
    Phase.CONFIGURING_ACCESS: DATABASE_ACCESS,
    Phase.VERIFYING: DATABASE_ACCESS,
    Phase.PUBLISHING: PUBLISHING,
}


def at_phase(restore, phase: Phase, changes: dict):
    """A restore whose cluster (into the target identifier, two instances) is available and whose status is in
    `phase`, as an earlier turn of the machine would have left it; the master password is there."""
    run = restore(changes)
    run.secrets.add(MASTER_SECRET, {"password": "a-Good-master-pw1"})
    run.target.add_cluster(TARGET, tags={**REPLACEABLE, RESTORE_UID_TAG: UID}, instances=2)
    run.status = run.status.model_copy(update={"phase": phase})
    run.phases = [phase]
    return run


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("phase", list(LATER_PHASES), ids=str)
def test_a_cluster_turning_to_a_failure_status_later_fails_that_phase_with_its_reason(restore, phase, status):
    run = at_phase(restore, phase, LATER_PHASES[phase])
    run.target.put_in_status("cluster", TARGET, status)
    result = run.run()
    assert result.phase == Phase.FAILED
    assert (result.failure.phase, result.failure.reason) == (phase, expected_reason("cluster", status))
    assert f"RDS reports cluster {TARGET!r} as {status}: " in result.failure.message
    assert "left for inspection" in result.failure.message
    assert not run.cloud.calls_to("modify_cluster") and not run.secrets.writes  # nothing done to a broken cluster


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("phase", list(LATER_PHASES), ids=str)
def test_an_instance_turning_to_a_failure_status_later_fails_that_phase_with_its_reason(restore, phase, status):
    run = at_phase(restore, phase, LATER_PHASES[phase])
    instance = f"{TARGET}-instance-2"
    run.target.put_in_status("instance", instance, status)
    result = run.run()
    assert result.phase == Phase.FAILED
    assert (result.failure.phase, result.failure.reason) == (phase, expected_reason("instance", status))
    assert f"RDS reports instance {instance!r} as {status}: " in result.failure.message
    assert not run.cloud.calls_to("modify_cluster") and not run.secrets.writes


@pytest.fixture
def password_refused(monkeypatch):
    """The database answers, but refuses the master password (RDS has not applied the new one yet)."""
    from aurora_restore.db import postgres
    from aurora_restore.db.connection import AuthenticationFailed

    def refuse(*args, **kwargs):
        raise AuthenticationFailed("DatabaseAuthenticationFailed", "password authentication failed")

    monkeypatch.setattr(postgres, "connect", refuse)


@pytest.mark.parametrize(
    ("kind", "broken", "status", "reason"),
    [
        ("cluster", f"{TARGET}-restore-{UID[:8]}", "inaccessible-encryption-credentials", "EncryptionKeyInaccessible"),
        ("instance", f"{TARGET}-{UID[:8]}-2", "incompatible-parameters", "IncompatibleParameters"),
    ],
)
def test_a_failure_status_after_the_password_change_fails_configuring_access_and_removes_the_temporary_cluster(
    restore, password_refused, kind, broken, status, reason
):
    """A Replace through ConfiguringAccess: the new master password is sent, then the new cluster (or one of its
    instances) goes to a failure status. The restore fails at once, not at spec.timeout, the existing target is
    untouched and the temporary cluster is deleted."""
    run = restore({**DATABASE_ACCESS, "existingTarget": {"policy": "Replace"}})
    run.secrets.add(MASTER_SECRET, {"password": "a-Good-master-pw1"})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.run_until(Phase.CONFIGURING_ACCESS)
    run.step()  # the password is refused: ModifyDBCluster MasterUserPassword
    assert run.phase == Phase.CONFIGURING_ACCESS and len(run.cloud.calls_to("modify_cluster")) == 1
    run.target.put_in_status(kind, broken, status)
    run.step()
    assert run.phase == Phase.CLEANING_UP_AFTER_FAILURE
    assert (run.status.failure.phase, run.status.failure.reason) == (Phase.CONFIGURING_ACCESS, reason)
    assert f"RDS reports {kind} {broken!r} as {status}: " in run.status.failure.message
    assert "the operator deletes the temporary cluster" in run.status.failure.message
    result = run.run()
    assert result.phase == Phase.FAILED
    assert set(run.target.clusters) == {TARGET} and not run.cloud.calls_to("rename_cluster")


# --- AlreadyExists, and what exists is someone else's ---------------------------------------------------------------

SOURCE_ACCOUNT_KEY = f"arn:aws:kms:{SOURCE_REGION}:{ACCOUNT_ID}:key/2222bbbb-3333-cccc-4444-dddd5555eeee"
AUTOMATED = "rds:prod-2025-03-01-03-00"


def taken_by_someone_else(rds, method: str, code: str, untagged) -> None:
    """Just before the next call of `method`, someone else makes an object of the name it asks for, without this
    restore's UID tag: the call meets AlreadyExists, as a lost answer would, but what exists is not ours."""
    original = getattr(rds, method)

    def made_by_a_stranger(**params):
        setattr(rds, method, original)
        original(**untagged(params))
        raise aws_error(code, "already exists", action=method, region=rds.region)

    setattr(rds, method, made_by_a_stranger)


def without_tags(params: dict) -> dict:
    return {**params, "Tags": []}


def test_a_cluster_someone_else_restored_under_the_target_name_is_not_adopted(restore):
    run = restore()
    taken_by_someone_else(run.target, "restore_cluster_from_snapshot", "DBClusterAlreadyExistsFault", without_tags)
    result = run.run()
    assert (result.phase, result.failure.phase, result.failure.reason) == (
        Phase.FAILED, Phase.RESTORING_CLUSTER, "TargetTaken")
    assert any(isinstance(o, Wait) and o.reason == "TargetAppeared" for o in run.outcomes)
    assert RESTORE_UID_TAG not in tags_of(run.target.clusters[TARGET])  # the stranger's, left as it is
    assert not run.cloud.calls_to("create_instance") and not run.cloud.calls_to("delete_cluster")


def test_an_instance_someone_else_made_in_the_cluster_under_its_name_is_not_adopted(restore):
    run = restore()
    taken_by_someone_else(run.target, "create_instance", "DBInstanceAlreadyExists", without_tags)
    result = run.run()
    assert (result.phase, result.failure.phase, result.failure.reason) == (
        Phase.FAILED, Phase.CREATING_INSTANCES, "InstanceNameTaken")
    assert any(isinstance(o, Wait) and o.reason == "InstanceAppeared" for o in run.outcomes)
    stranger = run.target.instances[f"{TARGET}-1"]
    assert stranger["DBClusterIdentifier"] == TARGET and RESTORE_UID_TAG not in tags_of(stranger)
    assert (f"an instance named '{TARGET}-1' in cluster {TARGET!r} was not made by this restore"
            in result.failure.message)
    assert not run.cloud.calls_to("delete_instance")


def test_an_instance_of_ours_not_yet_listed_in_the_cluster_is_adopted_not_made_again(restore):
    """DescribeDBInstances by name sees it, the cluster's filter does not yet (eventual consistency)."""
    run = restore()
    run.run_until(Phase.CREATING_INSTANCES)
    run.step()  # both instances are created
    hidden = f"{TARGET}-2"
    listed = run.target.list_cluster_instances
    run.target.list_cluster_instances = lambda cluster_identifier: [
        i for i in listed(cluster_identifier=cluster_identifier) if i["DBInstanceIdentifier"] != hidden]
    run.step()
    run.target.list_cluster_instances = listed
    result = run.run()
    assert result.phase == Phase.SUCCEEDED, result.failure
    assert len([c for c in run.cloud.calls_to("create_instance") if c.error is None]) == 2


def test_a_copy_someone_else_made_under_the_copy_name_is_not_adopted(restore):
    run = restore({"target": {"region": OTHER_REGION}, "copy": {"kmsKeyId": KMS_KEY}})
    taken_by_someone_else(run.target, "copy_snapshot", "DBClusterSnapshotAlreadyExistsFault",
                          lambda params: {**params, "tags": {}})
    result = run.run()
    assert (result.phase, result.failure.phase, result.failure.reason) == (
        Phase.FAILED, Phase.COPYING_SNAPSHOT, "CopyNameTaken")
    assert any(isinstance(o, Wait) and o.reason == "CopyAppeared" for o in run.outcomes)
    copy = run.target.snapshots[f"aurora-restore-{UID}"]
    assert RESTORE_UID_TAG not in tags_of(copy)
    assert not run.cloud.calls_to("delete_snapshot") and not run.cloud.calls_to("restore_cluster_from_snapshot")


def test_a_share_copy_someone_else_made_in_the_source_account_is_not_adopted(restore, cloud):
    foreign = cloud.account(SOURCE_ACCOUNT).rds(SOURCE_REGION)
    foreign.add_snapshot(AUTOMATED, encrypted=True, snapshot_type="automated")
    cloud.kms(SOURCE_REGION).add_key(SOURCE_ACCOUNT_KEY)
    run = restore({
        "source": {"snapshotIdentifier": AUTOMATED, "accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE},
        "copy": {"kmsKeyId": SOURCE_ACCOUNT_KEY},
    })
    taken_by_someone_else(foreign, "copy_snapshot", "DBClusterSnapshotAlreadyExistsFault",
                          lambda params: {**params, "tags": {}})
    result = run.run()
    assert (result.phase, result.failure.phase, result.failure.reason) == (
        Phase.FAILED, Phase.SHARING_SNAPSHOT, "ShareNameTaken")
    assert any(isinstance(o, Wait) and o.reason == "CopyAppeared" for o in run.outcomes)
    share = foreign.snapshots[f"aurora-restore-{UID}-share"]
    assert RESTORE_UID_TAG not in tags_of(share)
    assert not run.cloud.calls_to("delete_snapshot") and not run.cloud.calls_to("share_snapshot")


def test_a_cluster_turning_to_a_failure_status_while_its_instances_are_made_fails_creating_instances(restore):
    run = restore()
    run.run_until(Phase.CREATING_INSTANCES)
    run.step()  # the instances are being created
    run.target.put_in_status("cluster", TARGET, "inaccessible-encryption-credentials-recoverable")
    result = run.run()
    assert (result.phase, result.failure.phase, result.failure.reason) == (
        Phase.FAILED, Phase.CREATING_INSTANCES, "EncryptionKeyInaccessible")
    assert (f"RDS reports cluster {TARGET!r} as inaccessible-encryption-credentials-recoverable"
            in result.failure.message)


def test_a_cluster_broken_once_renamed_to_the_target_fails_the_swap_and_the_previous_cluster_gets_its_name_back(
        restore):
    """spec.timeout no longer applies once the swap began: a new cluster that turns to a failure status during
    its rename to the target identifier must fail the restore (not wait forever); it is no successor, so it is
    deleted and the replaced cluster is renamed back to the target identifier."""
    run = restore({"existingTarget": {"policy": "Replace"}})
    old = run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    run.send_first_rename()
    while len(run.cloud.calls_to("rename_cluster")) < 2:  # the first rename settles; the second one is sent
        run.step()
    assert run.phase == Phase.SWAPPING_TARGET and TARGET in run.target.clusters
    run.target.put_in_status("cluster", TARGET, "inaccessible-encryption-credentials")
    result = run.run()
    assert (result.phase, result.failure.phase, result.failure.reason) == (
        Phase.FAILED, Phase.SWAPPING_TARGET, "EncryptionKeyInaccessible")
    previous = f"{TARGET}-previous-{UID[:8]}"
    assert f"renames the replaced cluster {previous!r} back to {TARGET!r}" in result.failure.message
    assert run.target.clusters[TARGET]["DbClusterResourceId"] == old["DbClusterResourceId"]
    assert RESTORE_UID_TAG not in tags_of(run.target.clusters[TARGET])
    assert previous not in run.target.clusters
    [deleted] = run.cloud.calls_to("delete_cluster")
    assert deleted.params["identifier"] == TARGET and deleted.params["final_snapshot_identifier"] is None
    assert run.cloud.calls.index(deleted) < run.cloud.calls.index(run.cloud.calls_to("rename_cluster")[-1])
    assert [call.params for call in run.cloud.calls_to("rename_cluster")][-1] == {
        "identifier": previous, "new_identifier": TARGET}
    assert len(run.target.list_cluster_instances(TARGET)) == 1  # the previous cluster's own instance
    assert result.replaced_cluster.rolled_back_at is not None and result.replaced_cluster.swapped_at is None
