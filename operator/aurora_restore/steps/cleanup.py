"""CleaningUp: delete what the restore made only for itself. Never the source snapshot, never the cluster."""

from ..api.phase import Phase
from .context import RestoreContext
from .outcomes import Advance, Outcome


def clean_up(ctx: RestoreContext) -> Outcome:
    """Delete the copied snapshot, remove the cross-account share and its intermediate copy (when
    copy.deleteAfterRestore) and finish. Next: Succeeded."""
    updates = remove_intermediates(ctx)
    cluster = ctx.spec.target.cluster_identifier
    count = len(ctx.status.instances)
    return Advance(Phase.SUCCEEDED, f"cluster {cluster} restored with {count} instance(s)", updates=updates)


def remove_intermediates(ctx: RestoreContext) -> dict:
    """Everything the restore made only as a means to an end; also runs when a restore fails."""
    updates = delete_copied_snapshot(ctx, "copied_snapshot", ctx.target_rds)
    if ctx.status.staged_snapshot is not None:
        updates.update(delete_copied_snapshot(ctx, "staged_snapshot", ctx.staging_rds))
    updates.update(remove_share(ctx))
    return updates


def intermediates_pending(ctx_status, spec) -> bool:
    """Whether the copy, the share or the intermediate manual snapshot still need removing."""
    if not spec.copy_.delete_after_restore:
        return False
    copied, shared = ctx_status.copied_snapshot, ctx_status.shared_snapshot
    staged = ctx_status.staged_snapshot
    return bool(
        (copied is not None and not copied.deleted)
        or (staged is not None and not staged.deleted)
        or (shared is not None and shared.intermediate and not shared.deleted)
        or (shared is not None and shared.shared_by_restore and not shared.unshared)
    )


def remove_share(ctx: RestoreContext) -> dict:
    """Delete the intermediate manual copy (which ends its share and cancels it if still copying), or remove the
    share this restore added to the user's snapshot (ModifyDBClusterSnapshotAttribute "restore" -= target)."""
    shared = ctx.status.shared_snapshot
    if shared is None or not ctx.spec.copy_.delete_after_restore:
        return {}
    if shared.intermediate:
        if not shared.deleted:
            snapshot = ctx.source_rds.describe_snapshot(shared.identifier)
            if snapshot is not None and ctx.owns(snapshot):
                ctx.source_rds.delete_snapshot(shared.identifier)
            shared = shared.model_copy(update={"deleted": True, "unshared": True})
    elif shared.shared_by_restore and not shared.unshared:
        ctx.source_rds.unshare_snapshot(shared.identifier, shared.shared_with)
        shared = shared.model_copy(update={"unshared": True})
    return {"shared_snapshot": shared}


def delete_copied_snapshot(ctx: RestoreContext, field: str, rds) -> dict:
    """DeleteDBClusterSnapshot on a copy (status field `field`), only if this restore made it (our UID tag)."""
    copied = getattr(ctx.status, field)
    if copied is None or copied.deleted or not ctx.spec.copy_.delete_after_restore:
        return {}
    snapshot = rds.describe_snapshot(copied.identifier)
    if snapshot is not None and ctx.owns(snapshot):
        rds.delete_snapshot(copied.identifier)
    return {field: copied.model_copy(update={"deleted": True})}
