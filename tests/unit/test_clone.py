"""spec.source.clone: a fast clone (RestoreDBClusterToPointInTime copy-on-write) in one account, and across accounts
through an AWS RAM share of the source cluster that the restore creates, uses and deletes (found by its UID tag).
Preflight refuses what AWS would refuse, each with its own reason, before anything is made."""

from collections import Counter
from fnmatch import fnmatchcase

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.aws.iam_policy import operator_policy
from aurora_restore.steps.clone import share_name
from aurora_restore.steps.context import RESTORE_UID_TAG

from .conftest import OTHER_REGION, REPLACEABLE, SOURCE_ACCOUNT, SOURCE_REGION, SOURCE_ROLE, TARGET, UID
from .fake_clone import FakeRam, ram_world
from .fake_rds import ACCOUNT_ID, aws_error
from .test_names_and_ownership import cancel

SOURCE = "prod"
# A customer-managed key of the source account, whose key policy lets the target account use it.
SOURCE_KEY = f"arn:aws:kms:{SOURCE_REGION}:{SOURCE_ACCOUNT}:key/3333cccc-4444-dddd-5555-eeee6666ffff"
RAM_CALLS = ("create_resource_share", "delete_resource_share", "accept_resource_share_invitation")

CLONE_PHASES = [Phase.PENDING, Phase.RESOLVING_SNAPSHOT, Phase.PREFLIGHT, Phase.RESTORING_CLUSTER,
                Phase.CREATING_INSTANCES, Phase.CONFIGURING_ACCESS, Phase.VERIFYING, Phase.PUBLISHING,
                Phase.CLEANING_UP, Phase.SUCCEEDED]


def same_account(**source) -> dict:
    return {"source": {"snapshotIdentifier": None, "clone": {"clusterIdentifier": SOURCE}, **source}}


def other_account(**source) -> dict:
    return same_account(accountId=SOURCE_ACCOUNT, roleArn=SOURCE_ROLE, **source)


@pytest.fixture
def prod(source):
    """The source cluster in the harness's own account, with one instance."""
    source.add_cluster(SOURCE, instances=1)
    return source


@pytest.fixture
def foreign(cloud):
    """The source cluster in SOURCE_ACCOUNT, encrypted with SOURCE_KEY, with one instance."""
    rds = cloud.account(SOURCE_ACCOUNT).rds(SOURCE_REGION)
    rds.add_cluster(SOURCE, instances=1)
    rds.clusters[SOURCE].update(StorageEncrypted=True, KmsKeyId=SOURCE_KEY)
    cloud.account(SOURCE_ACCOUNT).kms(SOURCE_REGION).add_key(SOURCE_KEY, users=[ACCOUNT_ID])
    return rds


def ram_calls(cloud) -> list:
    return [c for c in cloud.calls if c.action in RAM_CALLS]


# --- in one account ------------------------------------------------------------------------------------------


def test_a_same_account_clone_is_copy_on_write_of_the_running_cluster(restore, prod, cloud):
    run = restore(same_account())
    status = run.run()

    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.phases == CLONE_PHASES
    [clone] = cloud.calls_to("restore_cluster_to_point_in_time")
    params = clone.params
    assert (params["SourceDBClusterIdentifier"], params["RestoreType"], params["UseLatestRestorableTime"]) == (
        SOURCE, "copy-on-write", True)
    assert params["DBClusterIdentifier"] == TARGET
    assert "EngineVersion" not in params and "AvailabilityZones" not in params and "RestoreToTime" not in params
    assert {"Key": RESTORE_UID_TAG, "Value": UID} in params["Tags"]
    assert cloud.calls_to("restore_cluster_from_snapshot") == [] and cloud.calls_to("copy_snapshot") == []
    assert ram_calls(cloud) == []
    assert len(status.instances) == 2 and TARGET in run.target.clusters
    assert run.target.clusters[TARGET]["CloneGroupId"] == prod.clusters[SOURCE]["CloneGroupId"]
    record = status.clone
    assert (record.source_cluster_identifier, record.source_account, record.engine, record.instance_count) == (
        SOURCE, ACCOUNT_ID, "aurora-postgresql", 1)
    assert record.resource_share_arn is None and record.unshared is None
    assert prod.clusters[SOURCE]["Status"] == "available"  # the source is only read


def test_a_source_in_a_passing_state_is_waited_for(restore, prod):
    prod.clusters[SOURCE]["Status"] = "backing-up"
    run = restore(same_account())
    run.step()
    run.step()
    assert run.phase == Phase.RESOLVING_SNAPSHOT and "backing-up" in run.status.message
    prod.clusters[SOURCE]["Status"] = "available"
    assert run.run().phase == Phase.SUCCEEDED


def test_a_missing_source_fails_resolving(restore, source, cloud):
    status = restore(same_account()).run()
    assert status.failure.reason == "SourceClusterNotFound" and cloud.mutations == []


@pytest.mark.parametrize("setup, reason", [
    (lambda rds: rds.add_cluster(SOURCE, instances=0), "CloneSourceHasNoInstance"),
    (lambda rds: rds.add_cluster(SOURCE, instances=1, status="stopped"), "CloneSourceNotAvailable"),
])
def test_preflight_refuses_a_source_aws_cannot_clone(restore, source, cloud, setup, reason):
    setup(source)
    status = restore(same_account()).run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == reason, status.failure.message
    assert [check.reason for check in status.preflight if not check.passed] == [reason]
    assert cloud.mutations == []


@pytest.mark.parametrize("cross_account", [False, True])
def test_preflight_refuses_a_source_that_is_itself_a_cross_account_clone(restore, prod, foreign, cloud,
                                                                          cross_account):
    """AWS refuses to clone or share it with InvalidDBClusterStateFault, which the operator would only retry."""
    (foreign if cross_account else prod).clusters[SOURCE]["CrossAccountClone"] = True
    status = restore(other_account() if cross_account else same_account()).run()
    assert status.failure.reason == "CloneSourceIsCrossAccountClone", status.failure.message
    assert cloud.mutations == []


def test_preflight_refuses_another_region(restore, prod, cloud):
    status = restore({**same_account(), "target": {"region": OTHER_REGION}}).run()
    assert status.failure.reason == "CloneRegionMismatch"
    assert SOURCE_REGION in status.failure.message and cloud.mutations == []


def test_preflight_refuses_when_the_cluster_quota_is_used_up(restore, prod, cloud):
    prod.cluster_quota_max = 1  # prod itself uses it
    status = restore(same_account()).run()
    assert status.failure.reason == "CloneLimitReached" and "DBClusters quota" in status.failure.message
    assert cloud.mutations == []


def test_a_clone_replaces_an_existing_target_after_verification(restore, prod, cloud):
    run = restore({**same_account(), "existingTarget": {"policy": "Replace"}})
    prod.add_cluster(TARGET, instances=1, tags=REPLACEABLE)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert Phase.SWAPPING_TARGET in run.phases
    [clone] = cloud.calls_to("restore_cluster_to_point_in_time")
    assert clone.params["DBClusterIdentifier"] == run.context().temporary_cluster_identifier


def test_the_dry_run_plan_lists_the_clone(restore, prod, cloud):
    status = restore({**same_account(), "dryRun": True}).run()
    assert status.phase == Phase.PLANNED, status.message
    actions = [(step.phase, step.action) for step in status.plan.steps]
    assert actions[0] == (Phase.RESTORING_CLUSTER, "RestoreDBClusterToPointInTime")
    assert status.plan.steps[0].parameters["RestoreType"] == "copy-on-write"
    assert status.plan.steps[0].parameters["SourceDBClusterIdentifier"] == SOURCE
    assert not any(action.endswith("ResourceShare") for _, action in actions)
    assert cloud.mutations == []


# --- across accounts -----------------------------------------------------------------------------------------


def test_a_cross_account_clone_shares_the_cluster_through_ram_then_removes_the_share(restore, foreign, cloud):
    run = restore(other_account())
    status = run.run()

    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.phases == CLONE_PHASES[:3] + [Phase.SHARING_CLUSTER] + CLONE_PHASES[3:]
    arn = foreign.clusters[SOURCE]["DBClusterArn"]
    [create] = cloud.calls_to("create_resource_share")
    assert (create.account, create.region) == (SOURCE_ACCOUNT, SOURCE_REGION)
    assert (create.params["resource_arn"], create.params["principal"]) == (arn, ACCOUNT_ID)
    assert create.params["tags"][RESTORE_UID_TAG] == UID
    [accept] = cloud.calls_to("accept_resource_share_invitation")
    assert accept.account == ACCOUNT_ID
    [clone] = cloud.calls_to("restore_cluster_to_point_in_time")
    assert (clone.account, clone.params["SourceDBClusterIdentifier"], clone.params["RestoreType"]) == (
        ACCOUNT_ID, arn, "copy-on-write")
    [delete] = cloud.calls_to("delete_resource_share")
    assert delete.account == SOURCE_ACCOUNT
    assert cloud.calls.index(create) < cloud.calls.index(accept) < cloud.calls.index(clone) < cloud.calls.index(delete)

    record = status.clone
    assert record.source_cluster_arn == arn and record.source_account == SOURCE_ACCOUNT
    assert record.resource_share_arn == delete.params["share_arn"] and record.invitation_arn is not None
    assert record.shared_at is not None and record.unshared is True
    assert (record.storage_encrypted, record.kms_key_id) == (True, SOURCE_KEY)
    assert [s["status"] for s in ram_world(cloud).shares.values()] == ["DELETED"]
    assert TARGET in run.target.clusters and len(status.instances) == 2
    # The source account changed nothing but the share; no snapshot was shared or copied.
    assert Counter(c.action for c in cloud.mutations if c.account == SOURCE_ACCOUNT) == Counter(
        {"create_resource_share": 1, "delete_resource_share": 1})
    assert cloud.calls_to("share_snapshot") == [] and cloud.calls_to("copy_snapshot") == []


def test_in_one_organization_there_is_no_invitation_to_accept(restore, foreign, cloud):
    ram_world(cloud).organization.update({SOURCE_ACCOUNT, ACCOUNT_ID})
    status = restore(other_account()).run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert cloud.calls_to("accept_resource_share_invitation") == []
    assert status.clone.invitation_arn is None and status.clone.unshared is True


def test_a_crash_after_every_call_makes_one_share_and_one_clone(restore, foreign, cloud):
    status = restore(other_account()).run(crash_every_step=True)
    assert status.phase == Phase.SUCCEEDED, status.message
    created = [c for c in cloud.calls_to("create_resource_share") if c.error is None]
    assert len(created) == 1 and len(ram_world(cloud).shares) == 1
    assert len([c for c in cloud.calls_to("restore_cluster_to_point_in_time") if c.error is None]) == 1
    assert [s["status"] for s in ram_world(cloud).shares.values()] == ["DELETED"]
    assert status.clone.invitation_arn is not None  # accepted in a pass whose status write was lost


def test_a_rejected_invitation_fails_the_restore_and_deletes_the_share(restore, foreign, cloud, monkeypatch):
    """Someone in the target account rejected the invitation: it can never be accepted now, so waiting for the
    association would wait forever."""
    create = FakeRam.create_share

    def create_then_reject(self, *args, **kwargs):
        share = create(self, *args, **kwargs)
        for invitation in ram_world(cloud).shares[share["resourceShareArn"]]["invitations"].values():
            invitation["status"] = "REJECTED"
        return share

    monkeypatch.setattr(FakeRam, "create_share", create_then_reject)
    status = restore(other_account()).run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "ClusterShareFailed" and "REJECTED" in status.failure.message
    assert cloud.calls_to("accept_resource_share_invitation") == []
    assert cloud.calls_to("restore_cluster_to_point_in_time") == []
    assert [s["status"] for s in ram_world(cloud).shares.values()] == ["DELETED"]


def test_a_failed_share_fails_the_restore_once_and_is_deleted_on_the_way_out(restore, foreign, cloud, monkeypatch):
    """RAM reports the share FAILED: no second share is made (whatever its client token still covers), and the
    cleanup deletes the failed one, found by its UID tag."""
    create = FakeRam.create_share

    def create_failed(self, *args, **kwargs):
        share = create(self, *args, **kwargs)
        ram_world(cloud).shares[share["resourceShareArn"]]["status"] = "FAILED"
        return {**share, "status": "ACTIVE"}  # the answer predates the failure

    monkeypatch.setattr(FakeRam, "create_share", create_failed)
    status = restore(other_account()).run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "ClusterShareFailed")
    assert len(cloud.calls_to("create_resource_share")) == 1
    assert [s["status"] for s in ram_world(cloud).shares.values()] == ["DELETED"]


def test_the_limit_of_fifteen_clones_per_source_is_named_when_aws_refuses_the_clone(restore, foreign, cloud):
    """Preflight cannot count the source's clones in other accounts: AWS's refusal in RestoringCluster says
    which limit it is, and the share goes."""
    run = restore(other_account())
    run.target.fail("restore_cluster_to_point_in_time", aws_error(
        "DBClusterQuotaExceededFault", "DB cluster prod already has 15 cross-account clones",
        action="restore_cluster_to_point_in_time", http_status=403))
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "CloneLimitReached", status.failure.message
    assert "15 cross-account clones" in status.failure.message and SOURCE_ACCOUNT in status.failure.message
    assert [s["status"] for s in ram_world(cloud).shares.values()] == ["DELETED"]


def test_only_a_cross_account_clone_of_the_source_counts_against_one_per_account(restore, foreign, cloud):
    """A cluster of the target account in the source's clone group that is not a cross-account clone (a full
    copy of one inherits the group) is not what AWS limits to one per account."""
    foreign.clusters[SOURCE]["CloneGroupId"] = "group-of-prod"
    run = restore(other_account())
    run.target.add_cluster("full-copy", instances=0)
    run.target.clusters["full-copy"].update(CloneGroupId="group-of-prod", CrossAccountClone=False)
    assert run.run().phase == Phase.SUCCEEDED


def test_the_operator_accepts_only_invitations_to_shares_named_as_it_names_them(restore, foreign):
    [statement] = [s for s in operator_policy()["Statement"] if "ram:AcceptResourceShareInvitation" in s["Action"]]
    pattern = statement["Condition"]["StringLike"]["ram:ResourceShareName"]
    assert statement["Action"] == ["ram:AcceptResourceShareInvitation"]
    assert fnmatchcase(share_name(restore(other_account()).context()), pattern)
    assert not fnmatchcase("shared-by-someone-else", pattern)


def test_without_the_share_the_target_account_cannot_clone(foreign, cloud):
    """The fake's rule the step relies on: a cluster of another account is cloned by ARN only once shared."""
    from aurora_restore.errors import TerminalError

    target = cloud.rds(SOURCE_REGION)
    with pytest.raises(TerminalError) as refused:
        target.restore_cluster_to_point_in_time(
            DBClusterIdentifier="copy", SourceDBClusterIdentifier=foreign.clusters[SOURCE]["DBClusterArn"],
            RestoreType="copy-on-write", UseLatestRestorableTime=True)
    assert refused.value.reason == "DBClusterNotFoundFault"


def test_a_failure_after_sharing_deletes_the_share(restore, foreign, cloud):
    run = restore(other_account())
    run.target.fail("restore_cluster_to_point_in_time",
                    aws_error("KMSKeyNotAccessibleFault", "no access", action="restore_cluster_to_point_in_time"))
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "KmsKeyNotUsable" and SOURCE_KEY in status.failure.message
    assert [s["status"] for s in ram_world(cloud).shares.values()] == ["DELETED"]
    assert status.clone.unshared is True


def test_a_cancel_while_cloning_deletes_the_share_and_the_partial_clone(restore, foreign, cloud):
    run = restore(other_account())
    run.run_until(Phase.RESTORING_CLUSTER)
    run.step()  # the clone is being created
    assert cloud.calls_to("restore_cluster_to_point_in_time")
    status = cancel(run)
    assert status.phase == Phase.CANCELLED, status.message
    assert [s["status"] for s in ram_world(cloud).shares.values()] == ["DELETED"]
    assert TARGET not in run.target.clusters


def test_cross_account_refuses_serverless_v1(restore, foreign, cloud):
    foreign.clusters[SOURCE]["EngineMode"] = "serverless"
    status = restore(other_account()).run()
    assert status.failure.reason == "CloneServerlessCrossAccount" and cloud.mutations == []


def test_cross_account_refuses_the_aws_managed_key(restore, foreign, cloud):
    managed = cloud.account(SOURCE_ACCOUNT).kms(SOURCE_REGION).aws_managed_key_arn
    foreign.clusters[SOURCE]["KmsKeyId"] = managed
    status = restore(other_account()).run()
    assert status.failure.reason == "CloneKeyNotShareable"
    assert "AWS-managed" in status.failure.message and ram_calls(cloud) == [] and cloud.mutations == []


def test_cross_account_refuses_replacing_an_earlier_clone_of_the_same_source(restore, foreign, cloud):
    """AWS allows one cross-account clone of a source per account: the new clone cannot stand beside the old."""
    first = restore(other_account(), uid="11111111-2222-4333-8444-555555555555", name="first")
    assert first.run().phase == Phase.SUCCEEDED
    first.target.clusters[TARGET]["TagList"].append({"Key": "dbrestore.io/replaceable", "Value": "true"})
    cloud.calls.clear()
    second = restore({**other_account(), "existingTarget": {"policy": "Replace"}}, name="second")
    status = second.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "CloneLimitReached"
    assert "one cross-account clone" in status.failure.message and "replace" in status.failure.message
    assert cloud.mutations == []


def test_the_cross_account_dry_run_plan_lists_the_share(restore, foreign, cloud):
    status = restore({**other_account(), "dryRun": True}).run()
    assert status.phase == Phase.PLANNED, status.message
    actions = [(step.phase, step.action) for step in status.plan.steps]
    assert actions[:3] == [(Phase.SHARING_CLUSTER, "CreateResourceShare"),
                           (Phase.SHARING_CLUSTER, "AcceptResourceShareInvitation"),
                           (Phase.RESTORING_CLUSTER, "RestoreDBClusterToPointInTime")]
    assert actions[-1] == (Phase.CLEANING_UP, "DeleteResourceShare")
    assert status.plan.steps[2].parameters["SourceDBClusterIdentifier"] == foreign.clusters[SOURCE]["DBClusterArn"]
    assert cloud.mutations == []


# --- the tenant policy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule, allowed", [
    ({"clusterIdentifier": "prod*"}, True),
    ({"clusterIdentifier": "other"}, False),
    ({"snapshotIdentifier": "prod-*"}, False),  # a clone has no snapshot: only "*" allows it
])
def test_the_policy_checks_a_clone_like_a_point_in_time(restore, prod, cloud, rule, allowed):
    policy = {"namespaces": ["*"], "targets": [{}], "sources": [rule], "roles": ["*"]}
    status = restore(same_account(), policies={"only": policy}).run()
    if allowed:
        assert status.phase == Phase.SUCCEEDED, status.message
    else:
        assert status.failure.reason == "NotAllowedByPolicy" and cloud.mutations == []


def test_a_clone_drill_measures_its_rpo_from_the_sources_latest_restorable_time(restore, prod, cloud):
    """A drill of a clone restores into its own cluster; its RPO is the source's LatestRestorableTime (what RDS
    clones with UseLatestRestorableTime) to the start."""
    run = restore({**same_account(), "drill": {"keepFor": "1h", "rpoObjective": "1h"}})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    [clone] = cloud.calls_to("restore_cluster_to_point_in_time")
    assert clone.params["DBClusterIdentifier"] == run.context().target_identifier != TARGET
    latest = prod.clusters[SOURCE]["LatestRestorableTime"]
    assert status.drill.rpo_seconds == (status.started_at - latest).total_seconds()
