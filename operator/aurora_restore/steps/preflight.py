"""Preflight: before anything is copied, shared or deleted, check that every part of the restore can work.

Every check runs and every problem is reported at once, so a user fixes the spec in one go. A dry run ends
here, in Planned, with status.plan listing the AWS calls a real run would make.
"""

import dataclasses

from ..api.models import PlannedStep, Plan, PreflightCheck, ReplacedClusterStatus
from ..api.phase import Phase
from ..aws.arn import Arn
from ..db.engines import user_name_problems
from . import names
from .clone import clone_checks, share_name
from .cluster import clone_parameters, restore_kms_key
from .context import RESTORE_UID_TAG, RestoreContext
from .snapshot import staged_copy_key
from .outcomes import Advance, Fail, Outcome
from .output import output_checks, plan_steps as output_plan_steps
from .publish import check_connection_secrets
from .policy import allowing_policy


def run_preflight(ctx: RestoreContext) -> Outcome:
    """Checks (all read-only): engine version, KMS keys, a shareable source key, subnet/security/parameter
    groups, the target identifier and, with Replace, whatever would make the swap fail, derived names.

    An existing target with policy Replace is recorded in status.replacedCluster: from then on the restore
    builds its cluster under a temporary identifier. Next: SharingSnapshot (cross-account), CopyingSnapshot
    (cross-region), SharingCluster (a clone of another account's cluster: steps/clone.py clone_checks) or
    RestoringCluster; Planned for a dry run. Fails NotAllowedByPolicy when no policy allows the
    restore as AWS now shows it (the snapshot's cluster, the source account, the cluster it would replace), else
    listing every problem found."""
    existing = ctx.target.rds.describe_cluster(ctx.target_identifier)
    replaced = replaced_cluster_record(ctx, existing)
    policy = allowing_policy(ctx, existing if replaced else None, ask_aws=True)
    ctx = dataclasses.replace(ctx, status=ctx.status.model_copy(update={"replaced_cluster": replaced}))
    checks = [check for check in _checks(ctx, existing) if check is not None]
    problems = [check for check in checks if not check.passed]
    if problems:
        listed = "; ".join(f"{n}) {check.message}" for n, check in enumerate(problems, start=1))
        reason = problems[0].reason if len(problems) == 1 else "PreflightFailed"
        return Fail(reason, f"preflight found {len(problems)} problem(s): {listed}",
                    updates={"preflight": checks, "policy": policy})
    if ctx.spec.dry_run:
        return Advance(Phase.PLANNED, f"dry run: {len(checks)} check(s) passed; see status.plan",
                       updates={"preflight": checks, "plan": plan(ctx), "policy": policy})
    if ctx.spec.source.clone:
        next_phase = Phase.SHARING_CLUSTER if ctx.spec.cross_account else Phase.RESTORING_CLUSTER
    elif ctx.spec.cross_account:
        next_phase = Phase.SHARING_SNAPSHOT
    elif ctx.spec.needs_copy:
        next_phase = Phase.COPYING_SNAPSHOT
    else:
        next_phase = Phase.RESTORING_CLUSTER
    detail = (f"; {ctx.target_identifier} will be replaced after the new cluster is verified as "
              f"{ctx.temporary_cluster_identifier}" if replaced else "")
    return Advance(next_phase, f"preflight: {len(checks)} check(s) passed{detail}",
                   updates={"preflight": checks, "replaced_cluster": replaced, "policy": policy})


def replaced_cluster_record(ctx: RestoreContext, existing: dict | None) -> ReplacedClusterStatus | None:
    """With policy Replace, the cluster that has the target's name now (not one this restore made)."""
    if existing is None or ctx.owns(existing) or ctx.spec.existing_target.policy != "Replace":
        return None
    return ctx.status.replaced_cluster or ReplacedClusterStatus(
        identifier=ctx.target_identifier,
        arn=existing.get("DBClusterArn"),
        resource_id=existing.get("DbClusterResourceId"),
        renamed_to=ctx.previous_cluster_identifier,
        final_snapshot_identifier=ctx.final_snapshot_identifier if ctx.spec.existing_target.final_snapshot else None,
    )


def _passed(name: str, message: str = "") -> PreflightCheck:
    return PreflightCheck(name=name, passed=True, message=message)


def _problem(name: str, message: str, reason: str) -> PreflightCheck:
    return PreflightCheck(name=name, passed=False, message=message, reason=reason)


def _checks(ctx: RestoreContext, existing: dict | None):
    if ctx.spec.source.clone:
        yield from clone_checks(ctx, existing)
    yield check_engine_version(ctx)
    yield check_copy_key(ctx, ctx.spec.copy_.kms_key_id, "spec.copy.kmsKeyId", ctx.target.kms)
    if ctx.spec.cross_account and ctx.spec.target_region != ctx.spec.source.region:
        yield check_copy_key(ctx, staged_copy_key(ctx), "spec.copy.sourceRegionKmsKeyId", ctx.staging.kms)
    yield check_shareable_key(ctx)
    yield check_target_key(ctx)
    target = ctx.spec.target
    rds = ctx.target.rds
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
        missing = ctx.target.ec2.missing_security_groups(target.vpc_security_group_ids)
        yield (
            _problem("spec.target.vpcSecurityGroupIds", f"spec.target.vpcSecurityGroupIds: {', '.join(missing)} "
                     f"not found in {ctx.spec.target_region}", "SecurityGroupNotFound")
            if missing
            else _passed("spec.target.vpcSecurityGroupIds")
        )
    yield from check_user_names(ctx)
    yield from check_connection_secrets(ctx)
    yield check_tag_count(ctx)
    yield check_target_identifier(ctx, existing)
    yield from output_checks(ctx)
    yield check_deletion_policy(ctx)
    if ctx.replacing:
        yield from check_swap(ctx, existing)
    yield check_names(ctx)


def check_deletion_policy(ctx: RestoreContext) -> PreflightCheck | None:
    """deletionPolicy Delete deletes the restored cluster with the AuroraRestore; deletion protection, turned on in
    Publishing, would stop that, and the operator never turns it off."""
    if ctx.spec.deletion_policy != "Delete" or not ctx.spec.target.deletion_protection:
        return None
    return _problem("spec.deletionPolicy", "spec.deletionPolicy Delete deletes the restored cluster with the "
                    "AuroraRestore, but spec.target.deletionProtection would stop that: turn one of them off",
                    "DeletionPolicyProtected")


def check_tag_count(ctx: RestoreContext) -> PreflightCheck:
    """The operator's default tags, the spec's and the restore's own together within AWS's 50 per resource."""
    count = len(ctx.target_tags)
    if count > 50:
        return _problem("spec.target.tags", f"spec.target.tags: with the operator's default tags and its own, the "
                        f"cluster would carry {count} tags; AWS allows 50 per resource", "TooManyTags")
    return _passed("spec.target.tags")


def check_user_names(ctx: RestoreContext):
    """spec.users[].name within the engine's limits (MySQL: 32 characters), found before hours of restoring."""
    if not ctx.spec.users:
        return
    if ctx.status.snapshot is not None:
        engine = ctx.status.snapshot.engine
    elif ctx.status.clone is not None:
        engine = ctx.status.clone.engine
    else:  # a point in time: the source cluster's engine
        cluster = ctx.source.rds.describe_cluster(ctx.spec.source.point_in_time.cluster_identifier)
        engine = cluster.get("Engine") if cluster else None
    for field, message in user_name_problems(engine or "", ctx.spec.users):
        yield _problem(field, message, "InvalidUserName")


def check_engine_version(ctx: RestoreContext) -> PreflightCheck | None:
    wanted = ctx.spec.target.engine_version
    snapshot = ctx.status.snapshot
    # pointInTime has no snapshot to compare with: the spec refuses engineVersion there (api/models.py).
    if not wanted or snapshot is None or wanted == snapshot.engine_version:
        return None
    targets = ctx.target.rds.valid_upgrade_targets(snapshot.engine, snapshot.engine_version)
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
    if field == "spec.copy.sourceRegionKmsKeyId" and not ctx.spec.copy_.source_region_kms_key_id \
            and not ctx.status.snapshot.encrypted:
        # Nothing to look up: an unencrypted copy takes no key, and describing alias/aws/rds would make AWS create
        # that key in the source region (Preflight changes nothing).
        return _passed(field, f"unset: snapshot {ctx.status.snapshot.identifier!r} is unencrypted, so the "
                       f"intermediate copy in {kms.region} takes no key")
    if kms.describe_key(key) is None:
        return _problem(field, f"{field} {key!r}: no such KMS key in {kms.region}", "KmsKeyNotUsable")
    if not ctx.status.snapshot.encrypted:
        use = ("the restored cluster is encrypted with it" if field == "spec.copy.kmsKeyId" and
               not ctx.spec.target.kms_key_id else "it is not used")
        return _passed(field, f"snapshot {ctx.status.snapshot.identifier!r} is unencrypted and AWS cannot encrypt "
                       f"a snapshot by copying it: the copy stays unencrypted and {use}")
    if field == "spec.copy.sourceRegionKmsKeyId" and not ctx.spec.copy_.source_region_kms_key_id:
        return _passed(field, f"unset: the intermediate copy in {kms.region}, which is never shared, is encrypted "
                       f"with the target account's AWS-managed key {key}")
    return _passed(field)


def check_shareable_key(ctx: RestoreContext) -> PreflightCheck | None:
    """AWS cannot share a snapshot encrypted with the AWS-managed key (aws/rds) with another account."""
    snapshot = ctx.status.snapshot
    if not ctx.spec.cross_account or snapshot is None or not snapshot.encrypted or not snapshot.kms_key_id:
        return None
    key = ctx.source.kms.describe_key(snapshot.kms_key_id)
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
    if ctx.target.kms.describe_key(key) is None:
        return _problem("spec.target.kmsKeyId", f"spec.target.kmsKeyId {key!r}: no such KMS key in "
                        f"{ctx.spec.target_region}", "KmsKeyNotUsable")
    return _passed("spec.target.kmsKeyId")


def _group_exists(rds, kind: str, field: str, name: str) -> PreflightCheck:
    if rds.exists(kind, name):
        return _passed(field)
    return _problem(field, f"{field} {name!r}: no such {kind} in {rds.region}",
                    kind.title().replace(" ", "") + "NotFound")


def check_target_identifier(ctx: RestoreContext, existing: dict | None) -> PreflightCheck:
    identifier = ctx.target_identifier
    field = "spec.target.clusterIdentifier"
    if existing is None or ctx.owns(existing):
        return _passed(field, "free")
    if ctx.drilling:
        return _problem(field, f"the drill's cluster {identifier!r} already exists in {ctx.spec.target_region} and "
                        f"was not made by this drill: a drill never touches an existing cluster; left untouched",
                        "DrillClusterTaken")
    if ctx.spec.existing_target.policy == "Fail":
        if restores_its_own_source(ctx):
            return _problem(field, f"the source cluster {identifier!r} is also the target: restoring it onto "
                            f"itself needs spec.existingTarget.policy Replace (it is then swapped only after "
                            f"the new cluster is verified), or choose another spec.target.clusterIdentifier",
                            "SourceIsTarget")
        return _problem(field, target_exists_message(identifier, ctx.spec.target_region), "TargetExists")
    return _passed(field, f"exists; it will be renamed to {ctx.previous_cluster_identifier} once the new cluster "
                   f"is verified, then " + ("kept" if ctx.spec.existing_target.keep_previous else "deleted"))


def restores_its_own_source(ctx: RestoreContext) -> bool:
    """The source cluster (of the snapshot, of `latest` or of a point in time) is the target, in one account
    and region."""
    if ctx.spec.cross_account or ctx.spec.target_region != ctx.spec.source.region:
        return False
    source = ctx.spec.source
    clusters = {
        source.latest.cluster_identifier if source.latest else None,
        source.point_in_time.cluster_identifier if source.point_in_time else None,
        source.clone.cluster_identifier if source.clone else None,
        ctx.status.snapshot.cluster_identifier if ctx.status.snapshot else None,
    }
    return ctx.target_identifier in {c.lower() for c in clusters if c}


def target_exists_message(identifier: str, region: str) -> str:
    """Why policy Fail refuses, and what to do."""
    return (
        f"target cluster {identifier!r} already exists in {region}; nothing was changed. Set "
        f"spec.existingTarget.policy to Replace to replace it, or choose another spec.target.clusterIdentifier"
    )


def check_swap(ctx: RestoreContext, existing: dict):
    """What would make SwappingTarget or RetiringPrevious fail, found before anything is copied or restored."""
    field = "spec.existingTarget"
    identifier = ctx.target_identifier
    if existing.get("DeletionProtection"):
        yield _problem(field, f"target cluster {identifier!r} has deletion protection enabled: it could be swapped "
                       f"but never deleted; turn it off to replace it", "TargetDeletionProtected")
    if existing.get("GlobalClusterIdentifier"):
        yield _problem(field, f"target cluster {identifier!r} is a member of global database "
                       f"{existing['GlobalClusterIdentifier']!r}; a member cannot be renamed away: remove it from "
                       f"the global database first", "TargetInGlobalDatabase")
    rds = ctx.target.rds
    for name, what in ((ctx.previous_cluster_identifier, "the name the replaced cluster is renamed to"),
                       (ctx.temporary_cluster_identifier, "the temporary name of the new cluster")):
        taken = rds.describe_cluster(name)
        if taken is not None and not ctx.owns(taken):
            yield _problem(field, f"cluster {name!r} ({what}) already exists in {ctx.spec.target_region}",
                           "ClusterNameTaken")
    for number in range(1, ctx.spec.target.instances.count + 1):
        name = ctx.instance_identifier(number)
        instance = rds.describe_instance(name)
        if instance is not None and not ctx.owns(instance):
            yield _problem(field, f"DB instance {name!r} already exists in {ctx.spec.target_region}",
                           "InstanceNameTaken")
    final = ctx.status.replaced_cluster.final_snapshot_identifier
    if final and rds.describe_snapshot(final) is not None:
        yield _problem(field, f"final snapshot {final!r} already exists in {ctx.spec.target_region}",
                       "SnapshotNameTaken")
    yield _passed(field, f"swap: {identifier} -> {ctx.previous_cluster_identifier}, "
                  f"{ctx.temporary_cluster_identifier} -> {identifier}")


def check_names(ctx: RestoreContext) -> PreflightCheck:
    """Names the operator derives obey RDS rules (names.py makes them so; this says so in status)."""
    derived = [ctx.instance_identifier(n) for n in range(1, ctx.spec.target.instances.count + 1)]
    if ctx.replacing:
        derived += [ctx.temporary_cluster_identifier, ctx.previous_cluster_identifier]
        if ctx.status.replaced_cluster.final_snapshot_identifier:
            derived.append(ctx.status.replaced_cluster.final_snapshot_identifier)
    bad = [name for name in derived if not names.is_valid_identifier(name)]
    if bad:
        return _problem("names", f"derived names invalid for RDS: {', '.join(bad)}", "InvalidName")
    return _passed("names", ", ".join(derived) or "no instances")


def unencrypted_copy_note(ctx: RestoreContext) -> str:
    """What the plan says of copying an unencrypted snapshot: no KmsKeyId, and which key encrypts the cluster."""
    key = restore_kms_key(ctx)
    encrypted = (f"the restore encrypts the cluster with {key}" if key else
                 "the restored cluster is unencrypted (set spec.target.kmsKeyId or spec.copy.kmsKeyId to encrypt it)")
    return (f"snapshot {ctx.status.snapshot.identifier!r} is unencrypted: copied without KmsKeyId (AWS cannot "
            f"encrypt a snapshot by copying it); {encrypted}")


def plan(ctx: RestoreContext) -> Plan:
    """The AWS calls a real run would make, in order, with their main parameters (no secret values)."""
    spec, snapshot = ctx.spec, ctx.status.snapshot
    target = spec.target
    steps: list[PlannedStep] = []
    shared_arn = snapshot.arn if snapshot else None
    clone = spec.source.clone is not None
    if clone:
        steps += clone_plan_steps(ctx)
    if spec.cross_account and not clone:
        if snapshot.snapshot_type == "automated":
            shared_arn = Arn.parse(snapshot.arn).renamed(ctx.shared_snapshot_identifier)
            steps.append(PlannedStep(phase=Phase.SHARING_SNAPSHOT, action="CopyDBClusterSnapshot", parameters={
                "SourceDBClusterSnapshotIdentifier": snapshot.arn,
                "TargetDBClusterSnapshotIdentifier": ctx.shared_snapshot_identifier}))
        steps.append(PlannedStep(phase=Phase.SHARING_SNAPSHOT, action="ModifyDBClusterSnapshotAttribute",
                                 parameters={"AttributeName": "restore", "ValuesToAdd": "<target account>"}))
    copy_source = shared_arn
    staged = spec.cross_account and spec.target_region != spec.source.region and not clone
    if staged:
        staged_params = {"SourceDBClusterSnapshotIdentifier": shared_arn,
                         "TargetDBClusterSnapshotIdentifier": ctx.staged_snapshot_identifier,
                         "Region": spec.source.region}
        staged_note = None
        if snapshot.encrypted:
            staged_params["KmsKeyId"] = staged_copy_key(ctx)
            if not spec.copy_.source_region_kms_key_id:
                staged_note = (f"spec.copy.sourceRegionKmsKeyId is unset: this intermediate copy, never shared, is "
                               f"encrypted with the target account's AWS-managed key {staged_copy_key(ctx)} in "
                               f"{spec.source.region}")
        else:
            staged_note = unencrypted_copy_note(ctx)
        steps.append(PlannedStep(phase=Phase.COPYING_SNAPSHOT, action="CopyDBClusterSnapshot",
                                 parameters=staged_params, note=staged_note))
        partition = Arn.parse(snapshot.arn).partition
        copy_source = (f"arn:{partition}:rds:{spec.source.region}:{ctx.target.account.account_id}"
                       f":cluster-snapshot:{ctx.staged_snapshot_identifier}")
    if spec.needs_copy:
        copy_params = {"SourceDBClusterSnapshotIdentifier": copy_source,
                       "TargetDBClusterSnapshotIdentifier": ctx.copied_snapshot_identifier,
                       "Region": spec.target_region}
        if spec.copy_.kms_key_id and snapshot.encrypted:
            copy_params["KmsKeyId"] = spec.copy_.kms_key_id
        steps.append(PlannedStep(phase=Phase.COPYING_SNAPSHOT, action="CopyDBClusterSnapshot",
                                 parameters=copy_params,
                                 note=None if snapshot.encrypted else unencrypted_copy_note(ctx)))
    if clone:
        pass  # clone_plan_steps listed RestoreDBClusterToPointInTime
    elif spec.source.point_in_time:
        pit = spec.source.point_in_time
        steps.append(PlannedStep(phase=Phase.RESTORING_CLUSTER, action="RestoreDBClusterToPointInTime", parameters={
            "SourceDBClusterIdentifier": pit.cluster_identifier, "DBClusterIdentifier": ctx.cluster_identifier,
            **({"RestoreToTime": pit.restore_time.isoformat()} if pit.restore_time
               else {"UseLatestRestorableTime": "true"})}))
    else:
        steps.append(PlannedStep(phase=Phase.RESTORING_CLUSTER, action="RestoreDBClusterFromSnapshot", parameters={
            "DBClusterIdentifier": ctx.cluster_identifier,
            "SnapshotIdentifier": ctx.copied_snapshot_identifier if spec.needs_copy else snapshot.identifier,
            **({"EngineVersion": target.engine_version} if target.engine_version else {}),
            **({"KmsKeyId": restore_kms_key(ctx)} if restore_kms_key(ctx) else {})}))
    if target.preferred_maintenance_window:
        steps.append(PlannedStep(phase=Phase.RESTORING_CLUSTER, action="ModifyDBCluster", parameters={
            "DBClusterIdentifier": ctx.cluster_identifier,
            "PreferredMaintenanceWindow": target.preferred_maintenance_window}))
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
    steps += output_plan_steps(ctx)  # before any swap: the snapshot is of the new cluster
    record = ctx.status.replaced_cluster
    if record is not None:
        steps.append(PlannedStep(phase=Phase.SWAPPING_TARGET, action="ModifyDBCluster", parameters={
            "DBClusterIdentifier": record.identifier, "NewDBClusterIdentifier": record.renamed_to}))
        steps.append(PlannedStep(phase=Phase.SWAPPING_TARGET, action="ModifyDBCluster", parameters={
            "DBClusterIdentifier": ctx.temporary_cluster_identifier, "NewDBClusterIdentifier": record.identifier}))
        retiring = Phase.RETIRING_PREVIOUS if not spec.existing_target.keep_previous else Phase.SUCCEEDED
        for instance in ctx.target.rds.list_cluster_instances(record.identifier):
            steps.append(PlannedStep(phase=retiring, action="DeleteDBInstance",
                                     parameters={"DBInstanceIdentifier": instance["DBInstanceIdentifier"]}))
        delete = {"DBClusterIdentifier": record.renamed_to, "DeleteAutomatedBackups": "false"}
        if record.final_snapshot_identifier:
            delete["FinalDBSnapshotIdentifier"] = record.final_snapshot_identifier
        if spec.existing_target.keep_previous:
            delete["after"] = spec.existing_target.keep_previous
        steps.append(PlannedStep(phase=retiring, action="DeleteDBCluster", parameters=delete))
    if target.deletion_protection:
        steps.append(PlannedStep(phase=Phase.PUBLISHING, action="ModifyDBCluster", parameters={
            "DBClusterIdentifier": ctx.target_identifier, "DeletionProtection": "true"}))
    if spec.copy_.delete_after_restore:
        deleted = [ctx.copied_snapshot_identifier] if spec.needs_copy else []
        deleted += [ctx.staged_snapshot_identifier] if staged else []
        if spec.cross_account and not clone and snapshot.snapshot_type == "automated":
            deleted.append(ctx.shared_snapshot_identifier)
        for identifier in deleted:
            steps.append(PlannedStep(phase=Phase.CLEANING_UP, action="DeleteDBClusterSnapshot",
                                     parameters={"DBClusterSnapshotIdentifier": identifier}))
        if spec.cross_account and not clone and snapshot.snapshot_type != "automated":
            steps.append(PlannedStep(phase=Phase.CLEANING_UP, action="ModifyDBClusterSnapshotAttribute",
                                     parameters={"AttributeName": "restore", "ValuesToRemove": "<target account>"}))
    if clone and spec.cross_account:
        steps.append(PlannedStep(phase=Phase.CLEANING_UP, action="DeleteResourceShare", parameters={
            "resourceShareArn": f"<the RAM share tagged {RESTORE_UID_TAG}={ctx.uid}>"}))
    return Plan(steps=steps)


def clone_plan_steps(ctx: RestoreContext) -> list[PlannedStep]:
    """A clone's calls: across accounts the RAM share first (and accepting its invitation), then
    RestoreDBClusterToPointInTime copy-on-write."""
    steps = []
    if ctx.spec.cross_account:
        steps.append(PlannedStep(phase=Phase.SHARING_CLUSTER, action="CreateResourceShare", parameters={
            "name": share_name(ctx), "resourceArns": ctx.status.clone.source_cluster_arn or "",
            "principals": "<target account>", "allowExternalPrincipals": "true"}))
        steps.append(PlannedStep(phase=Phase.SHARING_CLUSTER, action="AcceptResourceShareInvitation", parameters={
            "resourceShareInvitationArn": "<the invitation>"}, note="only when the accounts are not in one "
            "organization with RAM sharing enabled (then the share is associated without an invitation)"))
    params = clone_parameters(ctx)
    steps.append(PlannedStep(phase=Phase.RESTORING_CLUSTER, action="RestoreDBClusterToPointInTime", parameters={
        key: str(params[key]).lower() if isinstance(params[key], bool) else str(params[key])
        for key in ("SourceDBClusterIdentifier", "DBClusterIdentifier", "RestoreType", "UseLatestRestorableTime",
                    "KmsKeyId") if key in params}))
    return steps
