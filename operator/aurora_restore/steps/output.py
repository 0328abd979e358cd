"""SnapshottingOutput: the sanitized snapshot other accounts restore from (spec.output.snapshot).

After masking, hooks and verification, a manual snapshot of the restored cluster (before any swap) is taken, copied
with spec.output.snapshot.kmsKeyId when one is given (a key the consumers may use), and shared with the accounts
of shareWith. The snapshot is the product: it carries the restore's UID and the snapshot-role tag `output`
(the temporary snapshot before the copy: `output-intermediate`), so cleanup after a failure or a cancel finds and
removes a partial one, and nothing ever deletes it once the restore succeeded (CleaningUp, aftercare, ttl and
deletionPolicy delete clusters and copies, never this snapshot). With deleteClusterAfter, CleaningUp deletes the
restored cluster once the snapshot is available and shared (`delete_cluster_after`).

Every name is derived (the identifier from status.startedAt, the intermediate from the UID), and each pass
describes before it acts, so a pass run again after a crash only waits for what the last one started.
"""

from datetime import datetime, timezone
from typing import Any

from ..api.models import OutputSnapshotStatus, PlannedStep, PreflightCheck
from ..api.phase import Phase
from ..aws.errors import KMS_KEY_CODES
from ..aws.rds import AVAILABLE, SNAPSHOT_FAILED_STATUSES
from ..errors import RetryableError, TerminalError
from . import names
from .access import restored_cluster
from .cluster import restore_kms_key
from .context import OUTPUT_SNAPSHOT_ROLE, RestoreContext
from .deletion import tear_down_cluster
from .outcomes import Advance, Outcome, Wait
from .policy import allowing_policy
from .route import next_phase

# snapshot-role tag values (context.SNAPSHOT_ROLE_TAG): the product, and the snapshot it is copied from.
OUTPUT_ROLE = OUTPUT_SNAPSHOT_ROLE
INTERMEDIATE_ROLE = "output-intermediate"
FIELD = "spec.output.snapshot"


def snapshot_output(ctx: RestoreContext) -> Outcome:
    """Take the output snapshot of the restored cluster (its temporary name before a Replace's swap) and share it.

    Without kmsKeyId: CreateDBClusterSnapshot straight into the output identifier (the cluster's own key). With
    it: CreateDBClusterSnapshot into the intermediate `aurora-restore-<uid>-output`, CopyDBClusterSnapshot into
    the output identifier with that key, then DeleteDBClusterSnapshot of the intermediate. Once available,
    ModifyDBClusterSnapshotAttribute adds every shareWith account missing from its `restore` attribute. Each
    snapshot is found by identifier first and used only with this restore's UID tag. Records
    status.outputSnapshot. Next: SwappingTarget (Replace) or Publishing (steps/route.py). Fails
    InvalidOutputSnapshotIdentifier, OutputSnapshotTaken (a snapshot of that name is not this restore's; left
    untouched), OutputSnapshotNotEncrypted (a key for an unencrypted cluster: AWS cannot encrypt by copying),
    KmsKeyNotUsable, OutputSnapshotFailed, NotAllowedByPolicy (the policies, checked again before the share, no
    longer allow an account of shareWith), or OutputSnapshotNotShareable (AWS refused the share: e.g. the
    AWS-managed key aws/rds).
    """
    wanted = ctx.spec.output_snapshot
    identifier = output_identifier(ctx)
    record = ctx.status.output_snapshot or OutputSnapshotStatus(
        identifier=identifier, kms_key_id=wanted.kms_key_id,
        intermediate_identifier=intermediate_identifier(ctx) if wanted.kms_key_id else None)
    final = owned_snapshot(ctx, identifier, "the output snapshot")
    if final is None:
        return start_snapshot(ctx, record)
    record = record.model_copy(update={"arn": final.get("DBClusterSnapshotArn"),
                                       "kms_key_id": final.get("KmsKeyId") or record.kms_key_id})
    waiting = _not_available(final, identifier, "output snapshot", record)
    if waiting is not None:
        return waiting
    if record.intermediate_identifier and not record.intermediate_deleted:
        _delete_owned(ctx, record.intermediate_identifier)
        record = record.model_copy(update={"intermediate_deleted": True})
    record = record.model_copy(update={"shared_with": share(ctx, identifier, wanted.share_with),
                                       "available_at": record.available_at or ctx.now})
    shared = f", shared with {', '.join(record.shared_with)}" if record.shared_with else ""
    return Advance(next_phase(ctx, Phase.SNAPSHOTTING_OUTPUT), f"output snapshot {identifier} available{shared}",
                   updates={"output_snapshot": record})


def start_snapshot(ctx: RestoreContext, record: OutputSnapshotStatus) -> Outcome:
    """The output snapshot does not exist yet: take it (no key), or take the intermediate and, once it is
    available, copy it with the key."""
    wanted = ctx.spec.output_snapshot
    cluster = restored_cluster(ctx)
    if wanted.kms_key_id and not cluster.get("StorageEncrypted"):
        raise TerminalError("OutputSnapshotNotEncrypted", not_encrypted_message(ctx.cluster_identifier))
    if record.intermediate_identifier is None:
        _create(ctx, cluster, record.identifier, OUTPUT_ROLE)
        return Wait(f"taking output snapshot {record.identifier} of cluster {ctx.cluster_identifier}",
                    updates={"output_snapshot": record})
    intermediate = owned_snapshot(ctx, record.intermediate_identifier, "the intermediate output snapshot")
    if intermediate is None:
        _create(ctx, cluster, record.intermediate_identifier, INTERMEDIATE_ROLE)
        return Wait(f"taking snapshot {record.intermediate_identifier} of cluster {ctx.cluster_identifier}, to be "
                    f"copied with {FIELD}.kmsKeyId into {record.identifier}", updates={"output_snapshot": record})
    waiting = _not_available(intermediate, record.intermediate_identifier, "intermediate output snapshot", record)
    if waiting is not None:
        return waiting
    try:
        ctx.target.rds.copy_snapshot(
            source_arn=intermediate["DBClusterSnapshotArn"], source_region=ctx.spec.target_region,
            identifier=record.identifier, kms_key_id=wanted.kms_key_id, copy_tags=False,
            tags=ctx.snapshot_tags(OUTPUT_ROLE))
    except TerminalError as error:
        if error.reason == "DBClusterSnapshotAlreadyExistsFault":  # our own copy whose answer was lost
            raise RetryableError("OutputSnapshotAppeared", error.message) from None
        if error.reason in KMS_KEY_CODES:
            raise TerminalError("KmsKeyNotUsable", f"{FIELD}.kmsKeyId {wanted.kms_key_id!r} cannot be used in "
                                f"{ctx.spec.target_region}: {error.message}") from None
        raise
    return Wait(f"copying snapshot {record.intermediate_identifier} into output snapshot {record.identifier} with "
                f"KMS key {wanted.kms_key_id}", updates={"output_snapshot": record})


def _create(ctx: RestoreContext, cluster: dict[str, Any], identifier: str, role: str) -> None:
    """CreateDBClusterSnapshot tagged with the restore's UID and `role`; a cluster still settling is waited for."""
    if cluster.get("Status") != AVAILABLE:
        raise RetryableError("ClusterNotAvailable", f"cluster {ctx.cluster_identifier} is {cluster.get('Status')}; "
                             f"the snapshot {identifier} is taken once it is available")
    try:
        ctx.target.rds.create_cluster_snapshot(identifier, ctx.cluster_identifier, ctx.snapshot_tags(role))
    except TerminalError as error:
        if error.reason == "DBClusterSnapshotAlreadyExistsFault":  # ours, answer lost: the next pass checks
            raise RetryableError("OutputSnapshotAppeared", error.message) from None
        raise


def _not_available(snapshot: dict[str, Any], identifier: str, label: str,
                   record: OutputSnapshotStatus) -> Outcome | None:
    status = snapshot.get("Status", "")
    if status in SNAPSHOT_FAILED_STATUSES:
        raise TerminalError("OutputSnapshotFailed", f"{label} {identifier!r} is {status}")
    if status == AVAILABLE:
        return None
    progress = snapshot.get("PercentProgress")
    detail = f" ({progress}%)" if progress is not None else ""
    return Wait(f"{label} {identifier} is {status}{detail}", updates={"output_snapshot": record})


def share(ctx: RestoreContext, identifier: str, accounts: list[str]) -> list[str]:
    """Add every account missing from the snapshot's `restore` attribute; the accounts of `accounts` shared.

    The share is where the data leaves the account, so the policies are checked again first, as they are now
    (snapshotShareAccounts narrowed since Pending stops it: NotAllowedByPolicy, and the partial output goes)."""
    rds = ctx.target.rds
    present = set(rds.restore_accounts(identifier)) if accounts else set()
    missing = [account for account in accounts if account not in present]
    if missing:
        allowing_policy(ctx, ask_aws=True)  # as in Preflight: the account from STS if a policy names one
    for account in missing:
        try:
            rds.share_snapshot(identifier, account)
        except TerminalError as error:
            if error.reason in ("InvalidParameterValue", "InvalidParameterCombination"):
                raise TerminalError(
                    "OutputSnapshotNotShareable",
                    f"AWS refused to share output snapshot {identifier!r} with account {account}: {error.message}. "
                    f"An encrypted snapshot can be shared only under a customer-managed KMS key: set "
                    f"{FIELD}.kmsKeyId to one whose key policy allows the accounts of shareWith",
                ) from None
            raise
    return list(accounts)


def owned_snapshot(ctx: RestoreContext, identifier: str, label: str) -> dict[str, Any] | None:
    """The snapshot `identifier` if it exists; OutputSnapshotTaken when it does without this restore's UID."""
    snapshot = ctx.target.rds.describe_snapshot(identifier)
    if snapshot is not None and not ctx.owns(snapshot):
        raise TerminalError("OutputSnapshotTaken", taken_message(identifier, label, ctx.spec.target_region))
    return snapshot


def _delete_owned(ctx: RestoreContext, identifier: str) -> bool:
    """DeleteDBClusterSnapshot when the snapshot carries this restore's UID; True when one was there."""
    snapshot = ctx.target.rds.describe_snapshot(identifier)
    if snapshot is None or not ctx.owns(snapshot):
        return False
    if snapshot.get("Status") != "deleting":
        ctx.target.rds.delete_snapshot(identifier)
    return True


# --- names ------------------------------------------------------------------------------------------------------

def fill_identifier(template: str, started_at: datetime) -> str:
    """spec.output.snapshot.identifier with {date} (YYYYMMDD) and {time} (HHMM) of `started_at` in UTC, lower
    case (RDS stores identifiers so)."""
    moment = started_at.astimezone(timezone.utc) if started_at.tzinfo else started_at
    return template.replace("{date}", moment.strftime("%Y%m%d")).replace("{time}", moment.strftime("%H%M")).lower()


def output_identifier(ctx: RestoreContext) -> str:
    """The output snapshot's identifier; InvalidOutputSnapshotIdentifier when the filled-in name breaks RDS's
    rules (1-63 letters, digits, hyphens; a letter first; no trailing or double hyphen)."""
    template = ctx.spec.output_snapshot.identifier
    started = ctx.status.started_at or ctx.now
    identifier = fill_identifier(template, started)
    if not names.is_valid_identifier(identifier):
        raise TerminalError("InvalidOutputSnapshotIdentifier", invalid_identifier_message(template, identifier))
    return identifier


def intermediate_identifier(ctx: RestoreContext) -> str:
    """The snapshot of the cluster copied into the output with kmsKeyId (57 characters)."""
    return f"{names.COPY_PREFIX}{ctx.uid}-output"


def invalid_identifier_message(template: str, identifier: str) -> str:
    return (f"{FIELD}.identifier {template!r} gives {identifier!r}, which is no valid snapshot identifier: 1 to "
            f"{names.RDS_IDENTIFIER_MAX} letters, digits or hyphens, a letter first, no trailing or double hyphen "
            f"({len(identifier)} characters)")


def taken_message(identifier: str, label: str, region: str) -> str:
    return (f"a snapshot named {identifier!r} ({label}) exists in {region} but was not made by this restore; left "
            f"untouched: choose another {FIELD}.identifier (e.g. with {{date}}) or delete that snapshot")


def not_encrypted_message(cluster: str) -> str:
    return (f"{FIELD}.kmsKeyId is given but the restored cluster {cluster!r} is unencrypted, and AWS cannot "
            f"encrypt a snapshot by copying it: set spec.target.kmsKeyId so the cluster is encrypted, or leave "
            f"{FIELD}.kmsKeyId unset")


# --- preflight and plan -----------------------------------------------------------------------------------------

def output_checks(ctx: RestoreContext):
    """Preflight's checks of spec.output.snapshot (all read-only): a valid identifier not taken by someone else,
    kmsKeyId existing in the target region and shareable, or without it (shareWith set) a cluster key that is
    not the AWS-managed aws/rds, and deleteClusterAfter against deletion protection."""
    wanted = ctx.spec.output_snapshot
    if wanted is None:
        return
    try:
        identifier = output_identifier(ctx)
    except TerminalError as error:
        yield _problem(f"{FIELD}.identifier", error.message, error.reason)
    else:
        snapshot = ctx.target.rds.describe_snapshot(identifier)
        if snapshot is not None and not ctx.owns(snapshot):
            yield _problem(f"{FIELD}.identifier", taken_message(identifier, "the output snapshot",
                                                                ctx.spec.target_region), "OutputSnapshotTaken")
        else:
            yield _passed(f"{FIELD}.identifier", identifier)
    yield _key_check(ctx)
    if wanted.delete_cluster_after and ctx.spec.target.deletion_protection:
        yield _problem(f"{FIELD}.deleteClusterAfter", f"{FIELD}.deleteClusterAfter deletes the restored cluster, "
                       f"but spec.target.deletionProtection would stop that: turn one of them off",
                       "OutputClusterProtected")


def _key_check(ctx: RestoreContext) -> PreflightCheck | None:
    wanted = ctx.spec.output_snapshot
    field = f"{FIELD}.kmsKeyId"
    if wanted.kms_key_id:
        key = ctx.target.kms.describe_key(wanted.kms_key_id)
        if key is None:
            return _problem(field, f"{field} {wanted.kms_key_id!r}: no such KMS key in {ctx.spec.target_region}",
                            "KmsKeyNotUsable")
        if key.get("KeyManager") == "AWS" and wanted.share_with:
            return _problem(field, f"{field} {wanted.kms_key_id!r} is an AWS-managed key, and AWS does not share a "
                            f"snapshot encrypted with it: use a customer-managed key whose key policy allows the "
                            f"accounts of shareWith", "OutputSnapshotKeyNotShareable")
        if ctx.status.snapshot is not None and ctx.status.snapshot.encrypted is False and not _restore_key(ctx):
            return _problem(field, not_encrypted_message(ctx.target_identifier), "OutputSnapshotNotEncrypted")
        return _passed(field, "customer-managed key" if key.get("KeyManager") == "CUSTOMER" else "")
    source = ctx.status.snapshot or ctx.status.clone  # a clone keeps its source cluster's key
    cluster_key = _restore_key(ctx) or (source.kms_key_id if source else _point_in_time_key(ctx))
    if not wanted.share_with or not cluster_key:
        return None  # nothing shared, or the key is not known before the restore (the share then says)
    key = ctx.target.kms.describe_key(cluster_key)
    if key is not None and key.get("KeyManager") == "AWS":
        return _problem(field, f"{field} is unset, so the output snapshot keeps the restored cluster's key "
                        f"{cluster_key!r}, the AWS-managed aws/rds key, and AWS does not share a snapshot encrypted "
                        f"with it: set {field} to a customer-managed key whose key policy allows the accounts of "
                        f"shareWith", "OutputSnapshotKeyNotShareable")
    return _passed(field, f"unset: the output snapshot keeps the cluster's key {cluster_key}")


def _point_in_time_key(ctx: RestoreContext) -> str | None:
    """A point-in-time restore without target.kmsKeyId keeps its source cluster's key."""
    pit = ctx.spec.source.point_in_time
    cluster = ctx.source.rds.describe_cluster(pit.cluster_identifier) if pit else None
    return cluster.get("KmsKeyId") if cluster else None


def _restore_key(ctx: RestoreContext) -> str | None:
    """The key the restore encrypts the cluster with (target.kmsKeyId, or the copy's key)."""
    return restore_kms_key(ctx) or (ctx.spec.copy_.kms_key_id if ctx.spec.needs_copy else None)


def plan_steps(ctx: RestoreContext) -> list[PlannedStep]:
    """What a real run would call for spec.output.snapshot, in order."""
    wanted = ctx.spec.output_snapshot
    if wanted is None:
        return []
    try:
        identifier = output_identifier(ctx)
    except TerminalError:
        return []
    phase = Phase.SNAPSHOTTING_OUTPUT
    steps = []
    if wanted.kms_key_id:
        intermediate = intermediate_identifier(ctx)
        steps += [
            PlannedStep(phase=phase, action="CreateDBClusterSnapshot", parameters={
                "DBClusterSnapshotIdentifier": intermediate, "DBClusterIdentifier": ctx.cluster_identifier}),
            PlannedStep(phase=phase, action="CopyDBClusterSnapshot", parameters={
                "SourceDBClusterSnapshotIdentifier": intermediate, "TargetDBClusterSnapshotIdentifier": identifier,
                "KmsKeyId": wanted.kms_key_id}),
            PlannedStep(phase=phase, action="DeleteDBClusterSnapshot",
                        parameters={"DBClusterSnapshotIdentifier": intermediate}),
        ]
    else:
        steps.append(PlannedStep(phase=phase, action="CreateDBClusterSnapshot", parameters={
            "DBClusterSnapshotIdentifier": identifier, "DBClusterIdentifier": ctx.cluster_identifier}))
    if wanted.share_with:
        steps.append(PlannedStep(phase=phase, action="ModifyDBClusterSnapshotAttribute", parameters={
            "DBClusterSnapshotIdentifier": identifier, "AttributeName": "restore",
            "ValuesToAdd": ", ".join(wanted.share_with)}))
    if wanted.delete_cluster_after:
        for number in range(1, ctx.spec.target.instances.count + 1):
            steps.append(PlannedStep(phase=Phase.CLEANING_UP, action="DeleteDBInstance",
                                     parameters={"DBInstanceIdentifier": ctx.instance_identifier(number)}))
        steps.append(PlannedStep(phase=Phase.CLEANING_UP, action="DeleteDBCluster", parameters={
            "DBClusterIdentifier": ctx.target_identifier, "SkipFinalSnapshot": "true"}))
    return steps


def _passed(name: str, message: str = "") -> PreflightCheck:
    return PreflightCheck(name=name, passed=True, message=message)


def _problem(name: str, message: str, reason: str) -> PreflightCheck:
    return PreflightCheck(name=name, passed=False, message=message, reason=reason)


# --- CleaningUp and the ways out ---------------------------------------------------------------------------------

def delete_cluster_after(ctx: RestoreContext) -> tuple[str | None, dict]:
    """CleaningUp with deleteClusterAfter: one teardown pass of the restored cluster (instances first, no final
    snapshot; only with this restore's UID tag). (what is waited for, or None once it is gone; status updates
    recording clusterDeletedAt). Never touches the output snapshot."""
    wanted, record = ctx.spec.output_snapshot, ctx.status.output_snapshot
    if wanted is None or not wanted.delete_cluster_after or record is None or record.cluster_deleted_at:
        return None, {}
    cluster = ctx.target.rds.describe_cluster(ctx.target_identifier)
    if cluster is not None and ctx.owns(cluster):
        return tear_down_cluster(ctx.target.rds, cluster, final_snapshot_identifier=None,
                                 label="restored cluster").message, {}
    if cluster is not None:  # someone else's of that name: never ours to delete, and not reported as deleted
        return None, {}
    return None, {"output_snapshot": record.model_copy(update={"cluster_deleted_at": ctx.now})}


def remove_partial_output(ctx: RestoreContext) -> dict:
    """After a failure or a cancel: delete the intermediate snapshot, and the output snapshot unless it was
    finished (status.outputSnapshot.availableAt: taken from the masked, verified cluster, copied and shared), if
    they carry this restore's UID, whatever status recorded; a snapshot still being created is retried
    (RetryableError). A finished output is the product, whatever fails after it (Publishing, the swap of a
    Replace, deleteClusterAfter): consumers may already be restoring from it. So is one AWS shows available and
    shared with every shareWith account though status has no availableAt (killed between the last share and the
    status write, then a timeout or a cancel). The status updates marking what went."""
    wanted = ctx.spec.output_snapshot
    if wanted is None:
        return {}
    try:
        identifier = output_identifier(ctx)
    except TerminalError:
        return {}  # an invalid name: nothing was ever made under it
    record = ctx.status.output_snapshot
    finished = (record is not None and record.available_at is not None) or _finished_in_aws(
        ctx, identifier, wanted.share_with)
    names = [intermediate_identifier(ctx)] if finished else [intermediate_identifier(ctx), identifier]
    found = [_delete_owned(ctx, name) for name in names]
    if record is None or not any(found):
        return {}
    update = {"intermediate_deleted": True if record.intermediate_identifier else None}
    if not finished:
        update["deleted"] = True
    return {"output_snapshot": record.model_copy(update=update)}


def _finished_in_aws(ctx: RestoreContext, identifier: str, accounts: list[str]) -> bool:
    """The output snapshot is this restore's, available, and shared with every account it is for."""
    snapshot = ctx.target.rds.describe_snapshot(identifier)
    if snapshot is None or not ctx.owns(snapshot) or snapshot.get("Status") != "available":
        return False
    return not accounts or set(accounts) <= set(ctx.target.rds.restore_accounts(identifier))


def output_message(record: OutputSnapshotStatus | None) -> str:
    """What the final message says of the output snapshot ('' without one)."""
    if record is None:
        return ""
    shared = f", shared with {', '.join(record.shared_with)}" if record.shared_with else ""
    deleted = "; the cluster was deleted after it (deleteClusterAfter)" if record.cluster_deleted_at else ""
    return f"; output snapshot {record.identifier} ({record.arn}){shared}{deleted}"
