"""Fast clones end to end (spec.source.clone): in one account (the example manifest, applied as it is) and across
accounts through an AWS RAM share the operator creates, uses and removes; Preflight refusals of what AWS would
refuse (a source without an instance, another region, the AWS-managed key across accounts, the one-clone-per-account
limit that a Replace of an earlier cross-account clone meets)."""

import json
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client
from restores import (
    create_restore,
    delete_and_wait_gone,
    make_source,
    wait_for_phase,
    wait_until,
)

from aurora_restore.api import GROUP, PLURAL, VERSION

SOURCE_ACCOUNT = "222222222222"
OPERATOR_ACCOUNT = "123456789012"
SOURCE_ROLE = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/aurora-restore-source"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "refresh-fast-clone.yaml"
FINISHED = {"Succeeded", "Failed"}


def session_in(account: str, simulator_url: str) -> boto3.session.Session:
    """A session acting in `account`, through the simulator's STS as a user of that account would."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=simulator_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/tester", RoleSessionName="tests")[
        "Credentials"]
    return boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                 aws_secret_access_key=credentials["SecretAccessKey"],
                                 aws_session_token=credentials["SessionToken"], region_name="us-east-1")


@pytest.fixture
def source_account(simulator_url):
    return session_in(SOURCE_ACCOUNT, simulator_url)


def running_cluster(rds, identifier: str, instances: int = 1, kms_key_id: str | None = None) -> dict:
    """A source cluster with `instances` available DB instances (a clone needs one)."""
    make_source(rds, identifier, [], kms_key_id=kms_key_id)
    for number in range(1, instances + 1):
        name = f"{identifier}-{number}"
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=identifier,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        wait_until(lambda: rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0][
            "DBInstanceStatus"] == "available", what=f"instance {name} available")
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]


def customer_key(session, region: str, alias: str) -> str:
    """A customer-managed key whose key policy also lets the operator's account use it."""
    kms = session.client("kms", region_name=region)
    owner = session.client("sts", region_name=region).get_caller_identity()["Account"]
    principals = sorted({f"arn:aws:iam::{owner}:root", f"arn:aws:iam::{OPERATOR_ACCOUNT}:root"})
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "kms:*", "Resource": "*"}]}
    key_id = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def cross_account_spec(uniq: str, **target) -> dict:
    return {
        "source": {"region": "us-east-1", "clone": {"clusterIdentifier": f"src-{uniq}"},
                   "accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE, "externalId": "restore-team"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}, **target},
    }


def phases_of(status: dict) -> list[str]:
    return [entry["phase"] for entry in status["history"]]


def shares_of(session, uniq_uid: str) -> list[dict]:
    """The source account's RAM shares carrying the restore's UID tag (deleted ones too: RAM lists them)."""
    ram = session.client("ram", region_name="us-east-1")
    return ram.get_resource_shares(resourceOwner="SELF", tagFilters=[
        {"tagKey": "dbrestore.io/restore-uid", "tagValues": [uniq_uid]}])["resourceShares"]


def test_the_fast_clone_example_clones_a_running_cluster(api_client, aws, operator, namespace, aws_calls):
    [manifest] = [doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc]
    spec = manifest["spec"]
    region, source = spec["source"]["region"], spec["source"]["clone"]["clusterIdentifier"]
    rds = aws.client("rds", region_name=region)
    running_cluster(rds, source)
    manifest["metadata"]["namespace"] = namespace
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    name, target = manifest["metadata"]["name"], spec["target"]["clusterIdentifier"]

    status = wait_for_phase(api_client, namespace, name, FINISHED, timeout=240)["status"]
    assert status["phase"] == "Succeeded", status
    assert phases_of(status)[:4] == ["Pending", "ResolvingSnapshot", "Preflight", "RestoringCluster"]
    assert "SharingCluster" not in phases_of(status)
    assert status["clone"]["sourceClusterIdentifier"] == source and status["clone"]["instanceCount"] == 1
    [clone] = [c for c in aws_calls.calls(service="rds", action="RestoreDBClusterToPointInTime")
               if "aurora-restore-operator" in c["user_agent"]]
    assert clone["parameters"]["SourceDBClusterIdentifier"] == source
    assert aws_calls.calls(service="ram") == []
    cluster = rds.describe_db_clusters(DBClusterIdentifier=target)["DBClusters"][0]
    original = rds.describe_db_clusters(DBClusterIdentifier=source)["DBClusters"][0]
    assert cluster["Status"] == "available" and cluster["CrossAccountClone"] is False
    assert cluster["CloneGroupId"] == original["CloneGroupId"]  # copy-on-write: one clone group (the log has no
    # RestoreType; the unit tests check the parameters)
    assert len(cluster["DBClusterMembers"]) == spec["target"]["instances"]["count"] == len(status["instances"])
    assert original["Status"] == "available"  # the source is only read

    delete_and_wait_gone(api_client, namespace, name, timeout=240)  # deletionPolicy Delete: the clone goes too
    wait_until(lambda: not rds.describe_db_clusters(Filters=[
        {"Name": "db-cluster-id", "Values": [target]}])["DBClusters"], timeout=120, what=f"{target} deleted")


def test_a_cross_account_clone_shares_the_cluster_through_ram_then_removes_the_share(
    api_client, aws, source_account, operator, namespace, uniq, aws_calls
):
    source_rds = source_account.client("rds", region_name="us-east-1")
    key = customer_key(source_account, "us-east-1", f"alias/src-{uniq}")
    source = running_cluster(source_rds, f"src-{uniq}", kms_key_id=key)
    create_restore(api_client, namespace, "xclone", cross_account_spec(uniq))

    obj = wait_for_phase(api_client, namespace, "xclone", FINISHED, timeout=240)
    status = obj["status"]
    assert status["phase"] == "Succeeded", status
    assert phases_of(status)[:5] == ["Pending", "ResolvingSnapshot", "Preflight", "SharingCluster",
                                     "RestoringCluster"]
    record = status["clone"]
    assert record["sourceClusterArn"] == source["DBClusterArn"] and record["sourceAccount"] == SOURCE_ACCOUNT
    assert record["resourceShareArn"] and record["invitationArn"] and record["sharedAt"]
    assert record["unshared"] is True
    # The share was made by the source role, tagged with the restore's UID, and is deleted now.
    [share] = shares_of(source_account, obj["metadata"]["uid"])
    assert share["resourceShareArn"] == record["resourceShareArn"] and share["status"] == "DELETED"
    created = [c for c in aws_calls.calls(service="ram", action="CreateResourceShare")
               if "aurora-restore-operator" in c["user_agent"]]
    assert [c["account"] for c in created] == [SOURCE_ACCOUNT]
    accepted = [c for c in aws_calls.calls(service="ram", action="AcceptResourceShareInvitation")
                if "aurora-restore-operator" in c["user_agent"]]
    assert [c["account"] for c in accepted] == [OPERATOR_ACCOUNT]
    [clone] = [c for c in aws_calls.calls(service="rds", action="RestoreDBClusterToPointInTime")
               if "aurora-restore-operator" in c["user_agent"]]
    assert clone["account"] == OPERATOR_ACCOUNT
    assert clone["parameters"]["SourceDBClusterIdentifier"] == source["DBClusterArn"]
    target_rds = aws.client("rds", region_name="us-east-1")
    cluster = target_rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert cluster["Status"] == "available" and cluster["CrossAccountClone"] is True
    assert f":{OPERATOR_ACCOUNT}:" in cluster["DBClusterArn"] and len(cluster["DBClusterMembers"]) == 1
    # With the share gone the target account no longer sees the source cluster.
    with pytest.raises(target_rds.exceptions.DBClusterNotFoundFault):
        target_rds.describe_db_clusters(DBClusterIdentifier=source["DBClusterArn"])

    # Limit: AWS allows one cross-account clone of a source per account, so a Replace of this clone cannot build
    # the new clone beside it: Preflight refuses, saying why, and nothing is made.
    window = len(aws_calls.calls())
    create_restore(api_client, namespace, "again", {**cross_account_spec(uniq),
                                                    "existingTarget": {"policy": "Replace"}})
    status = wait_for_phase(api_client, namespace, "again", FINISHED, timeout=120)["status"]
    assert status["phase"] == "Failed" and status["failure"]["reason"] == "CloneLimitReached", status
    assert "one cross-account clone" in status["failure"]["message"]
    assert "replace" in status["failure"]["message"]
    later = aws_calls.calls()[window:]
    assert not [c for c in later if c["action"] in ("CreateResourceShare", "RestoreDBClusterToPointInTime",
                                                    "ModifyDBCluster", "DeleteDBCluster")]
    assert target_rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]["Status"] == \
        "available"


def _refused(api_client, namespace: str, name: str, spec: dict, aws_calls) -> dict:
    create_restore(api_client, namespace, name, spec)
    status = wait_for_phase(api_client, namespace, name, FINISHED, timeout=120)["status"]
    assert status["phase"] == "Failed", status
    assert not [c for c in aws_calls.calls() if c["action"] in (
        "CreateResourceShare", "RestoreDBClusterToPointInTime")]
    return status


def test_preflight_refuses_a_source_without_an_instance(api_client, aws, operator, namespace, uniq, aws_calls):
    running_cluster(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", instances=0)
    status = _refused(api_client, namespace, "bare", {
        "source": {"region": "us-east-1", "clone": {"clusterIdentifier": f"src-{uniq}"}},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}}}, aws_calls)
    assert status["failure"]["reason"] == "CloneSourceHasNoInstance"
    assert "no DB instance" in status["failure"]["message"]


def test_preflight_refuses_another_region(api_client, aws, operator, namespace, uniq, aws_calls):
    running_cluster(aws.client("rds", region_name="us-east-1"), f"src-{uniq}")
    status = _refused(api_client, namespace, "away", {
        "source": {"region": "us-east-1", "clone": {"clusterIdentifier": f"src-{uniq}"}},
        "target": {"region": "us-west-2", "clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}}},
        aws_calls)
    assert status["failure"]["reason"] == "CloneRegionMismatch"
    assert "us-east-1" in status["failure"]["message"]


def test_preflight_refuses_the_aws_managed_key_across_accounts(
    api_client, source_account, operator, namespace, uniq, aws_calls
):
    source_rds = source_account.client("rds", region_name="us-east-1")
    running_cluster(source_rds, f"src-{uniq}", kms_key_id="alias/aws/rds")
    status = _refused(api_client, namespace, "managed", cross_account_spec(uniq), aws_calls)
    assert status["failure"]["reason"] == "CloneKeyNotShareable"
    assert "AWS-managed" in status["failure"]["message"]
    assert aws_calls.calls(service="ram") == []
