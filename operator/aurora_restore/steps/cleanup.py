"""CleaningUp: delete what the restore made only for itself. Never the source snapshot, never the cluster."""

from ..api.phase import Phase
from .context import RestoreContext
from .outcomes import Advance, Outcome


def clean_up(ctx: RestoreContext) -> Outcome:
    """Delete the copied snapshot (when copy.deleteAfterRestore) and finish. Next: Succeeded."""
    updates = delete_copied_snapshot(ctx)
    cluster = ctx.spec.target.cluster_identifier
    count = len(ctx.status.instances)
    return Advance(Phase.SUCCEEDED, f"cluster {cluster} restored with {count} instance(s)", updates=updates)


def delete_copied_snapshot(ctx: RestoreContext) -> dict:
    """DeleteDBClusterSnapshot on the copy, only if this restore made it (its tag carries our UID).

    Also runs when a restore fails, so a failed cross-region restore leaves no copy behind.
    """
    copied = ctx.status.copied_snapshot
    if copied is None or copied.deleted or not ctx.spec.copy_.delete_after_restore:
        return {}
    snapshot = ctx.target_rds.describe_snapshot(copied.identifier)
    if snapshot is not None and ctx.owns(snapshot):
        ctx.target_rds.delete_snapshot(copied.identifier)
    return {"copied_snapshot": copied.model_copy(update={"deleted": True})}
