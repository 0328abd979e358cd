"""Accounts and sources end to end: cross-account sharing, point-in-time restores, role allowances, dry runs
and preflight — with the operator on web-identity credentials only."""

import json
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from restores import (
    REPLACEABLE,
    CallWindow,
    create_restore,
    delete_and_wait_gone,
    get_restore,
    make_source,
    wait_for_phase,
    wait_until,
)

SOURCE_ACCOUNT = "222222222222"
OPERATOR_ACCOUNT = "123456789012"  # where the operator's own identity acts
THIRD_ACCOUNT = "333333333333"
SOURCE_ROLE = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/aurora-restore-source"


def session_in(account: str, simulator_url: str) -> boto3.session.Session:
    """A session acting in `account`, through the simulator's STS as a user of that account would."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=simulator_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/tester", RoleSessionName="tests")[
        "Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


@pytest.fixture
def source_account(simulator_url):
    return session_in(SOURCE_ACCOUNT, simulator_url)


def customer_key(session, region: str, alias: str) -> str:
    """A customer managed key whose key policy also lets the operator's account use it: RDS copies a shared
    encrypted snapshot only for an account with access to the owner's key (the simulator's rulebook)."""
    kms = session.client("kms", region_name=region)
    owner = session.client("sts", region_name=region).get_caller_identity()["Account"]
    principals = sorted({f"arn:aws:iam::{owner}:root", f"arn:aws:iam::{OPERATOR_ACCOUNT}:root"})
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "kms:*", "Resource": "*"}]}
    key_id = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def restore_accounts(rds, identifier: str) -> list[str]:
    attributes = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=identifier)
    for attribute in attributes["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]:
        if attribute["AttributeName"] == "restore":
            return attribute.get("AttributeValues", [])
    return []


@pytest.mark.parametrize("target_region", ["us-east-1", "us-west-2"])
def test_cross_account_restore_of_a_manual_snapshot(
    api_client, aws, source_account, operator, namespace, uniq, aws_calls, target_region, simulator_url
):
    source_rds = source_account.client("rds", region_name="us-east-1")
    source_key = customer_key(source_account, "us-east-1", f"alias/src-{uniq}")
    make_source(source_rds, f"src-{uniq}", [f"snap-{uniq}"], kms_key_id=source_key)
    customer_key(aws, target_region, f"alias/tgt-{uniq}")
    copy = {"kmsKeyId": f"alias/tgt-{uniq}"}
    if target_region != "us-east-1":  # a shared snapshot is first copied within its own region
        customer_key(aws, "us-east-1", f"alias/stage-{uniq}")
        copy["sourceRegionKmsKeyId"] = f"alias/stage-{uniq}"

    create_restore(api_client, namespace, "xacct", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}", "accountId": SOURCE_ACCOUNT,
                   "roleArn": SOURCE_ROLE, "externalId": "restore-team"},
        "target": {"region": target_region, "clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "copy": copy,
    })
    wait_for_phase(api_client, namespace, "xacct", {"CopyingSnapshot", "Succeeded", "Failed"}, timeout=60)
    # While shared: the target account sees the snapshot by ARN, a third account does not.
    arn = source_rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"snap-{uniq}")[
        "DBClusterSnapshots"][0]["DBClusterSnapshotArn"]
    third = session_in(THIRD_ACCOUNT, simulator_url).client("rds", region_name="us-east-1")
    with pytest.raises(third.exceptions.DBClusterSnapshotNotFoundFault):
        third.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=arn)

    status = wait_for_phase(api_client, namespace, "xacct", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    phases = [entry["phase"] for entry in status["history"]]
    assert phases[:5] == ["Pending", "ResolvingSnapshot", "Preflight", "SharingSnapshot", "CopyingSnapshot"]
    shared = status["sharedSnapshot"]
    assert shared["sharedWith"] == "123456789012" and shared["unshared"] is True and not shared["intermediate"]
    assert restore_accounts(source_rds, f"snap-{uniq}") == []  # the share is removed afterwards
    target_rds = aws.client("rds", region_name=target_region)
    cluster = target_rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert cluster["Status"] == "available" and ":123456789012:" in cluster["DBClusterArn"]
    assert status["copiedSnapshot"]["deleted"] is True
    if target_region != "us-east-1":
        assert status["stagedSnapshot"]["region"] == "us-east-1" and status["stagedSnapshot"]["deleted"] is True
    # The source role was assumed (with its external ID), and only through STS.
    assumed = [call for call in aws_calls.calls(service="sts", action="AssumeRole")
               if "aurora-restore-operator" in call["user_agent"]]  # not the test's own `tester` sessions
    assert assumed and {call["parameters"].get("RoleArn") for call in assumed} == {SOURCE_ROLE}, assumed
    assert {call["parameters"].get("ExternalId") for call in assumed} == {"restore-team"}


@pytest.mark.parametrize("staging_key", ["given", "default"])
def test_cross_account_restore_of_an_automated_snapshot_cross_region(
    api_client, aws, source_account, operator, namespace, uniq, staging_key
):
    """Without copy.sourceRegionKmsKeyId the intermediate copy (never shared) uses the target's alias/aws/rds."""
    source_rds = source_account.client("rds", region_name="us-east-1")
    source_key = customer_key(source_account, "us-east-1", f"alias/src-{uniq}")
    make_source(source_rds, f"src-{uniq}", [], kms_key_id=source_key)
    customer_key(aws, "us-west-2", f"alias/tgt-{uniq}")
    customer_key(aws, "us-east-1", f"alias/stage-{uniq}")

    create_restore(api_client, namespace, "auto", {
        "source": {"region": "us-east-1", "accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE,
                   "latest": {"clusterIdentifier": f"src-{uniq}", "snapshotType": "automated"}},
        "target": {"region": "us-west-2", "clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "copy": {"kmsKeyId": f"alias/tgt-{uniq}",
                 **({"sourceRegionKmsKeyId": f"alias/stage-{uniq}"} if staging_key == "given" else {})},
    })
    status = wait_for_phase(api_client, namespace, "auto", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    [check] = [c for c in status["preflight"] if c["name"] == "spec.copy.sourceRegionKmsKeyId"]
    assert ("alias/aws/rds" in check.get("message", "")) == (staging_key == "default")
    assert status["snapshot"]["snapshotType"] == "automated"
    shared = status["sharedSnapshot"]
    assert shared["intermediate"] is True and shared["identifier"].endswith("-share")
    assert shared["unshared"] is True and shared["deleted"] is True
    leftovers = [s["DBClusterSnapshotIdentifier"] for s in source_rds.describe_db_cluster_snapshots()[
        "DBClusterSnapshots"] if s["DBClusterSnapshotIdentifier"] == shared["identifier"] and s["Status"] != "deleting"]
    assert leftovers == []


def test_aws_managed_key_snapshot_is_refused_before_anything_is_shared(
    api_client, aws, source_account, operator, namespace, uniq, simulator
):
    source_rds = source_account.client("rds", region_name="us-east-1")
    make_source(source_rds, f"src-{uniq}", [f"snap-{uniq}"], kms_key_id="alias/aws/rds")
    customer_key(aws, "us-east-1", f"alias/tgt-{uniq}")
    window = CallWindow(simulator)
    create_restore(api_client, namespace, "managed-key", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}", "accountId": SOURCE_ACCOUNT,
                   "roleArn": SOURCE_ROLE},
        "target": {"clusterIdentifier": f"tgt-{uniq}"},
        "copy": {"kmsKeyId": f"alias/tgt-{uniq}"},
    })
    status = wait_for_phase(api_client, namespace, "managed-key", {"Succeeded", "Failed"})["status"]
    assert status["failure"]["reason"] == "SnapshotKeyNotShareable"
    assert status["failure"]["phase"] == "Preflight"
    assert "customer-managed" in status["failure"]["message"]
    assert window.calls(service="rds", action="ModifyDBClusterSnapshotAttribute") == []
    assert restore_accounts(source_rds, f"snap-{uniq}") == []


def test_point_in_time_restore_waits_until_the_time_is_restorable(
    api_client, aws, operator, namespace, uniq, simulator, aws_calls
):
    """LatestRestorableTime trails the present (here by 12 s): a moment just past is waited for, then restored."""
    simulator.set_restorable_lag(12)  # the simulator fixture puts the lag back
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [])
    time.sleep(2)
    wanted = (datetime.now(timezone.utc) - timedelta(seconds=1)).replace(microsecond=0)
    create_restore(api_client, namespace, "pitr", {
        "source": {"region": "us-east-1", "pointInTime": {"clusterIdentifier": f"src-{uniq}",
                                                          "restoreTime": wanted.isoformat()}},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
    })
    waiting = wait_until(
        lambda: (lambda s: s if "is not restorable yet" in s.get("message", "") else None)(
            get_restore(api_client, namespace, "pitr").get("status") or {}),
        timeout=30, what="the restore waiting for the restorable window",
    )
    assert waiting["phase"] == "ResolvingSnapshot"
    assert aws_calls.calls(service="rds", action="RestoreDBClusterToPointInTime") == []

    status = wait_for_phase(api_client, namespace, "pitr", {"Succeeded", "Failed"}, timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    restores = aws_calls.calls(service="rds", action="RestoreDBClusterToPointInTime")
    assert [call["parameters"].get("DBClusterIdentifier") for call in restores] == [f"tgt-{uniq}"]
    assert datetime.fromisoformat(restores[0]["timestamp"]) >= wanted + timedelta(seconds=12)
    assert "snapshot" not in status
    cluster = rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert cluster["Status"] == "available"


def test_point_in_time_restore_to_the_latest_restorable_time_with_the_aws_lag(
    api_client, aws, operator, namespace, uniq, simulator, aws_calls
):
    """With RDS's own five-minute lag, useLatestRestorableTime restores at once (RDS picks the moment)."""
    simulator.set_restorable_lag(300)
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [])
    create_restore(api_client, namespace, "pitr", {
        "source": {"region": "us-east-1", "pointInTime": {"clusterIdentifier": f"src-{uniq}",
                                                          "useLatestRestorableTime": True}},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
    })
    status = wait_for_phase(api_client, namespace, "pitr", {"Succeeded", "Failed"}, timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    assert [call["parameters"].get("DBClusterIdentifier")
            for call in aws_calls.calls(service="rds", action="RestoreDBClusterToPointInTime")] == [f"tgt-{uniq}"]
    # The lag was in force: the young source's window still ends where it began, minutes behind the present.
    source = rds.describe_db_clusters(DBClusterIdentifier=f"src-{uniq}")["DBClusters"][0]
    assert source["LatestRestorableTime"] == source["EarliestRestorableTime"]


def test_point_in_time_restore_to_another_region_is_rejected(api_client, namespace):
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        create_restore(api_client, namespace, "pitr-region", {
            "source": {"region": "us-east-1", "pointInTime": {"clusterIdentifier": "a", "useLatestRestorableTime": True}},
            "target": {"region": "us-west-2", "clusterIdentifier": "b"},
        })
    assert refused.value.status == 422 and "pointInTime restores in the source cluster's region" in refused.value.body


def test_a_role_no_policy_allows_is_refused(api_client, operator, namespace, uniq, simulator, session_policy):
    window = CallWindow(simulator)
    role = "arn:aws:iam::123456789012:role/someone-elses-role"
    create_restore(api_client, namespace, "role", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "roleArn": role},
    })
    status = wait_for_phase(api_client, namespace, "role", {"Succeeded", "Failed"})["status"]
    assert status["failure"]["reason"] == "NotAllowedByPolicy" and status["failure"]["phase"] == "Pending"
    assert f"policy {session_policy}: spec.target.roleArn {role!r} is not among its roles" in status["failure"]["message"]
    assert namespace in status["failure"]["message"]
    assert [c for c in window.calls(service="sts", action="AssumeRole")] == []
    assert window.calls(service="rds") == []


def _listing(aws, source_account) -> dict:
    """Everything RDS holds in both accounts and both regions (for before/after comparisons)."""
    listing = {}
    for name, session in (("target", aws), ("source", source_account)):
        for region in ("us-east-1", "us-west-2"):
            rds = session.client("rds", region_name=region)
            listing[(name, region, "clusters")] = sorted(
                (c["DBClusterIdentifier"], c["Status"]) for c in rds.describe_db_clusters()["DBClusters"])
            listing[(name, region, "instances")] = sorted(
                i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"])
            listing[(name, region, "snapshots")] = sorted(
                s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"])
    return listing


def test_dry_run_plans_and_changes_nothing(api_client, aws, source_account, operator, namespace, uniq, simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    make_source(rds, f"tgt-{uniq}", [], tags=REPLACEABLE)
    customer_key(aws, "us-west-2", f"alias/tgt-{uniq}")
    before = _listing(aws, source_account)
    window = CallWindow(simulator)
    create_restore(api_client, namespace, "dry", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 2}},
        "existingTarget": {"policy": "Replace"},
        "dryRun": True,
    })
    status = wait_for_phase(api_client, namespace, "dry", {"Planned", "Succeeded", "Failed"})["status"]
    assert status["phase"] == "Planned", status
    actions = [step["action"] for step in status["plan"]["steps"]]
    assert actions == ["RestoreDBClusterFromSnapshot", "CreateDBInstance", "CreateDBInstance", "ModifyDBCluster",
                       "ModifyDBCluster", "DeleteDBCluster"]
    assert [step["phase"] for step in status["plan"]["steps"]][-3:] == ["SwappingTarget", "SwappingTarget",
                                                                        "RetiringPrevious"]
    assert all(check["passed"] for check in status["preflight"])
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "True", "Progressing": "False", "Failed": "False"}
    mutating = [c["action"] for c in window.calls(service="rds") if not c["action"].startswith(("Describe", "List"))]
    assert mutating == []
    assert _listing(aws, source_account) == before


def test_preflight_reports_every_problem_at_once(api_client, aws, operator, namespace, uniq, simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    make_source(rds, f"tgt-{uniq}", [])
    window = CallWindow(simulator)
    create_restore(api_client, namespace, "three", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "dbSubnetGroupName": f"no-such-group-{uniq}",
                   "kmsKeyId": f"alias/no-such-key-{uniq}"},
    })
    status = wait_for_phase(api_client, namespace, "three", {"Succeeded", "Failed"})["status"]
    assert status["failure"]["reason"] == "PreflightFailed"
    message = status["failure"]["message"]
    assert "3 problem(s)" in message
    for fragment in (f"no-such-group-{uniq}", f"alias/no-such-key-{uniq}", f"tgt-{uniq}"):
        assert fragment in message
    assert sorted(c["name"] for c in status["preflight"] if not c["passed"]) == [
        "spec.target.clusterIdentifier", "spec.target.dbSubnetGroupName", "spec.target.kmsKeyId"]
    mutating = [c["action"] for c in window.calls(service="rds") if not c["action"].startswith(("Describe", "List"))]
    assert mutating == []


def test_preflight_accepts_groups_and_keys_that_exist(api_client, aws, operator, namespace, uniq):
    ec2 = aws.client("ec2", region_name="us-east-1")
    rds = aws.client("rds", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"us-east-1{zone}")[
        "Subnet"]["SubnetId"] for n, zone in ((1, "a"), (2, "b"))]
    group = ec2.create_security_group(GroupName=f"db-{uniq}", Description="db", VpcId=vpc)["GroupId"]
    rds.create_db_subnet_group(DBSubnetGroupName=f"subnets-{uniq}", DBSubnetGroupDescription="db",
                               SubnetIds=subnets)
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=f"cluster-pg-{uniq}",
                                          DBParameterGroupFamily="aurora-postgresql15", Description="cluster")
    rds.create_db_parameter_group(DBParameterGroupName=f"pg-{uniq}", DBParameterGroupFamily="aurora-postgresql15",
                                  Description="instances")
    key = customer_key(aws, "us-east-1", f"alias/storage-{uniq}")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])

    create_restore(api_client, namespace, "groups", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {
            "clusterIdentifier": f"tgt-{uniq}", "engineVersion": "15.5", "dbSubnetGroupName": f"subnets-{uniq}",
            "vpcSecurityGroupIds": [group], "dbClusterParameterGroupName": f"cluster-pg-{uniq}", "kmsKeyId": key,
            "instances": {"count": 1, "dbParameterGroupName": f"pg-{uniq}"},
        },
    })
    status = wait_for_phase(api_client, namespace, "groups", {"Succeeded", "Failed"}, timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    checked = {check["name"] for check in status["preflight"] if check["passed"]}
    assert {"spec.target.engineVersion", "spec.target.dbSubnetGroupName", "spec.target.vpcSecurityGroupIds",
            "spec.target.dbClusterParameterGroupName", "spec.target.instances.dbParameterGroupName",
            "spec.target.kmsKeyId"} <= checked
    cluster = rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert cluster["EngineVersion"] == "15.5" and cluster["DBSubnetGroup"] == f"subnets-{uniq}"


def _uid_tagged(rds, uid: str) -> list[str]:
    found = [s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots(SnapshotType="manual")[
        "DBClusterSnapshots"] if s["Status"] != "deleting" and uid in {
            t["Value"] for t in rds.list_tags_for_resource(ResourceName=s["DBClusterSnapshotArn"])["TagList"]}]
    found += [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"] if uid in {
        t["Value"] for t in rds.list_tags_for_resource(ResourceName=c["DBClusterArn"])["TagList"]}]
    return found


def test_two_restores_of_one_shared_snapshot_one_cancelled_keep_the_share_for_the_other(
    api_client, aws, source_account, operator, namespace, uniq, simulator
):
    source_rds = source_account.client("rds", region_name="us-east-1")
    source_key = customer_key(source_account, "us-east-1", f"alias/src-{uniq}")
    make_source(source_rds, f"src-{uniq}", [f"snap-{uniq}"], kms_key_id=source_key)
    customer_key(aws, "us-east-1", f"alias/tgt-{uniq}")
    target_rds = aws.client("rds", region_name="us-east-1")
    simulator.set_delay(4.0)  # the copies take long enough to cancel one of them
    try:
        for name in ("first", "second"):
            create_restore(api_client, namespace, name, {
                "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}", "accountId": SOURCE_ACCOUNT,
                           "roleArn": SOURCE_ROLE},
                "target": {"clusterIdentifier": f"{name}-{uniq}", "instances": {"count": 1}},
                "copy": {"kmsKeyId": f"alias/tgt-{uniq}"},
            })
        first = wait_for_phase(api_client, namespace, "first", "CopyingSnapshot", timeout=60)
        wait_for_phase(api_client, namespace, "second", {"CopyingSnapshot", "RestoringCluster"}, timeout=60)
        delete_and_wait_gone(api_client, namespace, "first")
        assert restore_accounts(source_rds, f"snap-{uniq}") == ["123456789012"]  # still needed by "second"
    finally:
        simulator.set_delay(1.0)
    assert _uid_tagged(target_rds, first["metadata"]["uid"]) == []
    status = wait_for_phase(api_client, namespace, "second", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    assert restore_accounts(source_rds, f"snap-{uniq}") == []  # the last one removed it
    assert status["sharedSnapshot"]["unshared"] is True


def test_cancel_in_sharing_snapshot_removes_the_intermediate_copy_and_its_share(
    api_client, aws, source_account, operator, namespace, uniq, simulator
):
    source_rds = source_account.client("rds", region_name="us-east-1")
    source_key = customer_key(source_account, "us-east-1", f"alias/src-{uniq}")
    make_source(source_rds, f"src-{uniq}", [], kms_key_id=source_key)
    customer_key(aws, "us-east-1", f"alias/tgt-{uniq}")
    simulator.set_delay(6.0)  # the manual copy of the automated snapshot holds the restore in SharingSnapshot
    try:
        create_restore(api_client, namespace, "sharing", {
            "source": {"region": "us-east-1", "accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE,
                       "latest": {"clusterIdentifier": f"src-{uniq}", "snapshotType": "automated"}},
            "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
            "copy": {"kmsKeyId": f"alias/tgt-{uniq}"},
        })
        restore = wait_for_phase(api_client, namespace, "sharing", "SharingSnapshot", timeout=60)
        uid = restore["metadata"]["uid"]
        wait_until(lambda: _uid_tagged(source_rds, uid), timeout=30, what="the intermediate copy exists")
        delete_and_wait_gone(api_client, namespace, "sharing")
    finally:
        simulator.set_delay(1.0)
    assert _uid_tagged(source_rds, uid) == []
    assert _uid_tagged(aws.client("rds", region_name="us-east-1"), uid) == []
