"""The cluster and instance settings of a restore reach AWS: what the simulator reports back after the restore."""

from restores import create_restore, make_source, wait_for_phase

MONITORING_ROLE = "arn:aws:iam::123456789012:role/rds-monitoring"


def test_cluster_and_instance_settings_are_applied(api_client, aws, operator, namespace, uniq, aws_calls):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    create_restore(api_client, namespace, "settings", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {
            "clusterIdentifier": f"tgt-{uniq}",
            "storageType": "aurora-iopt1",
            "backupRetentionPeriod": 14,
            "preferredBackupWindow": "03:00-03:30",
            "preferredMaintenanceWindow": "Sun:05:00-Sun:05:30",
            "copyTagsToSnapshot": False,
            "availabilityZones": ["us-east-1a", "us-east-1b"],
            "networkType": "DUAL",
            "instances": {
                "count": 1,
                "availabilityZone": "us-east-1b",
                "promotionTier": 3,
                "preferredMaintenanceWindow": "mon:06:00-mon:06:30",
                "performanceInsights": {"retentionPeriod": 93},
                "enhancedMonitoring": {"interval": 30, "roleArn": MONITORING_ROLE},
                "autoMinorVersionUpgrade": False,
                "caCertificateIdentifier": "rds-ca-rsa2048-g1",
                "publiclyAccessible": False,
            },
        },
    })
    status = wait_for_phase(api_client, namespace, "settings", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Succeeded", status

    cluster = rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert {key: cluster.get(key) for key in (
        "StorageType", "BackupRetentionPeriod", "PreferredBackupWindow", "PreferredMaintenanceWindow",
        "CopyTagsToSnapshot", "AvailabilityZones", "NetworkType",
    )} == {
        "StorageType": "aurora-iopt1",
        "BackupRetentionPeriod": 14,
        "PreferredBackupWindow": "03:00-03:30",
        "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
        "CopyTagsToSnapshot": False,
        "AvailabilityZones": ["us-east-1a", "us-east-1b"],
        "NetworkType": "DUAL",
    }
    # The restore calls do not take the maintenance window (the simulator's default is wed:02:40-wed:03:10): the
    # operator's one ModifyDBCluster of this cluster set it (no master password asked for, so nothing else).
    modifies = aws_calls.calls(service="rds", action="ModifyDBCluster")
    assert [call["parameters"].get("DBClusterIdentifier") for call in modifies] == [f"tgt-{uniq}"]
    assert all(call["status"] == 200 for call in modifies)

    [instance] = rds.describe_db_instances(DBInstanceIdentifier=f"tgt-{uniq}-1")["DBInstances"]
    assert {key: instance.get(key) for key in (
        "PromotionTier", "AvailabilityZone", "PreferredMaintenanceWindow", "MonitoringInterval", "MonitoringRoleArn",
        "AutoMinorVersionUpgrade", "CACertificateIdentifier", "PubliclyAccessible",
    )} == {
        "PromotionTier": 3,
        "AvailabilityZone": "us-east-1b",
        "PreferredMaintenanceWindow": "mon:06:00-mon:06:30",
        "MonitoringInterval": 30,
        "MonitoringRoleArn": MONITORING_ROLE,
        "AutoMinorVersionUpgrade": False,
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "PubliclyAccessible": False,
    }
    # The simulator keeps no Performance Insights settings: tests/unit/test_rds_surface.py shows they are sent.
