"""The fake refuses what AWS refuses, with the errors RdsGateway would raise; the machine tests rely on that."""

import pytest

from aurora_restore.errors import RetryableError, TerminalError

from .fake_account import FakeIdentity
from .fake_rds import RESTORABLE_FROM, RESTORABLE_UNTIL, FakeCloud, FakeLock, aws_error, throttling

REGION = "eu-west-1"


@pytest.fixture
def rds():
    return FakeCloud(ticks=1).rds(REGION)


def restore_params(**changes):
    return {"DBClusterIdentifier": "staging", "SnapshotIdentifier": "snap", "Engine": "aurora-postgresql", **changes}


def test_errors_are_classified_like_the_gateway_does():
    busy = aws_error("InvalidDBClusterStateFault", "busy", action="delete_cluster")
    assert isinstance(busy, RetryableError) and busy.reason == "AwsResourceBusy"
    assert isinstance(throttling("describe_cluster"), RetryableError)
    kms = aws_error("KMSKeyNotAccessibleFault", "no key")
    assert isinstance(kms, TerminalError) and kms.reason == "KMSKeyNotAccessibleFault"
    assert kms.message == "copy_db_cluster_snapshot in eu-west-1 refused by AWS: KMSKeyNotAccessibleFault: no key"


def test_resources_settle_after_the_configured_number_of_looks(rds):
    rds.add_snapshot("snap")
    assert rds.restore_cluster_from_snapshot(**restore_params())["Status"] == "creating"
    assert rds.describe_cluster("staging")["Status"] == "creating"
    assert rds.describe_cluster("staging")["Status"] == "available"


def test_identifiers_are_case_insensitive_and_stored_in_lower_case(rds):
    rds.add_snapshot("Snap")
    params = restore_params(DBClusterIdentifier="Staging", SnapshotIdentifier="SNAP")
    cluster = rds.restore_cluster_from_snapshot(**params)
    assert cluster["DBClusterIdentifier"] == "staging"
    assert rds.describe_cluster("STAGING")["DBClusterIdentifier"] == "staging"


def test_describe_snapshot_by_identifier_or_arn_and_none_when_missing(rds):
    arn = rds.add_snapshot("snap")["DBClusterSnapshotArn"]
    assert rds.describe_snapshot(arn)["DBClusterSnapshotIdentifier"] == "snap"
    assert rds.describe_snapshot("snap")["DBClusterSnapshotArn"] == arn
    assert rds.describe_snapshot("other") is None


def test_list_cluster_snapshots_follows_snapshot_type(rds):
    rds.add_snapshot("manual")
    rds.add_snapshot("rds:auto", snapshot_type="automated")
    rds.add_snapshot("shared", shared_from="210987654321")
    rds.add_snapshot("elsewhere", "other-cluster")

    def names(kind):
        found = rds.list_cluster_snapshots("prod", kind)
        return sorted(s["DBClusterSnapshotIdentifier"].rsplit(":", 1)[-1] for s in found)

    assert names("manual") == ["manual"]
    assert names("automated") == ["auto"]
    assert names("shared") == ["shared"]
    assert names("any") == ["auto", "manual", "shared"]


def test_restore_onto_an_existing_identifier_is_refused(rds):
    rds.add_snapshot("snap")
    rds.add_cluster("staging")
    with pytest.raises(TerminalError) as caught:
        rds.restore_cluster_from_snapshot(**restore_params())
    assert caught.value.reason == "DBClusterAlreadyExistsFault"


def test_deleting_a_cluster_with_live_instances_is_refused_as_busy(rds):
    rds.add_cluster("staging", instances=1)
    with pytest.raises(RetryableError) as caught:
        rds.delete_cluster("staging", None)
    assert caught.value.reason == "AwsResourceBusy"
    assert "non-deleting state" in caught.value.message
    rds.delete_instance("staging-instance-1")
    rds.delete_cluster("staging", "final")  # deleting instances no longer block
    assert rds.describe_cluster("staging")["Status"] == "deleting"
    assert rds.snapshots["final"]["DBClusterIdentifier"] == "staging"


def test_deleting_a_protected_cluster_is_refused(rds):
    rds.add_cluster("staging", deletion_protection=True)
    with pytest.raises(TerminalError) as caught:
        rds.delete_cluster("staging", None)
    assert caught.value.reason == "InvalidParameterCombination"


def test_deleting_what_is_not_there_is_fine(rds):
    rds.delete_cluster("nothing", None)
    rds.delete_instance("nothing")
    rds.delete_snapshot("nothing")


def test_the_first_instance_is_the_writer(rds):
    rds.add_cluster("staging")
    for number in (1, 2):
        rds.create_instance(
            DBInstanceIdentifier=f"i{number}", DBClusterIdentifier="staging", Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
        )
    members = rds.describe_cluster("staging")["DBClusterMembers"]
    assert [(m["DBInstanceIdentifier"], m["IsClusterWriter"]) for m in members] == [("i1", True), ("i2", False)]


def test_cross_region_copy_of_an_encrypted_snapshot_needs_a_usable_key():
    cloud = FakeCloud()
    source, target = cloud.rds("eu-west-1"), cloud.rds("us-east-1")
    arn = source.add_snapshot("snap", encrypted=True)["DBClusterSnapshotArn"]
    args = {"source_arn": arn, "source_region": "eu-west-1", "identifier": "copy", "copy_tags": True, "tags": {}}
    with pytest.raises(TerminalError):
        target.copy_snapshot(kms_key_id=None, **args)
    target.usable_kms_keys = {"good"}
    with pytest.raises(TerminalError) as caught:
        target.copy_snapshot(kms_key_id="bad", **args)
    assert caught.value.reason == "KMSKeyNotAccessibleFault"
    copy = target.copy_snapshot(kms_key_id="good", **args)
    assert (copy["Status"], copy["KmsKeyId"]) == ("copying", "good")
    with pytest.raises(TerminalError) as caught:
        target.copy_snapshot(kms_key_id="good", **args)
    assert caught.value.reason == "DBClusterSnapshotAlreadyExistsFault"


def test_a_snapshot_being_created_cannot_be_deleted(rds):
    rds.add_snapshot("snap", status="creating")
    with pytest.raises(RetryableError):
        rds.delete_snapshot("snap")


def test_queued_errors_are_raised_once_each_in_order_and_logged(rds):
    rds.fail("describe_cluster", throttling("describe_cluster"), times=2)
    for _ in range(2):
        with pytest.raises(RetryableError):
            rds.describe_cluster("x")
    assert rds.describe_cluster("x") is None
    assert [c.error for c in rds.cloud.calls] == ["AwsThrottling", "AwsThrottling", None]


def test_fake_lock_is_shared_per_target():
    holders = {}
    mine, theirs = FakeLock(holders, "eu-west-1/t", "a/one"), FakeLock(holders, "eu-west-1/t", "a/two")
    assert mine.acquire() is None and mine.acquire() is None
    assert theirs.acquire() == "a/one"
    theirs.release()
    assert holders == {"eu-west-1/t": "a/one"}
    mine.release()
    assert theirs.acquire() is None


# --- what ConfiguringAccess reads and changes -----------------------------------------------------------------------


def test_clusters_describe_master_user_endpoint_and_port(rds):
    rds.add_snapshot("snap", engine="aurora-mysql")
    rds.endpoint_host = "127.0.0.1"
    rds.restore_cluster_from_snapshot(**restore_params(Engine="aurora-mysql", Port=3307, DatabaseName="orders"))
    rds.add_cluster("other")
    restored, other = rds.describe_cluster("staging"), rds.describe_cluster("other")
    assert (restored["MasterUsername"], restored["Endpoint"], restored["Port"]) == ("admin", "127.0.0.1", 3307)
    assert restored["DatabaseName"] == "orders" and "MasterUserSecret" not in restored
    assert other["MasterUsername"] == "postgres" and other["Port"] == 5432 and "DatabaseName" not in other


def test_managing_the_master_password_leaves_a_secret_once_the_cluster_settles(rds):
    rds.add_cluster("staging")
    modified = rds.modify_cluster("staging", ManageMasterUserPassword=True)
    assert modified["Status"] == "modifying" and "MasterUserSecret" not in modified
    assert rds.describe_cluster("staging")["Status"] == "modifying"
    settled = rds.describe_cluster("staging")
    assert settled["Status"] == "available"
    assert settled["MasterUserSecret"]["SecretArn"].startswith(f"arn:aws:secretsmanager:{REGION}:123456789012:secret:")


def test_setting_the_master_password_resets_credentials_then_settles(rds):
    rds.add_cluster("staging")
    assert rds.modify_cluster("staging", MasterUserPassword="hunter2-hunter2")["Status"] == "resetting-master-credentials"
    assert rds.master_passwords == {"staging": "hunter2-hunter2"}
    rds.describe_cluster("staging")
    assert rds.describe_cluster("staging")["Status"] == "available"


def test_modifying_a_cluster_that_is_not_available_is_refused_as_busy(rds):
    rds.add_cluster("staging", status="backing-up")
    with pytest.raises(RetryableError) as raised:
        rds.modify_cluster("staging", ManageMasterUserPassword=True)
    assert raised.value.reason == "AwsResourceBusy"
    assert rds.cloud.calls[-1].error == "AwsResourceBusy"


def test_a_managed_and_a_given_password_together_are_refused(rds):
    rds.add_cluster("staging")
    with pytest.raises(TerminalError) as raised:
        rds.modify_cluster("staging", ManageMasterUserPassword=True, MasterUserPassword="hunter2")
    assert raised.value.reason == "InvalidParameterCombination"


# --- accounts, sharing and the other services ---------------------------------------------------------------------

OTHER_ACCOUNT = "210987654321"


def copy_args(arn: str, **changes):
    return {"source_arn": arn, "source_region": REGION, "identifier": "mine", "kms_key_id": None, "copy_tags": False,
            "tags": {}, **changes}


def test_a_shared_snapshot_can_be_copied_by_arn_by_the_account_it_is_shared_with_only():
    theirs = FakeCloud()
    owner = theirs.account(OTHER_ACCOUNT).rds(REGION)
    arn = owner.add_snapshot("snap")["DBClusterSnapshotArn"]
    ours = theirs.rds(REGION)  # the harness account, in the same world
    with pytest.raises(TerminalError) as caught:
        ours.copy_snapshot(**copy_args(arn))
    assert caught.value.reason == "DBClusterSnapshotNotFoundFault"

    owner.share_snapshot("snap", ours.cloud.account_id)
    assert owner.restore_accounts("snap") == [ours.cloud.account_id]
    copy = ours.copy_snapshot(**copy_args(arn))
    assert copy["SourceDBClusterSnapshotArn"] == arn and "mine" in ours.snapshots
    assert [c.account for c in theirs.calls[-3:]] == [OTHER_ACCOUNT, OTHER_ACCOUNT, ours.cloud.account_id]

    owner.unshare_snapshot("snap", ours.cloud.account_id)
    assert owner.restore_accounts("snap") == []
    with pytest.raises(TerminalError):
        ours.copy_snapshot(**copy_args(arn, identifier="again"))


def test_a_shared_snapshot_is_copied_only_within_its_region_and_an_encrypted_one_only_with_a_key():
    cloud = FakeCloud()
    owner = cloud.account(OTHER_ACCOUNT).rds(REGION)
    arn = owner.add_snapshot("snap", encrypted=True)["DBClusterSnapshotArn"]
    owner.share_snapshot("snap", cloud.account_id)
    with pytest.raises(TerminalError) as caught:
        cloud.rds("us-east-1").copy_snapshot(**copy_args(arn, kms_key_id="key"))
    assert caught.value.reason == "DBClusterSnapshotNotFoundFault"
    with pytest.raises(TerminalError) as caught:
        cloud.rds(REGION).copy_snapshot(**copy_args(arn))
    assert caught.value.reason == "InvalidParameterValue" and "shared from another account" in caught.value.message
    assert cloud.rds(REGION).copy_snapshot(**copy_args(arn, kms_key_id="key"))["KmsKeyId"] == "key"


def test_aws_shares_neither_automated_snapshots_nor_ones_with_the_aws_managed_key(rds):
    rds.add_snapshot("rds:auto", snapshot_type="automated")
    rds.add_snapshot("managed", encrypted=True, kms_key_id=rds.cloud.kms(REGION).aws_managed_key_arn)
    rds.add_snapshot("copying", status="copying")
    for name, reason in [("rds:auto", "InvalidParameterValue"), ("managed", "InvalidParameterValue")]:
        with pytest.raises(TerminalError) as caught:
            rds.share_snapshot(name, OTHER_ACCOUNT)
        assert caught.value.reason == reason
    with pytest.raises(RetryableError):
        rds.share_snapshot("copying", OTHER_ACCOUNT)
    with pytest.raises(RetryableError):
        rds.unshare_snapshot("copying", OTHER_ACCOUNT)
    assert rds.shared_with == {}


def test_sharing_twice_and_unsharing_what_is_not_there_are_no_errors(rds):
    rds.add_snapshot("snap")
    rds.share_snapshot("snap", OTHER_ACCOUNT)
    rds.share_snapshot("snap", OTHER_ACCOUNT)
    assert rds.restore_accounts("snap") == [OTHER_ACCOUNT]
    rds.unshare_snapshot("snap", "999999999999")
    rds.unshare_snapshot("gone", OTHER_ACCOUNT)
    assert rds.restore_accounts("snap") == [OTHER_ACCOUNT]
    assert {c.action for c in rds.cloud.mutations} == {"share_snapshot", "unshare_snapshot"}


def test_point_in_time_restores_need_a_source_cluster_and_a_time_in_its_window(rds):
    rds.add_cluster("prod")
    params = {"SourceDBClusterIdentifier": "prod", "DBClusterIdentifier": "staging"}
    for bad, reason in [
        ({"RestoreToTime": RESTORABLE_UNTIL, "UseLatestRestorableTime": True}, "InvalidParameterCombination"),
        ({"RestoreToTime": RESTORABLE_FROM.replace(year=2024)}, "InvalidRestoreFault"),
        ({"UseLatestRestorableTime": True, "SourceDBClusterIdentifier": "nope"}, "DBClusterNotFoundFault"),
    ]:
        with pytest.raises(TerminalError) as caught:
            rds.restore_cluster_to_point_in_time(**{**params, **bad})
        assert caught.value.reason == reason
    cluster = rds.restore_cluster_to_point_in_time(**params, RestoreToTime=RESTORABLE_UNTIL)
    assert (cluster["Status"], cluster["Engine"]) == ("creating", "aurora-postgresql")
    assert "EarliestRestorableTime" not in cluster  # a new cluster has no backups yet
    described = rds.describe_cluster("prod")
    window = (described["EarliestRestorableTime"], described["LatestRestorableTime"])
    assert window == (RESTORABLE_FROM, RESTORABLE_UNTIL)


def test_preflight_look_ups(rds):
    assert rds.valid_upgrade_targets("aurora-postgresql", "15.4")[:2] == ["15.5", "15.6"]
    assert rds.valid_upgrade_targets("aurora-postgresql", "9.6.22") is None
    assert not rds.exists("subnet group", "private")
    rds.add_group("subnet group", "private")
    assert rds.exists("subnet group", "private") and not rds.exists("parameter group", "private")
    assert rds.cloud.mutations == []


def test_kms_knows_its_keys_by_id_arn_and_alias_and_the_aws_managed_one():
    cloud = FakeCloud()
    kms = cloud.kms(REGION)
    assert kms.describe_key("alias/aws/rds")["KeyManager"] == "AWS"
    assert kms.describe_key("nope") is None
    made = kms.add_key("k1", alias="alias/mine")
    for name in ("k1", made["Arn"], "alias/mine", kms.alias_arn("alias/mine")):
        assert kms.describe_key(name)["KeyManager"] == "CUSTOMER"
    assert cloud.account(OTHER_ACCOUNT).kms(REGION).describe_key("k1") is None
    assert {c.action for c in cloud.calls} == {"describe_key"} and cloud.mutations == []


def test_ec2_names_the_missing_security_groups_and_identity_asks_once():
    cloud = FakeCloud()
    ec2 = cloud.ec2(REGION)
    ec2.add_security_group("sg-1")
    assert ec2.missing_security_groups(["sg-1", "sg-2", "sg-3"]) == ["sg-2", "sg-3"]
    identity = FakeIdentity(cloud.account(OTHER_ACCOUNT), REGION)
    assert identity.account_id == identity.account_id == OTHER_ACCOUNT
    assert [c.action for c in cloud.calls].count("get_caller_identity") == 1


def test_an_unencrypted_snapshot_cannot_be_encrypted_by_copying_it():
    """The simulator's rule (validation.py) in the fake too: KmsKeyId on an unencrypted copy is refused."""
    cloud = FakeCloud()
    source, target = cloud.rds("eu-west-1"), cloud.rds("us-east-1")
    arn = source.add_snapshot("plain")["DBClusterSnapshotArn"]
    args = {"source_arn": arn, "source_region": "eu-west-1", "copy_tags": True, "tags": {}}
    with pytest.raises(TerminalError) as caught:
        target.copy_snapshot(identifier="refused", kms_key_id="any-key", **args)
    assert caught.value.reason == "InvalidParameterCombination"
    assert "refused" not in target.snapshots
    assert target.copy_snapshot(identifier="plain-copy", kms_key_id=None, **args)["StorageEncrypted"] is False
