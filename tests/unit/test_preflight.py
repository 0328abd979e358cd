"""Preflight and dry runs: every problem found before anything is copied, shared or deleted, all reported at once."""

import pytest

from aurora_restore.api.phase import Phase

from .conftest import REPLACEABLE, KMS_KEY, OTHER_REGION, SNAPSHOT, SOURCE_REGION, TARGET, UID

COPY_ID = f"aurora-restore-{UID}"
CROSS_REGION = {"target": {"region": OTHER_REGION}, "copy": {"kmsKeyId": KMS_KEY}}
UNKNOWN_KEY = f"arn:aws:kms:{OTHER_REGION}:123456789012:key/0000dead-0000-beef-0000-000000000000"


def failed_checks(status) -> list[tuple[str, str]]:
    return [(check.name, check.reason) for check in status.preflight if not check.passed]


# --- problems ----------------------------------------------------------------------------------------------------


def test_three_problems_are_reported_together_numbered_and_nothing_is_changed(restore, cloud):
    run = restore(
        {
            "target": {"region": OTHER_REGION, "dbSubnetGroupName": "missing-subnets"},
            "copy": {"kmsKeyId": UNKNOWN_KEY},
        }
    )
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    status = run.run()

    assert status.phase == Phase.FAILED
    assert (status.failure.reason, status.failure.phase) == ("PreflightFailed", Phase.PREFLIGHT)
    message = status.failure.message
    assert message.startswith("preflight found 3 problem(s): 1) spec.copy.kmsKeyId ")
    first, second, third = message.index("1) "), message.index("; 2) "), message.index("; 3) ")
    assert first < second < third
    assert f"spec.copy.kmsKeyId {UNKNOWN_KEY!r}: no such KMS key in {OTHER_REGION}" in message[first:second]
    assert f"spec.target.dbSubnetGroupName 'missing-subnets': no such subnet group in {OTHER_REGION}" in (
        message[second:third]
    )
    assert f"target cluster {TARGET!r} already exists in {OTHER_REGION}" in message[third:]
    assert failed_checks(status) == [
        ("spec.copy.kmsKeyId", "KmsKeyNotUsable"),
        ("spec.target.dbSubnetGroupName", "SubnetGroupNotFound"),
        ("spec.target.clusterIdentifier", "TargetExists"),
    ]
    assert run.phases == [Phase.PENDING, Phase.RESOLVING_SNAPSHOT, Phase.PREFLIGHT, Phase.CLEANING_UP_AFTER_FAILURE,
                          Phase.FAILED]
    assert cloud.mutations == []
    assert not run.target.snapshots
    assert run.target.clusters[TARGET]["Status"] == "available" and len(run.target.instances) == 1


def no_setup(run):
    pass


@pytest.mark.parametrize(
    ("changes", "setup", "reason", "detail"),
    [
        ({}, lambda run: run.target.add_cluster(TARGET, tags=REPLACEABLE), "TargetExists", "spec.existingTarget.policy"),
        (
            {"existingTarget": {"policy": "Replace"}},
            lambda run: run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1, deletion_protection=True),
            "TargetDeletionProtected",
            "deletion protection enabled",
        ),
        ({"target": {"kmsKeyId": "alias/nope"}}, no_setup, "KmsKeyNotUsable", "spec.target.kmsKeyId 'alias/nope'"),
        ({"copy": {"kmsKeyId": UNKNOWN_KEY}, "target": {"region": OTHER_REGION}}, no_setup, "KmsKeyNotUsable",
         "spec.copy.kmsKeyId"),
        (
            {"target": {"engineVersion": "14.3"}},
            no_setup,
            "InvalidEngineVersion",
            f"snapshot {SNAPSHOT!r} (aurora-postgresql 15.4) cannot be restored to it",
        ),
        ({"target": {"dbSubnetGroupName": "nope"}}, no_setup, "SubnetGroupNotFound", "spec.target.dbSubnetGroupName"),
        (
            {"target": {"dbClusterParameterGroupName": "nope"}},
            no_setup,
            "ClusterParameterGroupNotFound",
            "no such cluster parameter group",
        ),
        (
            {"target": {"instances": {"dbParameterGroupName": "nope"}}},
            no_setup,
            "ParameterGroupNotFound",
            "spec.target.instances.dbParameterGroupName 'nope'",
        ),
        (
            {"target": {"vpcSecurityGroupIds": ["sg-1", "sg-404"]}},
            lambda run: run.target_ec2.add_security_group("sg-1"),
            "SecurityGroupNotFound",
            f"spec.target.vpcSecurityGroupIds: sg-404 not found in {SOURCE_REGION}",
        ),
    ],
    ids=[
        "target-exists",
        "target-protected",
        "target-kms-key",
        "copy-kms-key",
        "engine-version",
        "subnet-group",
        "cluster-parameter-group",
        "parameter-group",
        "security-group",
    ],
)
def test_a_single_problem_fails_with_its_own_reason(restore, cloud, changes, setup, reason, detail):
    run = restore(changes)
    setup(run)
    status = run.run()
    assert status.phase == Phase.FAILED
    assert (status.failure.reason, status.failure.phase) == (reason, Phase.PREFLIGHT)
    assert status.failure.message.startswith("preflight found 1 problem(s): 1) ")
    assert detail in status.failure.message
    assert [r for _, r in failed_checks(status)] == [reason]
    assert cloud.mutations == []


def test_every_check_that_passed_is_listed_too(restore):
    run = restore({"target": {"dbSubnetGroupName": "private", "vpcSecurityGroupIds": ["sg-1"]}})
    run.target.add_group("subnet group", "private")
    run.target_ec2.add_security_group("sg-1")
    run.run_until(Phase.RESTORING_CLUSTER)
    checks = {check.name: check for check in run.status.preflight}
    assert all(check.passed for check in checks.values())
    assert set(checks) == {
        "spec.target.dbSubnetGroupName",
        "spec.target.vpcSecurityGroupIds",
        "spec.target.tags",
        "spec.target.clusterIdentifier",
        "names",
    }
    assert checks["names"].message == f"{TARGET}-1, {TARGET}-2"
    assert checks["spec.target.clusterIdentifier"].message == "free"


# --- engine version ----------------------------------------------------------------------------------------------


def test_a_valid_upgrade_target_passes_and_is_restored_to(restore, cloud):
    run = restore({"target": {"engineVersion": "16.1"}})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    [check] = [c for c in status.preflight if c.name == "spec.target.engineVersion"]
    assert check.passed and check.message == "15.4 can be restored to 16.1"
    [asked] = cloud.calls_to("valid_upgrade_targets")
    assert asked.params == {"engine": "aurora-postgresql", "version": "15.4"}
    assert cloud.calls_to("restore_cluster_from_snapshot")[0].params["EngineVersion"] == "16.1"


def test_the_snapshots_own_version_needs_no_look_up(restore, cloud):
    assert restore({"target": {"engineVersion": "15.4"}}).run().phase == Phase.SUCCEEDED
    assert not cloud.calls_to("valid_upgrade_targets")


def test_a_snapshot_version_aws_does_not_know_fails_without_listing_targets(restore, source, cloud):
    source.add_snapshot("old", engine_version="9.6.22")
    status = restore({"source": {"snapshotIdentifier": "old"}, "target": {"engineVersion": "16.1"}}).run()
    assert (status.failure.reason, status.failure.phase) == ("InvalidEngineVersion", Phase.PREFLIGHT)
    assert "(aurora-postgresql 9.6.22) cannot be restored to it" in status.failure.message
    assert "valid targets" not in status.failure.message
    assert cloud.mutations == []


# --- dry run -----------------------------------------------------------------------------------------------------


def plan_of(status) -> list[tuple[Phase, str, dict[str, str]]]:
    return [(step.phase, step.action, step.parameters) for step in status.plan.steps]


def test_dry_run_plans_copy_replace_restore_instances_and_cleanup_without_changing_anything(
    restore, source, cloud, lock_holders
):
    run = restore({**CROSS_REGION, "existingTarget": {"policy": "Replace"}, "dryRun": True})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=2)
    status = run.run()

    assert run.phases == [Phase.PENDING, Phase.RESOLVING_SNAPSHOT, Phase.PREFLIGHT, Phase.PLANNED]
    assert status.failure is None and status.completed_at is not None
    assert status.message.startswith("dry run: ") and "status.plan" in status.message
    arn = source.snapshots[SNAPSHOT]["DBClusterSnapshotArn"]
    assert plan_of(status) == [
        (
            Phase.COPYING_SNAPSHOT,
            "CopyDBClusterSnapshot",
            {
                "SourceDBClusterSnapshotIdentifier": arn,
                "TargetDBClusterSnapshotIdentifier": COPY_ID,
                "Region": OTHER_REGION,
            },  # the snapshot is unencrypted: no KmsKeyId on the copy, the restore is encrypted instead
        ),
        (
            Phase.RESTORING_CLUSTER,
            "RestoreDBClusterFromSnapshot",
            {"DBClusterIdentifier": f"{TARGET}-restore-7d3f9a2e", "SnapshotIdentifier": COPY_ID, "KmsKeyId": KMS_KEY},
        ),
        (
            Phase.CREATING_INSTANCES,
            "CreateDBInstance",
            {"DBInstanceIdentifier": f"{TARGET}-7d3f9a2e-1", "DBInstanceClass": "db.r6g.large"},
        ),
        (
            Phase.CREATING_INSTANCES,
            "CreateDBInstance",
            {"DBInstanceIdentifier": f"{TARGET}-7d3f9a2e-2", "DBInstanceClass": "db.r6g.large"},
        ),
        (
            Phase.SWAPPING_TARGET,
            "ModifyDBCluster",
            {"DBClusterIdentifier": TARGET, "NewDBClusterIdentifier": f"{TARGET}-previous-7d3f9a2e"},
        ),
        (
            Phase.SWAPPING_TARGET,
            "ModifyDBCluster",
            {"DBClusterIdentifier": f"{TARGET}-restore-7d3f9a2e", "NewDBClusterIdentifier": TARGET},
        ),
        (Phase.RETIRING_PREVIOUS, "DeleteDBInstance", {"DBInstanceIdentifier": f"{TARGET}-instance-1"}),
        (Phase.RETIRING_PREVIOUS, "DeleteDBInstance", {"DBInstanceIdentifier": f"{TARGET}-instance-2"}),
        (
            Phase.RETIRING_PREVIOUS,
            "DeleteDBCluster",
            {"DBClusterIdentifier": f"{TARGET}-previous-7d3f9a2e", "DeleteAutomatedBackups": "false",
             "FinalDBSnapshotIdentifier": f"{TARGET}-final-7d3f9a2e"},
        ),
        (Phase.CLEANING_UP, "DeleteDBClusterSnapshot", {"DBClusterSnapshotIdentifier": COPY_ID}),
    ]
    assert status.preflight and all(check.passed for check in status.preflight)
    assert cloud.mutations == []
    assert run.target.clusters[TARGET]["Status"] == "available" and len(run.target.instances) == 2
    assert not run.target.snapshots
    assert lock_holders == {}
    assert {c.type: c.status for c in status.conditions} == {"Ready": "True", "Progressing": "False", "Failed": "False"}


def test_dry_run_in_one_region_plans_the_restore_from_the_snapshot_and_every_instance(restore, cloud):
    status = restore({"dryRun": True, "target": {"engineVersion": "16.1", "instances": {"count": 3}}}).run()
    assert status.phase == Phase.PLANNED
    assert [(phase, action) for phase, action, _ in plan_of(status)] == [
        (Phase.RESTORING_CLUSTER, "RestoreDBClusterFromSnapshot"),
        (Phase.CREATING_INSTANCES, "CreateDBInstance"),
        (Phase.CREATING_INSTANCES, "CreateDBInstance"),
        (Phase.CREATING_INSTANCES, "CreateDBInstance"),
    ]
    assert plan_of(status)[0][2] == {"DBClusterIdentifier": TARGET, "SnapshotIdentifier": SNAPSHOT,
                                     "EngineVersion": "16.1"}
    assert [p["DBInstanceIdentifier"] for _, _, p in plan_of(status)[1:]] == [f"{TARGET}-1", f"{TARGET}-2",
                                                                             f"{TARGET}-3"]
    assert cloud.mutations == []


def test_dry_run_with_a_problem_fails_instead_of_planning(restore, cloud):
    run = restore({"dryRun": True})
    run.target.add_cluster(TARGET, tags=REPLACEABLE)
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "TargetExists")
    assert status.plan is None
    assert cloud.mutations == []


def test_the_plan_says_an_unencrypted_snapshot_is_copied_without_a_key_and_which_key_encrypts_the_restore(restore):
    status = restore({**CROSS_REGION, "dryRun": True}).run()
    [copy] = [step for step in status.plan.steps if step.action == "CopyDBClusterSnapshot"]
    assert "KmsKeyId" not in copy.parameters
    assert copy.note == (f"snapshot {SNAPSHOT!r} is unencrypted: copied without KmsKeyId (AWS cannot encrypt a "
                         f"snapshot by copying it); the restore encrypts the cluster with {KMS_KEY}")
