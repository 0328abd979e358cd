"""The whole RDS surface a restore needs: every request member of the three create calls is sent or excluded.

The requests are the ones the operator really makes: restores with every target and instances field set run
through the machine against the in-memory RDS, and the members of the calls it recorded are compared with
botocore's own service model (boto3/botocore are pinned exactly, so a release that adds a member is a
deliberate update of the pin and of EXCLUDED below, never a surprise in CI).
"""

import pytest
from botocore.session import get_session
from pydantic import ValidationError

from aurora_restore.api.models import ApiModel, AuroraRestoreSpec
from aurora_restore.api.phase import Phase

from .conftest import BASE_SPEC, SOURCE_REGION, TARGET, merged
from .fake_rds import ACCOUNT_ID, aws_error

KEY = f"arn:aws:kms:{SOURCE_REGION}:{ACCOUNT_ID}:key/2222bbbb-3333-cccc-4444-dddd5555eeee"
PI_KEY = f"arn:aws:kms:{SOURCE_REGION}:{ACCOUNT_ID}:key/3333cccc-4444-dddd-5555-eeee6666ffff"
MONITORING_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/rds-monitoring"

# Every field of spec.target (and of target.instances) set, to values the in-memory RDS accepts.
EVERY_TARGET_FIELD = {
    "engineVersion": "16.1",
    "port": 6543,
    "dbSubnetGroupName": "private",
    "vpcSecurityGroupIds": ["sg-0123456789abcdef0"],
    "dbClusterParameterGroupName": "cluster-params",
    "kmsKeyId": KEY,
    "deletionProtection": True,
    "iamDatabaseAuthentication": True,
    "enableCloudwatchLogsExports": ["postgresql"],
    "serverlessV2Scaling": {"minCapacity": 0.5, "maxCapacity": 8},
    "storageType": "aurora-iopt1",
    "backupRetentionPeriod": 14,
    "preferredBackupWindow": "03:00-03:30",
    "preferredMaintenanceWindow": "Sun:05:00-Sun:05:30",
    "copyTagsToSnapshot": False,
    "availabilityZones": ["eu-west-1a", "eu-west-1b"],
    "networkType": "DUAL",
    "tags": {"team": "data"},
    "instances": {
        "count": 2,
        "instanceClass": "db.serverless",
        "dbParameterGroupName": "instance-params",
        "availabilityZone": "eu-west-1b",
        "promotionTier": 3,
        "preferredMaintenanceWindow": "mon:06:00-mon:06:30",
        "performanceInsights": {"enabled": True, "kmsKeyId": PI_KEY, "retentionPeriod": 93},
        "enhancedMonitoring": {"interval": 30, "roleArn": MONITORING_ROLE},
        "autoMinorVersionUpgrade": False,
        "caCertificateIdentifier": "rds-ca-rsa2048-g1",
        "publiclyAccessible": False,
    },
}
# Target fields that change who makes the calls or where, not what a restore call carries.
NOT_REQUEST_FIELDS = {
    "target.region": "another region only adds a snapshot copy before the same restore",
    "target.roleArn": "the identity the calls are made with",
}
POINT_IN_TIME_ONLY_LACKS = {"target.engineVersion", "target.availabilityZones"}  # refused by the spec

# Request members the operator deliberately never sends, each with why; both cluster restores share most of them.
CLUSTER_RESTORE_EXCLUDED: dict[str, str] = {
    "AssociatedRoles": "IAM roles the cluster itself uses (S3, Lambda): not in the spec yet",
    "BacktrackWindow": "Aurora MySQL backtracking: not in the spec yet",
    "DBClusterInstanceClass": "Multi-AZ DB clusters only, not Aurora (instances.instanceClass)",
    "Domain": "Kerberos (Active Directory) authentication: not in the spec yet",
    "DomainIAMRoleName": "Kerberos (Active Directory) authentication: not in the spec yet",
    "EnableInternetAccessGateway": "Aurora PostgreSQL without VPC networking: not in the spec yet",
    "EnableVPCNetworking": "Aurora PostgreSQL without VPC networking: not in the spec yet",
    "EnablePerformanceInsights": "set per instance (instances.performanceInsights)",
    "PerformanceInsightsKMSKeyId": "set per instance (instances.performanceInsights.kmsKeyId)",
    "PerformanceInsightsRetentionPeriod": "set per instance (instances.performanceInsights.retentionPeriod)",
    "MonitoringInterval": "set per instance (instances.enhancedMonitoring.interval)",
    "MonitoringRoleArn": "set per instance (instances.enhancedMonitoring.roleArn)",
    "PubliclyAccessible": "for Aurora each instance's setting decides (instances.publiclyAccessible)",
    "EngineLifecycleSupport": "RDS Extended Support enrolment: not in the spec yet (AWS enrols by default)",
    "EngineMode": "provisioned, AWS's default, covers provisioned and Serverless v2 clusters",
    "Iops": "Multi-AZ DB clusters only: Aurora storage has no provisioned IOPS",
    "OptionGroupName": "Aurora clusters keep the default option group",
    "RdsCustomClusterConfiguration": "RDS Custom only",
    "ScalingConfiguration": "Aurora Serverless v1 (retired); Serverless v2 is serverlessV2Scaling",
    "TagSpecifications": "tags of the automated backups: not in the spec yet (the cluster's Tags are sent)",
    "DeletionProtection": "target.deletionProtection is set by ModifyDBCluster in Publishing, once the cluster is proven",
}
EXCLUDED: dict[str, dict[str, str]] = {
    "RestoreDBClusterFromSnapshot": {
        **CLUSTER_RESTORE_EXCLUDED,
        "DatabaseName": "the restored cluster keeps the snapshot's databases",
    },
    "RestoreDBClusterToPointInTime": {
        **CLUSTER_RESTORE_EXCLUDED,
        "SourceDbClusterResourceId": "the source is named by pointInTime.clusterIdentifier",
    },
    "CreateDBInstance": {
        "AdditionalStorageVolumes": "RDS for Oracle and SQL Server only",
        "AllocatedStorage": "Aurora storage belongs to the cluster and grows by itself",
        "BackupRetentionPeriod": "Aurora: the cluster's (target.backupRetentionPeriod)",
        "BackupTarget": "Outposts and Local Zones, not Aurora",
        "CharacterSetName": "Aurora: the cluster's databases decide",
        "CopyTagsToSnapshot": "Aurora: the cluster's (target.copyTagsToSnapshot)",
        "CustomIamInstanceProfile": "RDS Custom only",
        "DBCapacityReservationIdentifier": "capacity reservations: not in the spec yet",
        "DBName": "Aurora: the cluster's databases",
        "DBSecurityGroups": "EC2-Classic security groups (retired)",
        "DBSubnetGroupName": "Aurora: the cluster's (target.dbSubnetGroupName)",
        "DBSystemId": "RDS for Oracle only",
        "DatabaseInsightsMode": "Aurora instances inherit it from the cluster",
        "DedicatedLogVolume": "RDS instances with their own storage, not Aurora",
        "DeletionProtection": "Aurora: the cluster's (target.deletionProtection)",
        "Domain": "Aurora: the cluster's domain",
        "DomainAuthSecretArn": "self-managed Active Directory, not Aurora",
        "DomainDnsIps": "self-managed Active Directory, not Aurora",
        "DomainFqdn": "self-managed Active Directory, not Aurora",
        "DomainIAMRoleName": "Aurora: the cluster's domain",
        "DomainOu": "self-managed Active Directory, not Aurora",
        "EnableCloudwatchLogsExports": "Aurora: the cluster's (target.enableCloudwatchLogsExports)",
        "EnableCustomerOwnedIp": "RDS on Outposts only",
        "EnableIAMDatabaseAuthentication": "Aurora: the cluster's (target.iamDatabaseAuthentication)",
        "EngineLifecycleSupport": "Aurora: the cluster's",
        "EngineVersion": "Aurora instances run the cluster's version (target.engineVersion)",
        "Iops": "Aurora storage belongs to the cluster",
        "KmsKeyId": "Aurora: the cluster's (target.kmsKeyId)",
        "LicenseModel": "not Aurora",
        "ManageMasterUserPassword": "Aurora: the cluster's (masterPassword)",
        "MasterUserAuthenticationType": "Aurora: the cluster's",
        "MasterUserPassword": "Aurora: the cluster's (masterPassword)",
        "MasterUserSecretKmsKeyId": "Aurora: the cluster's",
        "MasterUsername": "Aurora: the cluster's, from the snapshot",
        "MaxAllocatedStorage": "Aurora storage belongs to the cluster and grows by itself",
        "MultiAZ": "Aurora: the cluster's zones; more instances are more zones",
        "MultiTenant": "RDS for Oracle only",
        "NcharCharacterSetName": "RDS for Oracle only",
        "NetworkType": "Aurora: the cluster's (target.networkType)",
        "OptionGroupName": "not Aurora",
        "Port": "Aurora: the cluster's (target.port)",
        "PreferredBackupWindow": "Aurora: the cluster's (target.preferredBackupWindow)",
        "ProcessorFeatures": "RDS for Oracle only",
        "StorageEncrypted": "Aurora: the cluster's (target.kmsKeyId, the snapshot)",
        "StorageThroughput": "Aurora storage belongs to the cluster",
        "StorageType": "Aurora: the cluster's (target.storageType)",
        "TagSpecifications": "tags of an instance's own automated backups, which Aurora instances do not have",
        "TdeCredentialArn": "RDS for Oracle and SQL Server only",
        "TdeCredentialPassword": "RDS for Oracle and SQL Server only",
        "Timezone": "RDS for SQL Server only",
        "VpcSecurityGroupIds": "Aurora: the cluster's (target.vpcSecurityGroupIds)",
    },
}
GATEWAY_METHODS = {
    "RestoreDBClusterFromSnapshot": "restore_cluster_from_snapshot",
    "RestoreDBClusterToPointInTime": "restore_cluster_to_point_in_time",
    "CreateDBInstance": "create_instance",
}


def model_members(operation: str) -> set[str]:
    return set(get_session().get_service_model("rds").operation_model(operation).input_shape.members)


def unset_fields(model: ApiModel, path: str) -> set[str]:
    """Dotted camelCase paths of the fields below `model` the document left out."""
    missing = set()
    for name, info in type(model).model_fields.items():
        field_path = f"{path}.{info.alias or name}"
        value = getattr(model, name)
        if name not in model.model_fields_set:
            missing.add(field_path)
        elif isinstance(value, ApiModel):
            missing |= unset_fields(value, field_path)
    return missing


def prepare(run) -> None:
    """Make the groups, security group and key of EVERY_TARGET_FIELD exist, so Preflight lets it through."""
    run.target.add_group("subnet group", "private")
    run.target.add_group("cluster parameter group", "cluster-params")
    run.target.add_group("parameter group", "instance-params")
    run.target_ec2.add_security_group("sg-0123456789abcdef0")
    run.target_kms.add_key(KEY)


@pytest.fixture
def snapshot_run(restore):
    run = restore({"target": EVERY_TARGET_FIELD})
    prepare(run)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    return run


def point_in_time_run(restore, number: int, **when):
    """Restore number `number` (its own name, UID and target), from cluster "prod" at a point in time."""
    target = {k: v for k, v in EVERY_TARGET_FIELD.items() if f"target.{k}" not in POINT_IN_TIME_ONLY_LACKS}
    run = restore(
        {"source": {"snapshotIdentifier": None, "pointInTime": {"clusterIdentifier": "prod", **when}},
         "target": {**target, "clusterIdentifier": f"pit-{number}"}},
        uid=f"{number:08d}-0000-4000-8000-000000000000",
        name=f"pit-{number}",
    )
    if "prod" not in run.source.clusters:
        run.source.add_cluster("prod", instances=1)
    prepare(run)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    return run


@pytest.fixture
def sent(snapshot_run, restore, cloud) -> dict[str, set[str]]:
    """The members each of the three calls carried, over a snapshot restore and both point-in-time kinds."""
    point_in_time_run(restore, 1, useLatestRestorableTime=True)
    point_in_time_run(restore, 2, restoreTime="2025-03-01T06:30:00Z")
    return {
        operation: {key for call in cloud.calls_to(method) for key in call.params}
        for operation, method in GATEWAY_METHODS.items()
    }


def test_the_spec_used_sets_every_target_field():
    """A new spec field must be added to EVERY_TARGET_FIELD, so the test below sees where it goes."""
    spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"target": EVERY_TARGET_FIELD}))
    assert unset_fields(spec.target, "target") == set(NOT_REQUEST_FIELDS)


@pytest.mark.parametrize("operation", list(GATEWAY_METHODS))
def test_every_request_member_is_sent_or_excluded_with_a_reason(operation, sent):
    members = model_members(operation)
    excluded = EXCLUDED[operation]
    assert sent[operation] - members == set(), "sent but not in botocore's model"
    assert set(excluded) - members == set(), "stale EXCLUDED entries: botocore no longer has them"
    assert set(excluded) & sent[operation] == set(), "EXCLUDED but sent: remove them from EXCLUDED"
    assert members - sent[operation] - set(excluded) == set(), (
        "request members neither mapped from the spec nor EXCLUDED with a reason: map them (steps/cluster.py) "
        "or add them to EXCLUDED"
    )
    assert all(reason.strip() and "\n" not in reason for reason in excluded.values())


def test_every_field_reaches_the_request(snapshot_run, cloud):
    [restored] = cloud.calls_to("restore_cluster_from_snapshot")
    assert {key: restored.params[key] for key in (
        "StorageType", "BackupRetentionPeriod", "PreferredBackupWindow", "CopyTagsToSnapshot", "AvailabilityZones",
        "NetworkType", "EngineVersion", "KmsKeyId",
    )} == {
        "StorageType": "aurora-iopt1",
        "BackupRetentionPeriod": 14,
        "PreferredBackupWindow": "03:00-03:30",
        "CopyTagsToSnapshot": False,
        "AvailabilityZones": ["eu-west-1a", "eu-west-1b"],
        "NetworkType": "DUAL",
        "EngineVersion": "16.1",
        "KmsKeyId": KEY,
    }
    assert "PreferredMaintenanceWindow" not in restored.params  # the restore calls do not take it
    creates = cloud.calls_to("create_instance")
    assert len(creates) == 2
    for create in creates:
        assert {key: value for key, value in create.params.items() if key not in ("DBInstanceIdentifier", "Tags")} == {
            "DBClusterIdentifier": TARGET,
            "Engine": "aurora-postgresql",
            "DBInstanceClass": "db.serverless",
            "DBParameterGroupName": "instance-params",
            "AvailabilityZone": "eu-west-1b",
            "PromotionTier": 3,
            "PreferredMaintenanceWindow": "mon:06:00-mon:06:30",
            "EnablePerformanceInsights": True,
            "PerformanceInsightsKMSKeyId": PI_KEY,
            "PerformanceInsightsRetentionPeriod": 93,
            "MonitoringInterval": 30,
            "MonitoringRoleArn": MONITORING_ROLE,
            "AutoMinorVersionUpgrade": False,
            "CACertificateIdentifier": "rds-ca-rsa2048-g1",
            "PubliclyAccessible": False,
        }


def test_the_cluster_maintenance_window_is_set_once_after_the_restore(snapshot_run, cloud):
    """ModifyDBCluster, applied immediately, once the cluster is available and before any instance exists."""
    [modified] = [c for c in cloud.calls_to("modify_cluster") if "PreferredMaintenanceWindow" in c.params]
    assert modified.params == {"identifier": TARGET, "PreferredMaintenanceWindow": "sun:05:00-sun:05:30"}
    assert cloud.calls.index(modified) < cloud.calls.index(cloud.calls_to("create_instance")[0])
    assert snapshot_run.target.clusters[TARGET]["PreferredMaintenanceWindow"] == "sun:05:00-sun:05:30"


def test_a_re_run_does_not_modify_a_window_that_is_already_so(restore, cloud):
    run = restore({"target": {"preferredMaintenanceWindow": "sun:05:00-sun:05:30"}})
    run.run_until(Phase.CREATING_INSTANCES)
    assert len(cloud.calls_to("modify_cluster")) == 1
    run.status = run.status.model_copy(update={"phase": Phase.RESTORING_CLUSTER})  # as if the advance was lost
    run.step()
    assert run.phase == Phase.CREATING_INSTANCES and len(cloud.calls_to("modify_cluster")) == 1


def test_fields_left_out_are_not_sent(restore, cloud):
    """Absent fields take AWS's defaults; only the promotion tiers and CopyTagsToSnapshot are always sent."""
    assert restore().run().phase == Phase.SUCCEEDED
    [restored] = cloud.calls_to("restore_cluster_from_snapshot")
    assert set(restored.params) == {"SnapshotIdentifier", "Engine", "DBClusterIdentifier", "Tags", "CopyTagsToSnapshot"}
    assert restored.params["CopyTagsToSnapshot"] is True
    creates = cloud.calls_to("create_instance")
    assert [c.params["PromotionTier"] for c in creates] == [0, 1]
    assert {key for c in creates for key in c.params} == {
        "DBInstanceIdentifier", "DBClusterIdentifier", "Engine", "DBInstanceClass", "PromotionTier", "Tags"
    }
    assert not [c for c in cloud.calls_to("modify_cluster") if "PreferredMaintenanceWindow" in c.params]


def test_a_dry_run_plans_the_maintenance_window(restore):
    status = restore({"dryRun": True, "target": {"preferredMaintenanceWindow": "sun:05:00-sun:05:30"}}).run()
    assert status.phase == Phase.PLANNED
    [step] = [s for s in status.plan.steps if s.action == "ModifyDBCluster"]
    assert (step.phase, step.parameters["PreferredMaintenanceWindow"]) == (Phase.RESTORING_CLUSTER,
                                                                           "sun:05:00-sun:05:30")


# --- what the spec refuses, and how it says so -----------------------------------------------------------------------


def refusal(target: dict, source: dict | None = None) -> str:
    document = merged(BASE_SPEC, {"target": target, **({"source": source} if source else {})})
    with pytest.raises(ValidationError) as caught:
        AuroraRestoreSpec.model_validate(document)
    return str(caught.value)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"storageType": "gp3"}, "Input should be 'aurora' or 'aurora-iopt1'"),
        ({"backupRetentionPeriod": 0}, "greater than or equal to 1"),
        ({"backupRetentionPeriod": 36}, "less than or equal to 35"),
        ({"preferredBackupWindow": "3:00-3:30"}, "preferredBackupWindow '3:00-3:30' is not hh24:mi-hh24:mi (UTC)"),
        ({"preferredBackupWindow": "03:00-03:20"}, "shorter than the 30 minutes AWS requires"),
        ({"preferredMaintenanceWindow": "sun:05:00"}, "is not ddd:hh24:mi-ddd:hh24:mi (UTC, days mon to sun)"),
        ({"preferredMaintenanceWindow": "sun:05:00-sun:05:29"}, "shorter than the 30 minutes AWS requires"),
        ({"preferredMaintenanceWindow": "sun:05:00-sun:05:00"}, "shorter than the 30 minutes AWS requires"),
        (
            {"preferredBackupWindow": "23:50-00:20", "preferredMaintenanceWindow": "mon:00:10-mon:00:40"},
            "spec.target.preferredMaintenanceWindow 'mon:00:10-mon:00:40' overlaps preferredBackupWindow",
        ),
        (
            {"preferredBackupWindow": "05:00-05:30", "instances": {"preferredMaintenanceWindow": "tue:05:15-tue:05:45"}},
            "spec.target.instances.preferredMaintenanceWindow 'tue:05:15-tue:05:45' overlaps preferredBackupWindow",
        ),
        ({"networkType": "IPV6"}, "Input should be 'IPV4' or 'DUAL'"),
        ({"instances": {"promotionTier": 16}}, "less than or equal to 15"),
        ({"instances": {"enhancedMonitoring": {"interval": 2}}}, "Input should be 0, 1, 5, 10, 15, 30 or 60"),
        ({"instances": {"enhancedMonitoring": {"interval": 60}}}, "roleArn is required when interval is above 0"),
        (
            {"instances": {"enhancedMonitoring": {"interval": 0, "roleArn": MONITORING_ROLE}}},
            "roleArn needs an interval above 0",
        ),
        ({"instances": {"performanceInsights": {"retentionPeriod": 94}}}, "AWS takes 7, 731 or a multiple of 31"),
        ({"instances": {"performanceInsights": {"retentionPeriod": 744}}}, "AWS takes 7, 731 or a multiple of 31"),
        (
            {"instances": {"performanceInsights": {"enabled": False, "retentionPeriod": 7}}},
            "kmsKeyId and retentionPeriod need enabled: true",
        ),
    ],
)
def test_invalid_values_are_refused_with_a_message(target, message):
    assert message in refusal(target)


@pytest.mark.parametrize(
    "target",
    [
        {"preferredBackupWindow": "23:45-00:15", "preferredMaintenanceWindow": "sun:00:15-sun:00:45"},
        {"preferredBackupWindow": "03:00-03:30", "preferredMaintenanceWindow": "sun:23:50-mon:00:20"},
        {"preferredBackupWindow": "03:00-03:30", "preferredMaintenanceWindow": "sun:03:30-sun:04:00"},
        {"instances": {"performanceInsights": {"retentionPeriod": 731}}},
        {"instances": {"performanceInsights": {"retentionPeriod": 713}}},
        {"instances": {"performanceInsights": {"enabled": False}}},
        {"instances": {"enhancedMonitoring": {"interval": 0}}},
    ],
)
def test_edge_values_are_accepted(target):
    AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"target": target}))


def test_maintenance_windows_are_kept_in_lower_case_as_aws_reports_them():
    spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"target": {
        "preferredMaintenanceWindow": "Sun:05:00-SUN:05:30", "instances": {"preferredMaintenanceWindow": "Mon:06:00-mon:06:30"}
    }}))
    assert spec.target.preferred_maintenance_window == "sun:05:00-sun:05:30"
    assert spec.target.instances.preferred_maintenance_window == "mon:06:00-mon:06:30"


@pytest.mark.parametrize("target", [{"engineVersion": "16.1"}, {"availabilityZones": ["eu-west-1a"]}])
def test_point_in_time_refuses_what_its_call_does_not_take(target):
    source = {"snapshotIdentifier": None, "pointInTime": {"clusterIdentifier": "prod", "useLatestRestorableTime": True}}
    assert "spec.source.pointInTime keeps the source cluster's engine version and zones" in refusal(target, source)


def test_a_refused_maintenance_window_fails_naming_the_field(restore, cloud):
    run = restore({"target": {"preferredMaintenanceWindow": "sun:03:00-sun:03:30"}})
    run.target.fail("modify_cluster", aws_error(
        "InvalidParameterCombination", "The maintenance window overlaps the backup window.", action="modify_cluster"
    ))
    status = run.run()
    assert (status.phase, status.failure.phase, status.failure.reason) == (
        Phase.FAILED, Phase.RESTORING_CLUSTER, "InvalidParameterCombination"
    )
    assert status.failure.message.startswith("spec.target.preferredMaintenanceWindow 'sun:03:00-sun:03:30': ")
    assert not cloud.calls_to("create_instance")
