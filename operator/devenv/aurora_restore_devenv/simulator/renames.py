"""Renaming a DB cluster (ModifyDBCluster with NewDBClusterIdentifier) the way Amazon RDS does.

moto stores the cluster under the new name, but overwrites a cluster that already has that name,
leaves the cluster's instances and automated backups with the old cluster id and shows no
`renaming`. Here, as in AWS:

- the new identifier must be valid and free: InvalidParameterValue, DBClusterAlreadyExistsFault
  (checked before the lifecycle's state check, which refuses a cluster that is not `available`);
- the cluster answers to the new name at once and to the old one no longer, is `renaming` for
  the simulator's delay, then `available`;
- its instances and its automated backups report the new cluster id; its endpoints and ARN
  derive from the identifier and change with it; its tags, its DbClusterResourceId and (with
  databases) its server stay with it, since they belong to the cluster object, not the name.

A rename without ApplyImmediately also happens at once (AWS waits for the maintenance window).
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.rds.exceptions import RDSClientError
from moto.rds.models import DBCluster, RDSBackend

from . import rulebook
from .rds_hooks import Proceed, RdsHooks, RdsRequest
from .rds_lifecycle import RdsLifecycle


def register(hooks: RdsHooks, lifecycle: RdsLifecycle) -> None:
    """Check the new name before the lifecycle's state check; rename around moto. The new name's syntax is the
    rulebook's `identifier` rule, checked in validation.py with every other identifier."""
    hooks.before("modify_db_cluster", refuse_taken_new_identifier)
    hooks.around("modify_db_cluster", ClusterRenames(lifecycle).rename)


def is_valid_cluster_identifier(identifier: str) -> bool:
    return rulebook.is_valid_identifier(identifier)


def refuse_taken_new_identifier(request: RdsRequest) -> None:
    """Rulebook `rename-taken`: a rename cannot take the name of a cluster that exists (moto overwrote
    that cluster). A cluster being deleted still holds its name, as for CreateDBCluster."""
    new_identifier = request.params.get("NewDBClusterIdentifier")
    if new_identifier is None:
        return
    try:
        rulebook.check_new_cluster_identifier(new_identifier, new_identifier in request.backend.clusters)
    except rulebook.RuleViolation as violation:
        raise RDSClientError(violation.code, violation.message) from None


class ClusterRenames:
    """Carries what refers to a cluster by name over to its new name."""

    def __init__(self, lifecycle: RdsLifecycle) -> None:
        self.lifecycle = lifecycle

    def rename(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        """The renamed cluster is `renaming` for the delay: the user guide says it is not
        available until its new name takes effect. The answer already shows it so."""
        new_identifier = request.params.get("NewDBClusterIdentifier")
        cluster = request.backend.clusters.get(request.params.get("DBClusterIdentifier"))
        if new_identifier is None or cluster is None:
            return proceed()
        old_identifier = cluster.db_cluster_identifier
        result = proceed()
        follow_rename(request.backend, cluster, old_identifier)
        self.lifecycle.start(cluster, ("renaming",), "available", previous_identifier=old_identifier)
        # moto answers with a copy taken before the transition started.
        return ActionResult({**result.result, "DBCluster": cluster})


def follow_rename(backend: RDSBackend, cluster: DBCluster, old_identifier: str) -> None:
    """Point the cluster's instances and automated backups at its new identifier.

    Instances: the cluster's DBClusterMembers are the instances whose cluster id is the
    cluster's, so moto's members were lost with the old name. Automated backups are matched by
    DbClusterResourceId (immutable, says the reference), so a retained backup of an earlier,
    deleted cluster of the same name stays with that one.
    """
    for instance in backend.databases.values():
        if getattr(instance, "db_cluster_identifier", None) == old_identifier:
            instance.db_cluster_identifier = cluster.db_cluster_identifier
    for snapshot in backend.cluster_snapshots.values():
        if (
            snapshot.snapshot_type == "automated"
            and snapshot.db_cluster_identifier == old_identifier
            and snapshot.cluster.db_cluster_resource_id == cluster.db_cluster_resource_id
        ):
            snapshot.db_cluster_identifier = cluster.db_cluster_identifier
