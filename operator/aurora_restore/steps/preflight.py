"""Preflight: before anything is copied, shared or deleted, check that every part of the restore can work.

Every check runs and every problem is reported at once, so a user fixes the spec in one go. A dry run ends
here, in Planned, with status.plan listing the AWS calls a real run would make.
"""

from ..api.models import PlannedStep, Plan, PreflightCheck
from ..api.phase import Phase
from .context import RDS_IDENTIFIER_MAX, RestoreContext
from .outcomes import Advance, Fail, Outcome
from .target import target_exists_message

RDS_SNAPSHOT_IDENTIFIER_MAX = 255


def run_preflight(ctx: RestoreContext) -> Outcome:
    """Checks (all read-only): engine version, KMS keys, a shareable source key, subnet/security/parameter
    groups, the target identifier, derived names. Next: SharingSnapshot (cross-account), CopyingSnapshot
    (cross-region) or ReplacingTarget; Planned for a dry run. Fails listing every problem found."""
    checks = [check for check in _checks(ctx) if check is not None]
    problems = [check for check in checks if not check.passed]
    if problems:
        listed = "; ".join(f"{n}) {check.message}" for n, check in enumerate(problems, start=1))
        reason = problems[0].reason if len(problems) == 1 else "PreflightFailed"
        return Fail(reason, f"preflight found {len(problems)} problem(s): {listed}", updates={"preflight": checks})
    if ctx.spec.dry_run:
        return Advance(Phase.PLANNED, f"dry run: {len(checks)} check(s) passed; see status.plan",
                       updates={"preflight": checks, "plan": plan(ctx)})
    if ctx.spec.cross_account:
        next_phase = Phase.SHARING_SNAPSHOT
    elif ctx.spec.needs_copy:
        next_phase = Phase.COPYING_SNAPSHOT
    else:
        next_phase = Phase.REPLACING_TARGET
    return Advance(next_phase, f"preflight: {len(checks)} check(s) passed", updates={"preflight": checks})


def _passed(name: str, message: str = "") -> PreflightCheck:
    return PreflightCheck(name=name, passed=True, message=message)


def _problem(name: str, message: str, reason: str) -> PreflightCheck:
    return PreflightCheck(name=name, passed=False, message=message, reason=reason)


def _checks(ctx: RestoreContext):
    yield check_engine_version(ctx)
    yield check_copy_key(ctx, ctx.spec.copy_.kms_key_id, "spec.copy.kmsKeyId", ctx.target_kms)
    if ctx.spec.cross_account and ctx.spec.target_region != ctx.spec.source.region:
        yield check_copy_key(
            ctx, ctx.spec.copy_.source_region_kms_key_id, "spec.copy.sourceRegionKmsKeyId", ctx.staging_kms
        )
    yield check_shareable_key(ctx)
    yield check_target_key(ctx)
    target = ctx.spec.target
    rds = ctx.target_rds
    if target.db_subnet_group_name:
        yield _group_exists(rds, "subnet group", "spec.target.dbSubnetGroupName", target.db_subnet_group_name)
    if target.db_cluster_parameter_group_name:
        yield _group_exists(
            rds, "cluster parameter group", "spec.target.dbClusterParameterGroupName",
            target.db_cluster_parameter_group_name,
        )
    if target.instances.db_parameter_group_name:
        yield _group_exists(
            rds, "parameter group", "spec.target.instances.dbParameterGroupName",
            target.instances.db_parameter_group_name,
        )
    if target.vpc_security_group_ids:
        missing = ctx.target_ec2.missing_security_groups(target.vpc_security_group_ids)
        yield (
            _problem("spec.target.vpcSecurityGroupIds", f"spec.target.vpcSecurityGroupIds: {', '.join(missing)} "
                     f"not found in {ctx.spec.target_region}", "SecurityGroupNotFound")
            if missing
            else _passed("spec.target.vpcSecurityGroupIds")
        )
    yield check_target_identifier(ctx)
    yield check_names(ctx)


def check_engine_version(ctx: RestoreContext) -> PreflightCheck | None:
    wanted = ctx.spec.target.engine_version
    snapshot = ctx.status.snapshot
    if wanted and ctx.spec.source.point_in_time:
        return _problem(
            "spec.target.engineVersion",
            f"spec.target.engineVersion {wanted!r}: a point-in-time restore keeps the source cluster's engine "
            f"version (RestoreDBClusterToPointInTime has no EngineVersion); leave it unset and upgrade afterwards",
            "InvalidEngineVersion",
        )
    if not wanted or snapshot is None or wanted == snapshot.engine_version:
        return None
    targets = ctx.target_rds.valid_upgrade_targets(snapshot.engine, snapshot.engine_version)
    if targets is not None and wanted in targets:
        return _passed("spec.target.engineVersion", f"{snapshot.engine_version} can be restored to {wanted}")
    return _problem(
        "spec.target.engineVersion",
        f"spec.target.engineVersion {wanted!r}: snapshot {snapshot.identifier!r} ({snapshot.engine} "
        f"{snapshot.engine_version}) cannot be restored to it"
        + (f"; valid targets: {', '.join(targets)}" if targets else ""),
        "InvalidEngineVersion",
    )


def check_copy_key(ctx: RestoreContext, key: str | None, field: str, kms) -> PreflightCheck | None:
    """A copy of an encrypted snapshot needs a key of the copy's region, which must exist."""
    if not ctx.spec.needs_copy or ctx.status.snapshot is None:
        return None
    if not key:
        if ctx.status.snapshot.encrypted:
            return _problem(
                field,
                f"{field} is required: snapshot {ctx.status.snapshot.identifier!r} is encrypted and its copy "
                f"must be encrypted with a KMS key of {kms.region}",
                "KmsKeyRequired",
            )
        return None
    if kms.describe_key(key) is None:
        return _problem(field, f"{field} {key!r}: no such KMS key in {kms.region}", "KmsKeyNotUsable")
    return _passed(field)


def check_shareable_key(ctx: RestoreContext) -> PreflightCheck | None:
    """AWS cannot share a snapshot encrypted with the AWS-managed key (aws/rds) with another account."""
    snapshot = ctx.status.snapshot
    if not ctx.spec.cross_account or snapshot is None or not snapshot.encrypted or not snapshot.kms_key_id:
        return None
    key = ctx.source_kms.describe_key(snapshot.kms_key_id)
    if key is None:
        return _problem(
            "spec.source (snapshot key)",
            f"the source role cannot describe KMS key {snapshot.kms_key_id!r} of snapshot {snapshot.identifier!r}: "
            f"grant it kms:DescribeKey so the operator can tell whether the snapshot can be shared",
            "SnapshotKeyNotVisible",
        )
    if key.get("KeyManager") == "AWS":
        return _problem(
            "spec.source (snapshot key)",
            f"snapshot {snapshot.identifier!r} is encrypted with the AWS-managed key, which AWS does not let "
            f"anyone share: re-encrypt it with a customer-managed KMS key (copy the snapshot with KmsKeyId) whose "
            f"key policy allows the target account, and restore from that copy",
            "SnapshotKeyNotShareable",
        )
    return _passed("spec.source (snapshot key)", "customer-managed key")


def check_target_key(ctx: RestoreContext) -> PreflightCheck | None:
    key = ctx.spec.target.kms_key_id
    if not key:
        return None
    if ctx.target_kms.describe_key(key) is None:
        return _problem("spec.target.kmsKeyId", f"spec.target.kmsKeyId {key!r}: no such KMS key in "
                        f"{ctx.spec.target_region}", "KmsKeyNotUsable")
    return _passed("spec.target.kmsKeyId")


def _group_exists(rds, kind: str, field: str, name: str) -> PreflightCheck:
    if rds.exists(kind, name):
        return _passed(field)
    return _problem(field, f"{field} {name!r}: no such {kind} in {rds.region}",
                    kind.title().replace(" ", "") + "NotFound")


def check_target_identifier(ctx: RestoreContext) -> PreflightCheck:
    identifier = ctx.spec.target.cluster_identifier
    cluster = ctx.target_rds.describe_cluster(identifier)
    field = "spec.target.clusterIdentifier"
    if cluster is None or ctx.owns(cluster):
        return _passed(field, "free")
    if ctx.spec.existing_target.policy == "Fail":
        return _problem(
            field,
            target_exists_message(identifier, ctx.spec.target_region),
            "TargetExists",
        )
    if cluster.get("DeletionProtection"):
        return _problem(field, f"target cluster {identifier!r} has deletion protection enabled; turn it off to "
                        f"replace it", "TargetDeletionProtected")
    return _passed(field, "exists and will be replaced")


def check_names(ctx: RestoreContext) -> PreflightCheck:
    """Names the operator derives must obey RDS rules too (the cluster identifier's own are in the CRD)."""
    too_long = [
        name
        for name, limit in [(ctx.final_snapshot_identifier, RDS_SNAPSHOT_IDENTIFIER_MAX),
                            (ctx.copied_snapshot_identifier, RDS_SNAPSHOT_IDENTIFIER_MAX)]
        if len(name) > limit
    ]
    instances = [ctx.instance_identifier(n) for n in range(1, ctx.spec.target.instances.count + 1)]
    too_long += [name for name in instances if len(name) > RDS_IDENTIFIER_MAX]
    if too_long:
        return _problem("names", f"derived names too long for RDS: {', '.join(too_long)}", "NameTooLong")
    return _passed("names", ", ".join(instances) or "no instances")


def plan(ctx: RestoreContext) -> Plan:
    """The AWS calls a real run would make, in order, with their main parameters (no secret values)."""
    spec, snapshot = ctx.spec, ctx.status.snapshot
    target = spec.target
    steps: list[PlannedStep] = []
    shared_arn = snapshot.arn if snapshot else None
    if spec.cross_account:
        if snapshot.snapshot_type == "automated":
            shared_arn = snapshot.arn.split(":cluster-snapshot:", 1)[0] + f":cluster-snapshot:{ctx.shared_snapshot_identifier}"
            steps.append(PlannedStep(phase=Phase.SHARING_SNAPSHOT, action="CopyDBClusterSnapshot", parameters={
                "SourceDBClusterSnapshotIdentifier": snapshot.arn,
                "TargetDBClusterSnapshotIdentifier": ctx.shared_snapshot_identifier}))
        steps.append(PlannedStep(phase=Phase.SHARING_SNAPSHOT, action="ModifyDBClusterSnapshotAttribute",
                                 parameters={"AttributeName": "restore", "ValuesToAdd": "<target account>"}))
    copy_source = shared_arn
    staged = spec.cross_account and spec.target_region != spec.source.region
    if staged:
        staged_params = {"SourceDBClusterSnapshotIdentifier": shared_arn,
                         "TargetDBClusterSnapshotIdentifier": ctx.staged_snapshot_identifier,
                         "Region": spec.source.region}
        if spec.copy_.source_region_kms_key_id:
            staged_params["KmsKeyId"] = spec.copy_.source_region_kms_key_id
        steps.append(PlannedStep(phase=Phase.COPYING_SNAPSHOT, action="CopyDBClusterSnapshot",
                                 parameters=staged_params))
        partition = snapshot.arn.split(":")[1]
        copy_source = (f"arn:{partition}:rds:{spec.source.region}:{ctx.target_account.account_id}"
                       f":cluster-snapshot:{ctx.staged_snapshot_identifier}")
    if spec.needs_copy:
        copy_params = {"SourceDBClusterSnapshotIdentifier": copy_source,
                       "TargetDBClusterSnapshotIdentifier": ctx.copied_snapshot_identifier,
                       "Region": spec.target_region}
        if spec.copy_.kms_key_id:
            copy_params["KmsKeyId"] = spec.copy_.kms_key_id
        steps.append(PlannedStep(phase=Phase.COPYING_SNAPSHOT, action="CopyDBClusterSnapshot",
                                 parameters=copy_params))
    existing = ctx.target_rds.describe_cluster(target.cluster_identifier)
    if existing is not None and not ctx.owns(existing):
        for instance in ctx.target_rds.list_cluster_instances(target.cluster_identifier):
            steps.append(PlannedStep(phase=Phase.REPLACING_TARGET, action="DeleteDBInstance",
                                     parameters={"DBInstanceIdentifier": instance["DBInstanceIdentifier"]}))
        delete = {"DBClusterIdentifier": target.cluster_identifier}
        if spec.existing_target.final_snapshot:
            delete["FinalDBSnapshotIdentifier"] = ctx.final_snapshot_identifier
        steps.append(PlannedStep(phase=Phase.REPLACING_TARGET, action="DeleteDBCluster", parameters=delete))
    if spec.source.point_in_time:
        pit = spec.source.point_in_time
        steps.append(PlannedStep(phase=Phase.RESTORING_CLUSTER, action="RestoreDBClusterToPointInTime", parameters={
            "SourceDBClusterIdentifier": pit.cluster_identifier, "DBClusterIdentifier": target.cluster_identifier,
            "RestoreToTime": pit.restore_time.isoformat() if pit.restore_time else "latest"}))
    else:
        steps.append(PlannedStep(phase=Phase.RESTORING_CLUSTER, action="RestoreDBClusterFromSnapshot", parameters={
            "DBClusterIdentifier": target.cluster_identifier,
            "SnapshotIdentifier": ctx.copied_snapshot_identifier if spec.needs_copy else snapshot.identifier,
            **({"EngineVersion": target.engine_version} if target.engine_version else {})}))
    for number in range(1, target.instances.count + 1):
        steps.append(PlannedStep(phase=Phase.CREATING_INSTANCES, action="CreateDBInstance", parameters={
            "DBInstanceIdentifier": ctx.instance_identifier(number), "DBInstanceClass": target.instances.instance_class}))
    if spec.master_password and not spec.master_password.manage_in_secrets_manager:
        steps.append(PlannedStep(phase=Phase.CONFIGURING_ACCESS, action="ModifyDBCluster",
                                 parameters={"MasterUserPassword": "<from " + (
                                     "secretRef>" if spec.master_password.secret_ref else "Secrets Manager>")}))
    elif spec.master_password:
        steps.append(PlannedStep(phase=Phase.CONFIGURING_ACCESS, action="ModifyDBCluster",
                                 parameters={"ManageMasterUserPassword": "true"}))
    if spec.copy_.delete_after_restore:
        deleted = [ctx.copied_snapshot_identifier] if spec.needs_copy else []
        deleted += [ctx.staged_snapshot_identifier] if staged else []
        if spec.cross_account and snapshot.snapshot_type == "automated":
            deleted.append(ctx.shared_snapshot_identifier)
        for identifier in deleted:
            steps.append(PlannedStep(phase=Phase.CLEANING_UP, action="DeleteDBClusterSnapshot",
                                     parameters={"DBClusterSnapshotIdentifier": identifier}))
        if spec.cross_account and snapshot.snapshot_type != "automated":
            steps.append(PlannedStep(phase=Phase.CLEANING_UP, action="ModifyDBClusterSnapshotAttribute",
                                     parameters={"AttributeName": "restore", "ValuesToRemove": "<target account>"}))
    return Plan(steps=steps)
