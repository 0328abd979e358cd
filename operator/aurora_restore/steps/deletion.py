"""deletionPolicy Delete: when the AuroraRestore is deleted, remove the cluster it restored. Nothing else."""

from .context import RestoreContext

DELETING = "deleting"


def delete_restored_cluster(ctx: RestoreContext) -> str | None:
    """One pass of deleting the restored cluster; None once it is gone, else what is still being waited for.

    Only a cluster tagged with this restore's UID is touched: a cluster of the same name created by anyone
    else is left alone. Instances go first (AWS refuses to delete a cluster that has any), then the cluster,
    without a final snapshot: the user asked for it to be deleted.
    """
    identifier = ctx.spec.target.cluster_identifier
    cluster = ctx.target_rds.describe_cluster(identifier)
    if cluster is None or not ctx.owns(cluster):
        return None
    instances = ctx.target_rds.list_cluster_instances(identifier)
    live = [i["DBInstanceIdentifier"] for i in instances if i.get("DBInstanceStatus") != DELETING]
    for instance in live:
        ctx.target_rds.delete_instance(instance)
    if instances:
        return f"deleting {len(instances)} instance(s) of cluster {identifier}"
    if cluster.get("Status") != DELETING:
        ctx.target_rds.delete_cluster(identifier, final_snapshot_identifier=None)
    return f"deleting cluster {identifier}"
