"""RestoringCluster and CreatingInstances: the new cluster, then the instances that make it usable."""

from typing import Any

from ..api.models import ClusterStatus, InstanceStatus
from ..api.phase import Phase
from ..aws.errors import KMS_KEY_CODES
from ..aws.rds import AVAILABLE, FAILED_STATUSES, as_tag_list
from ..errors import RetryableError, TerminalError
from .context import RESTORE_UID_TAG, RestoreContext
from .outcomes import Advance, Outcome, Wait
from .rds_statuses import status_failure

# Where AWS rejects a restore parameter, the spec field to name in the message.
FIELD_FOR_ERROR = {
    "KMSKeyNotAccessibleFault": "spec.target.kmsKeyId",
    "DBSubnetGroupNotFoundFault": "spec.target.dbSubnetGroupName",
    "DBClusterParameterGroupNotFound": "spec.target.dbClusterParameterGroupName",
    "DBClusterParameterGroupNotFoundFault": "spec.target.dbClusterParameterGroupName",
    "InvalidVPCNetworkStateFault": "spec.target.vpcSecurityGroupIds",
    "DBParameterGroupNotFound": "spec.target.instances.dbParameterGroupName",
    "DBParameterGroupNotFoundFault": "spec.target.instances.dbParameterGroupName",
}


def restore_cluster(ctx: RestoreContext) -> Outcome:
    """Restore the cluster from the (copied) snapshot and wait until it is available.

    Calls RestoreDBClusterFromSnapshot (or RestoreDBClusterToPointInTime: a point in time, or a clone: copy-on-write
    of the source, by ARN across accounts once SharingCluster shared it) once, tagged with the restore's UID, into
    the target identifier, or into a temporary one when a cluster is being replaced (the existing target is not
    touched before SwappingTarget); a re-run finds the tagged cluster and only waits. Once it is available,
    ModifyDBCluster sets what the restore calls cannot (modify_parameters), applied immediately. Next:
    CreatingInstances. Fails when AWS rejects a parameter (the message names the spec field).
    """
    identifier = ctx.cluster_identifier
    cluster = ctx.target.rds.describe_cluster(identifier)
    if cluster is None:
        try:
            if ctx.spec.source.clone:
                cluster = ctx.target.rds.restore_cluster_to_point_in_time(**clone_parameters(ctx))
            elif ctx.spec.source.point_in_time:
                cluster = ctx.target.rds.restore_cluster_to_point_in_time(**point_in_time_parameters(ctx))
            else:
                cluster = ctx.target.rds.restore_cluster_from_snapshot(**restore_parameters(ctx))
        except TerminalError as error:
            raise blame_field(ctx, error) from None
    elif not ctx.owns(cluster):
        raise taken(ctx, identifier)

    record = cluster_status(cluster)
    if record.status in FAILED_STATUSES:
        raise status_failure("cluster", identifier, record.status, broken_left(ctx), cluster.get("KmsKeyId"))
    if record.status != AVAILABLE:
        return Wait(f"cluster {identifier} is {record.status}", updates={"cluster": record})
    changes = modify_parameters(ctx, cluster)
    if changes:  # sent at most once per poll, then looked at again: done once the cluster reports it
        try:
            record = cluster_status(ctx.target.rds.modify_cluster(identifier, **changes))
        except TerminalError as error:
            if error.reason in ("InvalidParameterCombination", "InvalidParameterValue"):
                raise TerminalError(error.reason, f"spec.target.preferredMaintenanceWindow "
                                    f"{changes['PreferredMaintenanceWindow']!r}: {error.message}") from None
            raise blame_field(ctx, error) from None
        return Wait(f"cluster {identifier}: setting {', '.join(sorted(changes))}", updates={"cluster": record})
    return Advance(Phase.CREATING_INSTANCES, f"cluster {identifier} is available", updates={"cluster": record})


def restore_parameters(ctx: RestoreContext) -> dict[str, Any]:
    """RestoreDBClusterFromSnapshot parameters: every target field the user gave, nothing they did not."""
    snapshot = ctx.status.copied_snapshot.identifier if ctx.status.copied_snapshot else ctx.status.snapshot.identifier
    return {
        "SnapshotIdentifier": snapshot,
        "Engine": ctx.status.snapshot.engine,
        **_target_parameters(ctx),
        **({"EngineVersion": ctx.spec.target.engine_version} if ctx.spec.target.engine_version else {}),
        **({"AvailabilityZones": ctx.spec.target.availability_zones} if ctx.spec.target.availability_zones else {}),
    }


def point_in_time_parameters(ctx: RestoreContext) -> dict[str, Any]:
    """RestoreDBClusterToPointInTime parameters (a full copy of the source cluster at that moment).

    It has no EngineVersion or AvailabilityZones: the spec refuses them with pointInTime (api/models.py).
    """
    pit = ctx.spec.source.point_in_time
    params = {"SourceDBClusterIdentifier": pit.cluster_identifier, "RestoreType": "full-copy", **_target_parameters(ctx)}
    if pit.restore_time:
        params["RestoreToTime"] = pit.restore_time
    else:
        params["UseLatestRestorableTime"] = True
    return params


def clone_parameters(ctx: RestoreContext) -> dict[str, Any]:
    """RestoreDBClusterToPointInTime parameters of a fast clone (spec.source.clone): copy-on-write at the latest
    restorable time, of the identifier in one account or of the shared cluster's ARN across accounts, with the
    target's parameters. No EngineVersion or AvailabilityZones: the spec refuses them with a clone."""
    return {"SourceDBClusterIdentifier": clone_source_identifier(ctx), "RestoreType": "copy-on-write",
            "UseLatestRestorableTime": True, **_target_parameters(ctx)}


def clone_source_identifier(ctx: RestoreContext) -> str:
    """What a clone's RestoreDBClusterToPointInTime names: the identifier in one account, the shared cluster's ARN
    across accounts (status.clone, recorded by ResolvingSnapshot)."""
    if ctx.spec.cross_account:
        return ctx.status.clone.source_cluster_arn
    return ctx.spec.source.clone.cluster_identifier


def modify_parameters(ctx: RestoreContext, cluster: dict[str, Any]) -> dict[str, Any]:
    """ModifyDBCluster parameters for what the restore calls do not take (target.preferredMaintenanceWindow),
    only where the available cluster differs: a re-run sends nothing that is already so."""
    wanted = ctx.spec.target.preferred_maintenance_window
    if wanted and (cluster.get("PreferredMaintenanceWindow") or "").lower() != wanted:
        return {"PreferredMaintenanceWindow": wanted}
    return {}


def _target_parameters(ctx: RestoreContext) -> dict[str, Any]:
    """What both restore calls take from spec.target. Not target.deletionProtection: a protected cluster could not
    be cleaned up after a failure or a cancel, so Publishing turns it on once the cluster is proven (publish.py)."""
    target = ctx.spec.target
    params: dict[str, Any] = {
        "DBClusterIdentifier": ctx.cluster_identifier,
        "Tags": as_tag_list(ctx.target_tags),
        "CopyTagsToSnapshot": target.copy_tags_to_snapshot,
    }
    optional = {
        "Port": target.port,
        "DBSubnetGroupName": target.db_subnet_group_name,
        "VpcSecurityGroupIds": target.vpc_security_group_ids or None,
        "DBClusterParameterGroupName": target.db_cluster_parameter_group_name,
        "KmsKeyId": restore_kms_key(ctx),
        "EnableIAMDatabaseAuthentication": target.iam_database_authentication,
        "EnableCloudwatchLogsExports": target.enable_cloudwatch_logs_exports or None,
        "StorageType": target.storage_type,
        "BackupRetentionPeriod": target.backup_retention_period,
        "PreferredBackupWindow": target.preferred_backup_window,
        "NetworkType": target.network_type,
    }
    if target.serverless_v2_scaling:
        optional["ServerlessV2ScalingConfiguration"] = {
            "MinCapacity": target.serverless_v2_scaling.min_capacity,
            "MaxCapacity": target.serverless_v2_scaling.max_capacity,
        }
    params.update({key: value for key, value in optional.items() if value is not None})
    return params


def restore_kms_key(ctx: RestoreContext) -> str | None:
    """target.kmsKeyId, else, for an unencrypted snapshot that was copied, copy.kmsKeyId: AWS cannot encrypt a
    snapshot by copying it, so the key the user gave for the copy encrypts the restored cluster."""
    if ctx.spec.target.kms_key_id:
        return ctx.spec.target.kms_key_id
    snapshot = ctx.status.snapshot
    if ctx.spec.needs_copy and snapshot is not None and snapshot.encrypted is False:
        return ctx.spec.copy_.kms_key_id
    return None


def blame_field(ctx: RestoreContext, error: TerminalError) -> TerminalError | RetryableError:
    """Rewrite an AWS refusal of the restore so it names the spec field and value at fault."""
    target = ctx.spec.target
    if error.reason == "DBClusterAlreadyExistsFault":  # appeared between describe and restore: look again
        return RetryableError("TargetAppeared", error.message)
    if error.reason in ("DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault"):
        # Our own create whose answer was lost (botocore retried it), or a describe that does not see it yet:
        # the next pass finds the instance and adopts it only if it carries this restore's UID tag (in the
        # cluster or not); one without it, inside the cluster or outside, is refused (InstanceNameTaken).
        return RetryableError("InstanceAppeared", error.message)
    if target.engine_version and error.reason in ("InvalidParameterCombination", "InvalidParameterValue"):
        if "version" in error.message.lower() or target.engine_version in error.message:
            return TerminalError(
                "InvalidEngineVersion",
                f"spec.target.engineVersion {target.engine_version!r}: the source cannot be restored to it: "
                f"{error.message}",
            )
    field = FIELD_FOR_ERROR.get(error.reason)
    clone = ctx.status.clone
    if (ctx.spec.source.clone and ctx.spec.cross_account and error.reason in KMS_KEY_CODES and clone is not None
            and not target.kms_key_id):
        return TerminalError("KmsKeyNotUsable", f"cluster {clone.source_cluster_identifier!r} of account "
                             f"{clone.source_account} cannot be cloned: its KMS key {clone.kms_key_id!r} does not let "
                             f"the target account use it (see that key's policy): {error.message}")
    if ctx.spec.source.clone and ctx.spec.cross_account and error.reason == "QuotaExceeded" and clone is not None \
            and "DBClusterQuotaExceededFault" in error.message:
        return TerminalError("CloneLimitReached", f"AWS refused the clone of cluster "
                             f"{clone.source_cluster_identifier!r} of account {clone.source_account}: it allows one "
                             f"cross-account clone of a source per account and 15 of a source and its clones in all "
                             f"accounts together; Preflight saw none in this account, so either the source has 15 "
                             f"in other accounts (which only their owners can delete), or a clone of it, or another "
                             f"cluster filling this account's DB cluster quota, appeared since: {error.message}")
    if error.reason == "KMSKeyNotAccessibleFault" and not target.kms_key_id and not ctx.spec.source.clone:
        field = "spec.copy.kmsKeyId"  # it encrypts the restore of an unencrypted snapshot (restore_kms_key)
    if field:
        return TerminalError(error.reason, f"{field}: {error.message}")
    return error


def broken_left(ctx: RestoreContext) -> str:
    """What becomes of a broken cluster after the failure: a temporary one (Replace) is deleted by the cleanup,
    one restored into the target identifier is left for inspection."""
    if ctx.cluster_identifier != ctx.target_identifier:
        return f"the operator deletes the temporary cluster {ctx.cluster_identifier!r}"
    return f"cluster {ctx.cluster_identifier!r} is left for inspection: delete it and its instances"


def cluster_status(cluster: dict[str, Any]) -> ClusterStatus:
    return ClusterStatus(
        identifier=cluster["DBClusterIdentifier"],
        arn=cluster.get("DBClusterArn"),
        endpoint=cluster.get("Endpoint"),
        reader_endpoint=cluster.get("ReaderEndpoint"),
        port=cluster.get("Port"),
        status=cluster.get("Status"),
    )


def create_instances(ctx: RestoreContext) -> Outcome:
    """Create spec.target.instances.count instances (the first is the writer) and wait until all are available.

    Calls CreateDBInstance for each missing instance (names derive from the target's and, with Replace, the UID,
    so a re-run finds them and they never collide with the replaced cluster's).
    Next: ConfiguringAccess. Fails when AWS rejects the instance class or parameter group, when the cluster or an
    instance is in a failure status (rds_statuses.py), on a cluster under the restore's identifier without its UID
    tag (TargetTaken: made again by someone else), and on an instance of a wanted name without this restore's UID
    tag (InstanceNameTaken: never adopted, in the cluster or not).
    """
    spec = ctx.spec.target.instances
    identifier = ctx.cluster_identifier
    cluster = ctx.target.rds.describe_cluster(identifier)  # once per poll: the engine and who is the writer
    if cluster is None:
        raise TerminalError("ClusterNotFound", f"restored cluster {identifier!r} no longer exists in "
                            f"{ctx.spec.target_region}")
    if not ctx.owns(cluster):  # deleted and made again by someone else under the same name: never touched
        raise taken(ctx, identifier)
    if cluster.get("Status") in FAILED_STATUSES:  # available in RestoringCluster, broken since (a KMS key disabled)
        raise status_failure("cluster", identifier, cluster["Status"], broken_left(ctx), cluster.get("KmsKeyId"))
    wanted = [ctx.instance_identifier(number) for number in range(1, spec.count + 1)]
    existing = {i["DBInstanceIdentifier"]: i for i in ctx.target.rds.list_cluster_instances(identifier)}
    created = False
    for position, instance_id in enumerate(wanted):
        if instance_id in existing:
            if not ctx.owns(existing[instance_id]):  # the name is right, the maker is not: never adopted
                raise TerminalError(
                    "InstanceNameTaken",
                    f"an instance named {instance_id!r} in cluster {identifier!r} was not made by this restore "
                    f"(it lacks the tag {RESTORE_UID_TAG}={ctx.uid}); left untouched",
                )
            continue
        found = ctx.target.rds.describe_instance(instance_id)
        if found is not None and ctx.owns(found) and _in_cluster(found, identifier):
            existing[instance_id] = found  # ours, not yet listed in the cluster (eventual consistency)
            continue
        if found is not None:
            where = "in" if _in_cluster(found, identifier) else "outside"
            maker = "" if ctx.owns(found) else f", without the tag {RESTORE_UID_TAG}={ctx.uid}"
            raise TerminalError(
                "InstanceNameTaken",
                f"an instance named {instance_id!r} already exists {where} cluster {identifier!r}{maker}; "
                f"left untouched",
            )
        existing[instance_id] = _create_instance(
            ctx, instance_id, cluster["Engine"], promotion_tier=0 if position == 0 else 1
        )
        created = True

    writers = {m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []) if m["IsClusterWriter"]}
    records = [
        InstanceStatus(
            identifier=instance_id,
            instance_class=existing[instance_id].get("DBInstanceClass"),
            writer=instance_id in writers,
            status=existing[instance_id].get("DBInstanceStatus"),
        )
        for instance_id in wanted
    ]
    updates = {"instances": records, "cluster": cluster_status(cluster)}
    broken = [r for r in records if r.status in FAILED_STATUSES]
    if broken:
        raise status_failure("instance", broken[0].identifier, broken[0].status, broken_left(ctx),
                             cluster.get("KmsKeyId"))
    ready = sum(r.status == AVAILABLE for r in records)
    if created or ready < len(records):  # the cluster described above predates what this pass created
        return Wait(f"{ready}/{len(records)} instances available", updates=updates)
    return Advance(Phase.CONFIGURING_ACCESS, f"{len(records)} instance(s) available", updates=updates)


def taken(ctx: RestoreContext, identifier: str) -> TerminalError:
    """The cluster under the restore's identifier lacks its UID tag: someone else made it, so nothing of the
    restore's (instances, passwords, masking, a rename) may touch it; it is left as it is."""
    return TerminalError(
        "TargetTaken",
        f"cluster {identifier!r} was created in {ctx.spec.target_region} by someone else while this restore was "
        f"running (it lacks the tag {RESTORE_UID_TAG}={ctx.uid}); left untouched",
    )


def _in_cluster(instance: dict[str, Any], cluster_identifier: str) -> bool:
    return (instance.get("DBClusterIdentifier") or "").lower() == cluster_identifier.lower()


def instance_parameters(ctx: RestoreContext, instance_id: str, engine: str, promotion_tier: int) -> dict[str, Any]:
    """CreateDBInstance parameters: every instances field the user gave, nothing they did not.

    `promotion_tier` (0 for the first instance, 1 for the others) applies unless instances.promotionTier is set.
    """
    spec = ctx.spec.target.instances
    params: dict[str, Any] = {
        "DBInstanceIdentifier": instance_id,
        "DBClusterIdentifier": ctx.cluster_identifier,
        "Engine": engine,
        "DBInstanceClass": spec.instance_class,
        "PromotionTier": promotion_tier if spec.promotion_tier is None else spec.promotion_tier,
        "Tags": as_tag_list(ctx.target_tags),
    }
    optional = {
        "DBParameterGroupName": spec.db_parameter_group_name,
        "AvailabilityZone": spec.availability_zone,
        "PreferredMaintenanceWindow": spec.preferred_maintenance_window,
        "AutoMinorVersionUpgrade": spec.auto_minor_version_upgrade,
        "CACertificateIdentifier": spec.ca_certificate_identifier,
        "PubliclyAccessible": spec.publicly_accessible,
    }
    if spec.performance_insights:
        optional["EnablePerformanceInsights"] = spec.performance_insights.enabled
        optional["PerformanceInsightsKMSKeyId"] = spec.performance_insights.kms_key_id
        optional["PerformanceInsightsRetentionPeriod"] = spec.performance_insights.retention_period
    if spec.enhanced_monitoring:
        optional["MonitoringInterval"] = spec.enhanced_monitoring.interval
        optional["MonitoringRoleArn"] = spec.enhanced_monitoring.role_arn
    params.update({key: value for key, value in optional.items() if value is not None})
    return params


def _create_instance(ctx: RestoreContext, instance_id: str, engine: str, promotion_tier: int) -> dict[str, Any]:
    spec = ctx.spec.target.instances
    params = instance_parameters(ctx, instance_id, engine, promotion_tier)
    try:
        return ctx.target.rds.create_instance(**params)
    except TerminalError as error:
        about_the_class = "class" in error.message.lower() or spec.instance_class in error.message
        if error.reason in ("InvalidParameterCombination", "InvalidParameterValue") and about_the_class:
            raise TerminalError(
                "InvalidInstanceClass",
                f"spec.target.instances.instanceClass {spec.instance_class!r}: {error.message}",
            ) from None
        raise blame_field(ctx, error) from None
