"""SharingSnapshot: make a snapshot of another account usable by the target account (cross-account restores)."""

from ..api.models import SharedSnapshotStatus
from ..api.phase import Phase
from ..aws.rds import AVAILABLE, SNAPSHOT_FAILED_STATUSES
from ..errors import RetryableError, TerminalError
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait


def share_snapshot(ctx: RestoreContext) -> Outcome:
    """As the source role: copy an automated snapshot to a manual one (AWS shares only manual snapshots), then
    ModifyDBClusterSnapshotAttribute "restore" += the target account. Next: CopyingSnapshot, where the target
    account copies the shared snapshot with its own KMS key. A manual snapshot's share is counted per restore
    (ctx.share_grants) before it is made. The share and the intermediate copy are removed in CleaningUp (or when
    the restore fails or is cancelled); the share only by its last holder, and only if an operator restore
    added it."""
    pinned = ctx.status.snapshot
    target_account = ctx.target.account.account_id
    record = ctx.status.shared_snapshot
    if pinned.snapshot_type == "automated":
        identifier = ctx.shared_snapshot_identifier
        manual = ctx.source.rds.describe_snapshot(identifier)
        if manual is None:
            try:
                manual = ctx.source.rds.copy_snapshot(
                    source_arn=pinned.arn,
                    source_region=ctx.spec.source.region,
                    identifier=identifier,
                    kms_key_id=pinned.kms_key_id,
                    copy_tags=False,
                    tags=ctx.snapshot_tags("share"),
                )
            except TerminalError as error:
                if error.reason != "DBClusterSnapshotAlreadyExistsFault":
                    raise
                # Our own copy whose answer was lost, or not visible yet: the next pass finds it and checks it.
                raise RetryableError("CopyAppeared", error.message) from None
        elif not ctx.owns(manual):
            raise TerminalError(
                "ShareNameTaken",
                f"a snapshot named {identifier!r} exists in the source account but was not made by this restore",
            )
        record = SharedSnapshotStatus(identifier=identifier, arn=manual["DBClusterSnapshotArn"],
                                      shared_with=target_account, intermediate=True, shared_by_restore=True)
        status = manual.get("Status", "")
        if status in SNAPSHOT_FAILED_STATUSES:
            raise TerminalError("ShareCopyFailed", f"manual copy {identifier!r} of {pinned.identifier!r} is {status}")
        if status != AVAILABLE:
            progress = manual.get("PercentProgress") or 0
            return Wait(f"copying automated snapshot {pinned.identifier} to manual {identifier} to share it: "
                        f"{progress}%", updates={"shared_snapshot": record})
    else:
        # The user's own manual snapshot, shared in place: counted in Kubernetes, so that one restore's cleanup
        # never removes a share another restore still needs, nor one the owner made.
        record = record or SharedSnapshotStatus(identifier=pinned.identifier, arn=pinned.arn,
                                                shared_with=target_account)
        grant = ctx.share_grants(pinned.arn, target_account)
        added = grant.join(ctx.holder, lambda: target_account in ctx.source.rds.restore_accounts(record.identifier))
        record = record.model_copy(update={"shared_by_restore": added})
    if target_account not in ctx.source.rds.restore_accounts(record.identifier):
        ctx.source.rds.share_snapshot(record.identifier, target_account)
    return Advance(Phase.COPYING_SNAPSHOT, f"snapshot {record.identifier} shared with account {target_account}",
                   updates={"shared_snapshot": record})
