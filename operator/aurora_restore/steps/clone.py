"""spec.source.clone: an Aurora fast clone (copy-on-write) of a running cluster instead of a snapshot restore.

ResolvingSnapshot records the source cluster (resolve_clone_source), Preflight checks what AWS requires of a
clone (clone_checks), SharingCluster shares a cluster of another account with the target account through AWS RAM
(share_cluster), RestoringCluster makes the clone (cluster.py clone_parameters), and the cleanup phases delete the
RAM share (remove_cluster_share). The share carries the restore's UID tag and is always found by it, never by memory.
"""

from datetime import datetime, timezone
from typing import Any

from ..api.models import CloneStatus, PreflightCheck
from ..api.phase import Phase
from ..aws.arn import account_of
from ..aws.ram import ASSOCIATED, PENDING
from ..aws.rds import AVAILABLE, FAILED_STATUSES
from ..errors import TerminalError
from . import names
from .context import RESTORE_UID_TAG, RestoreContext
from .drill import restore_point_updates
from .outcomes import Advance, Outcome, Wait

# Statuses of a source cluster that waiting does not turn into available: Preflight refuses them.
NOT_COMING_BACK = frozenset({"stopped", "stopping", "deleting"})
SERVERLESS_V1 = "serverless"
# AWS's limits on cross-account clones (Aurora user guide, limitations of cross-account cloning).
CROSS_ACCOUNT_CLONES_PER_SOURCE = 15
RAM_FAILED = "FAILED"
# Invitations that can no longer be accepted (RAM's ResourceShareInvitationStatus).
INVITATION_ENDED = frozenset({"REJECTED", "EXPIRED"})


def cross_account_clone(ctx: RestoreContext) -> bool:
    return ctx.spec.source.clone is not None and ctx.spec.cross_account


def share_name(ctx: RestoreContext) -> str:
    """The RAM share's name: which restore made it (the UID tag is what finds it)."""
    return names.tag_value(f"aurora-restore-{ctx.namespace}-{ctx.name}-{ctx.short_uid}")


# --- ResolvingSnapshot ------------------------------------------------------------------------------------------


def resolve_clone_source(ctx: RestoreContext) -> Outcome:
    """The source cluster exists (described with the source side's identity: in another account, the source
    role): record it in status.clone, and wait while it is in a passing state (backing-up, modifying). A stopped
    one is left to Preflight, which refuses it with the others' problems; a failed one fails now."""
    clone = ctx.spec.source.clone
    cluster = ctx.source.rds.describe_cluster(clone.cluster_identifier)
    where = ctx.spec.source.region + (f" of account {ctx.spec.source.account_id}" if ctx.spec.cross_account else "")
    if cluster is None:
        raise TerminalError("SourceClusterNotFound", f"spec.source.clone.clusterIdentifier "
                            f"{clone.cluster_identifier!r}: no such cluster in {where}")
    record = clone_status(cluster, ctx.status.clone)
    status = cluster.get("Status", "")
    if status in FAILED_STATUSES:
        raise TerminalError("CloneSourceNotAvailable", f"source cluster {clone.cluster_identifier!r} is {status}: "
                            f"it cannot be cloned")
    if status != AVAILABLE and status not in NOT_COMING_BACK:
        return Wait(f"source cluster {clone.cluster_identifier} is {status}; a clone is made of an available "
                    f"cluster", updates={"clone": record})
    latest = cluster.get("LatestRestorableTime") or ctx.now
    return Advance(Phase.PREFLIGHT, f"cluster {clone.cluster_identifier} ({record.engine} {record.engine_version}, "
                   f"{record.instance_count} instance(s)) will be cloned",
                   updates={"clone": record, **restore_point_updates(ctx, _aware(latest))})


def clone_status(cluster: dict[str, Any], previous: CloneStatus | None) -> CloneStatus:
    """What status.clone says of the source cluster; the RAM share fields of `previous` are kept."""
    arn = cluster.get("DBClusterArn")
    seen = {
        "source_cluster_identifier": cluster["DBClusterIdentifier"],
        "source_cluster_arn": arn,
        "source_account": account_of(arn),
        "engine": cluster.get("Engine"),
        "engine_version": cluster.get("EngineVersion"),
        "engine_mode": cluster.get("EngineMode") or "provisioned",
        "storage_encrypted": bool(cluster.get("StorageEncrypted")),
        "kms_key_id": cluster.get("KmsKeyId"),
        "instance_count": len(cluster.get("DBClusterMembers") or []),
    }
    return previous.model_copy(update=seen) if previous else CloneStatus(**seen)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# --- Preflight --------------------------------------------------------------------------------------------------


def _passed(name: str, message: str = "") -> PreflightCheck:
    return PreflightCheck(name=name, passed=True, message=message)


def _problem(name: str, message: str, reason: str) -> PreflightCheck:
    return PreflightCheck(name=name, passed=False, message=message, reason=reason)


def clone_checks(ctx: RestoreContext, existing: dict | None):
    """What AWS requires of a clone, each refusal with its own reason: the source's region, the source available
    with an instance and not itself a cross-account clone, no Serverless v1 and a customer-managed key across
    accounts, and the limits (the target account's cluster quota; across accounts also one clone of a source per
    account)."""
    field = "spec.source.clone"
    identifier = ctx.spec.source.clone.cluster_identifier
    region = ctx.spec.source.region
    if ctx.spec.target_region != region:
        yield _problem("spec.target.region", f"spec.target.region {ctx.spec.target_region!r}: a clone is made in "
                       f"its source cluster's region ({region}); leave spec.target.region unset, or restore a "
                       f"snapshot to copy across regions", "CloneRegionMismatch")
    cluster = ctx.source.rds.describe_cluster(identifier)  # as it is now: status.clone is from ResolvingSnapshot
    if cluster is None:
        yield _problem(field, f"source cluster {identifier!r} no longer exists in {region}", "SourceClusterNotFound")
        return
    status = cluster.get("Status", "")
    if status != AVAILABLE:
        yield _problem(field, f"source cluster {identifier!r} is {status}: only an available cluster can be cloned"
                       + ("; start it first" if status in ("stopped", "stopping") else ""),
                       "CloneSourceNotAvailable")
    elif not cluster.get("DBClusterMembers"):
        yield _problem(field, f"source cluster {identifier!r} has no DB instance: AWS clones only a cluster with "
                       f"at least one instance; add one to it first", "CloneSourceHasNoInstance")
    else:
        yield _passed(field, f"{identifier} is available with {len(cluster['DBClusterMembers'])} instance(s)")
    if cluster.get("CrossAccountClone"):  # RDS answers InvalidDBClusterStateFault, which would only be retried
        yield _problem(field, f"source cluster {identifier!r} is itself a cross-account clone (of a cluster another "
                       f"account owns), and AWS neither clones nor shares such a clone: clone the original "
                       f"cluster, or restore a snapshot of this one", "CloneSourceIsCrossAccountClone")
    if ctx.spec.cross_account:
        yield from cross_account_checks(ctx, cluster, existing)
    yield check_cluster_quota(ctx)  # the clone is a new cluster of the target account, whoever owns the source


def cross_account_checks(ctx: RestoreContext, cluster: dict[str, Any], existing: dict | None):
    field = "spec.source.clone"
    identifier = cluster["DBClusterIdentifier"]
    if (cluster.get("EngineMode") or "provisioned") == SERVERLESS_V1:
        yield _problem(field, f"source cluster {identifier!r} is Aurora Serverless v1 (EngineMode serverless), "
                       f"which AWS does not clone across accounts: restore a snapshot of it instead",
                       "CloneServerlessCrossAccount")
    if cluster.get("StorageEncrypted") and cluster.get("KmsKeyId"):
        yield check_source_key(ctx, cluster)
    yield check_clones_per_account(ctx, cluster, existing)


def check_source_key(ctx: RestoreContext, cluster: dict[str, Any]) -> PreflightCheck:
    """An encrypted cluster is cloned across accounts only with a customer-managed key whose key policy lets
    the target account use it: the AWS-managed key (aws/rds) cannot be shared at all."""
    name = "spec.source.clone (KMS key)"
    key_id, identifier = cluster["KmsKeyId"], cluster["DBClusterIdentifier"]
    key = ctx.source.kms.describe_key(key_id)
    if key is None:
        return _problem(name, f"the source role cannot describe KMS key {key_id!r} of cluster {identifier!r}: "
                        f"grant it kms:DescribeKey so the operator can tell whether the cluster can be shared",
                        "CloneKeyNotVisible")
    if key.get("KeyManager") == "AWS":
        return _problem(name, f"source cluster {identifier!r} is encrypted with the AWS-managed key "
                        f"(alias/aws/rds), which AWS does not let anyone share: a cross-account clone needs a "
                        f"cluster encrypted with a customer-managed key whose key policy allows account "
                        f"{ctx.target.account.account_id}; restore a snapshot copied with such a key instead",
                        "CloneKeyNotShareable")
    return _passed(name, f"customer-managed key {key.get('Arn') or key_id}; its key policy must let account "
                   f"{ctx.target.account.account_id} use it (AWS checks when the clone is made)")


def check_clones_per_account(ctx: RestoreContext, cluster: dict[str, Any], existing: dict | None) -> PreflightCheck:
    """AWS allows one cross-account clone of a source cluster per account: a cross-account clone (CrossAccountClone)
    of the target account in the source's clone group (CloneGroupId) stops another. A Replace of an earlier clone
    of the same source is the common case: the new clone cannot be made while the old one stands, and the old one
    goes only after the new one is verified, so the restore is refused instead of failing halfway. The other
    limit, 15 cross-account clones per source, is not checked: they are clusters of other accounts, which neither
    side can list (the source's DescribeDBClusters reports no count, and RAM shows only shares, which restores
    delete once their clone exists); RestoringCluster's refusal names it (cluster.py blame_field,
    CloneLimitReached)."""
    name = "spec.source.clone (clones per account)"
    group = cluster.get("CloneGroupId")
    if not group:
        return _passed(name, "the source cluster reports no clone group: no clone of it exists")
    account = ctx.target.account.account_id
    clones = [c for c in ctx.target.rds.list_clusters()
              if c.get("CloneGroupId") == group and c.get("CrossAccountClone") and not ctx.owns(c)]
    if not clones:
        return _passed(name, f"no clone of {cluster['DBClusterIdentifier']} in account {account} yet "
                       f"(AWS allows one per account, {CROSS_ACCOUNT_CLONES_PER_SOURCE} per source)")
    names_ = ", ".join(sorted(c["DBClusterIdentifier"] for c in clones))
    replacing = existing is not None and existing.get("CloneGroupId") == group and ctx.replacing
    why = (f"the cluster this restore would replace, {ctx.target_identifier!r}, is an earlier clone of it, and the "
           f"new clone would have to exist beside it until it is verified (a Replace never deletes first): delete "
           f"{ctx.target_identifier!r} yourself and restore with existingTarget Fail, or restore a snapshot"
           if replacing else f"account {account} already holds {names_}: delete it first")
    return _problem(name, f"AWS allows one cross-account clone of source cluster {cluster['DBClusterIdentifier']!r} "
                    f"per account; {why}", "CloneLimitReached")


def check_cluster_quota(ctx: RestoreContext) -> PreflightCheck:
    """The account's DB cluster quota (DescribeAccountAttributes DBClusters) has room for the clone."""
    name = "spec.source.clone (cluster quota)"
    quota = ctx.target.rds.cluster_quota()
    if quota is None:
        return _passed(name, "AWS reports no DB cluster quota")
    used, most = quota
    if used >= most:
        return _problem(name, f"the account already has {used} of its {most} DB clusters in "
                        f"{ctx.spec.target_region} (the DBClusters quota): delete an unused cluster, or ask AWS "
                        f"for a higher limit (Service Quotas, service Amazon RDS)", "CloneLimitReached")
    return _passed(name, f"{used} of {most} DB clusters used")


# --- SharingCluster ---------------------------------------------------------------------------------------------


def share_cluster(ctx: RestoreContext) -> Outcome:
    """Share the source cluster with the target account through AWS RAM (a cross-account clone).

    As the source side: find the resource share carrying this restore's UID tag (GetResourceShares), else
    CreateResourceShare of the cluster's ARN with the target account, allowing external principals and tagged
    with the UID (idempotent by its client token). As the target side: accept the invitation when one is pending
    (none when both accounts are in one organization with RAM sharing on). Waits until the target account and
    the cluster are ASSOCIATED, and records status.clone.resourceShareArn, invitationArn and sharedAt. Next:
    RestoringCluster. Fails ClusterShareFailed when RAM reports the share or an association FAILED, or the
    invitation rejected or expired; the share is deleted on the way out (remove_cluster_share)."""
    record = ctx.status.clone
    account = ctx.target.account.account_id
    source_ram = ctx.source.ram
    share = source_ram.find_share(RESTORE_UID_TAG, ctx.uid)
    if share is None:
        share = source_ram.create_share(share_name(ctx), record.source_cluster_arn, account, ctx.restore_tags,
                                        client_token=ctx.uid)
    arn = share["resourceShareArn"]
    record = record.model_copy(update={"resource_share_arn": arn})
    if share.get("status") == RAM_FAILED:
        raise TerminalError("ClusterShareFailed", f"RAM share {arn} of cluster {record.source_cluster_identifier} "
                            f"failed: {share.get('statusMessage') or 'no reason given'}")
    principal = _association(source_ram.associations(arn, "PRINCIPAL"), account, arn)
    if principal != ASSOCIATED or record.invitation_arn is None:  # also an Accept whose status write was lost
        record = answer_invitations(ctx, arn, record)
    if principal != ASSOCIATED:
        return Wait(f"RAM share {arn}: account {account} is {principal or 'not associated yet'}",
                    updates={"clone": record})
    resource = _association(source_ram.associations(arn, "RESOURCE"), record.source_cluster_arn, arn)
    if resource != ASSOCIATED:
        return Wait(f"RAM share {arn}: cluster {record.source_cluster_identifier} is "
                    f"{resource or 'not associated yet'}", updates={"clone": record})
    record = record.model_copy(update={"shared_at": record.shared_at or ctx.now})
    return Advance(Phase.RESTORING_CLUSTER, f"cluster {record.source_cluster_identifier} shared with account "
                   f"{account} through RAM share {arn}", updates={"clone": record})


def answer_invitations(ctx: RestoreContext, share_arn: str, record: CloneStatus) -> CloneStatus:
    """As the target side: accept the share's pending invitation and record it (one accepted already is only
    recorded). A rejected or expired invitation cannot be accepted any more: the restore fails instead of
    waiting for an association that never comes."""
    for invitation in ctx.target.ram.invitations(share_arn):
        invitation_arn, status = invitation["resourceShareInvitationArn"], invitation.get("status")
        if status == PENDING:
            ctx.target.ram.accept_invitation(invitation_arn, client_token=ctx.uid)
        elif status in INVITATION_ENDED:
            raise TerminalError("ClusterShareFailed", f"the invitation {invitation_arn} to RAM share {share_arn} "
                                f"is {status}: it cannot be accepted any more; create a new AuroraRestore")
        elif status != "ACCEPTED":
            continue
        record = record.model_copy(update={"invitation_arn": invitation_arn})
    return record


def _association(associations: list[dict[str, Any]], entity: str, share_arn: str) -> str | None:
    """The status of the share's association with `entity` (an account or an ARN); FAILED fails the restore."""
    for association in associations:
        if association.get("associatedEntity") == entity:
            status = association.get("status")
            if status == RAM_FAILED:
                raise TerminalError("ClusterShareFailed", f"RAM share {share_arn}: the association with {entity} "
                                    f"failed: {association.get('statusMessage') or 'no reason given'}")
            return status
    return None


# --- CleaningUp, CleaningUpAfterFailure, Cancelling ----------------------------------------------------------


def remove_cluster_share(ctx: RestoreContext) -> dict:
    """Delete the RAM share carrying this restore's UID tag (found by the tag, so a share whose creation was never
    recorded goes too), as the source side; status.clone.unshared once it is gone. Nothing for a clone within
    one account. The clone itself does not need the share any more once it exists."""
    if not cross_account_clone(ctx):
        return {}
    share = ctx.source.ram.find_share(RESTORE_UID_TAG, ctx.uid)
    if share is not None:
        ctx.source.ram.delete_share(share["resourceShareArn"])
    record = ctx.status.clone
    return {"clone": record.model_copy(update={"unshared": True})} if record else {}
