"""Automated backups of DB clusters: removed or retained with the cluster, and described, as in AWS.

moto names the automated snapshot it takes at cluster creation `rds:<id>-<YYYY-MM-DD-HH-MM>`
and keeps it after the cluster is deleted, so creating or restoring the same cluster id twice
within a minute fails with DBClusterSnapshotAlreadyExistsFault (after creating the cluster).
AWS removes a cluster's automated backups with the cluster (unless DeleteAutomatedBackups is
false), which `remove()` does; and a name clash left over from a retained backup is ignored.

A cluster deleted with DeleteAutomatedBackups=False leaves a retained automated backup
(`retain()`), which DescribeDBClusterAutomatedBackups lists; moto has no such action. Backups
belong to the cluster's DbClusterResourceId, which a rename does not change.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.rds.exceptions import DBClusterSnapshotAlreadyExistsError, InvalidParameterValue, RDSClientError
from moto.rds.models import DBCluster, RDSBackend
from moto.rds.responses import RDSResponse

_moto_save_automated_backup = DBCluster.save_automated_backup

# Where a backend keeps the retained automated backups of its deleted clusters (gone with a reset).
RETAINED_ATTRIBUTE = "_simulated_retained_cluster_backups"
# DescribeDBClusterAutomatedBackups filters (API reference: status, db-cluster-id, db-cluster-resource-id).
FILTER_FIELDS = {
    "status": ("Status",),
    "db-cluster-id": ("DBClusterIdentifier", "DBClusterArn"),
    "db-cluster-resource-id": ("DbClusterResourceId", "DBClusterAutomatedBackupsArn"),
}


class DBClusterAutomatedBackupNotFoundFault(RDSClientError):
    """The reference's only error of DescribeDBClusterAutomatedBackups: no automated backup was
    found for the DB cluster (HTTP 404, from the service model)."""

    def __init__(self, which: str) -> None:
        super().__init__("DBClusterAutomatedBackupNotFoundFault", f"No automated backup found for {which}.")


def install() -> None:
    """Let a cluster be created while an automated snapshot of the same name exists; add the
    DescribeDBClusterAutomatedBackups action (before any hook refers to it)."""
    DBCluster.save_automated_backup = _save_automated_backup_once_a_minute
    RDSResponse.describe_db_cluster_automated_backups = describe_db_cluster_automated_backups


def remove(backend: RDSBackend, cluster: DBCluster) -> None:
    """Delete the automated snapshots of a cluster that has been deleted (AWS's default)."""
    for snapshot_id, snapshot in list(backend.cluster_snapshots.items()):
        if _is_automated_snapshot_of(snapshot, cluster):
            del backend.cluster_snapshots[snapshot_id]


def retain(backend: RDSBackend, cluster: DBCluster) -> None:
    """Keep the automated backup of a cluster deleted with DeleteAutomatedBackups=False. The
    DBClusterAutomatedBackup shape: the cluster's backups and its properties as they were at its
    deletion, with the status `retained`."""
    deleted_at = utcnow()
    automated_snapshots = [s for s in backend.cluster_snapshots.values() if _is_automated_snapshot_of(s, cluster)]
    earliest = min([s.created for s in automated_snapshots], default=cluster.earliest_restorable_time)
    backup_id = "cab-" + uuid.uuid4().hex[:26]
    backup: dict[str, Any] = {
        "Engine": cluster.engine,
        "DBClusterAutomatedBackupsArn": (
            f"arn:{backend.partition}:rds:{backend.region_name}:{backend.account_id}:cluster-auto-backup:{backup_id}"
        ),
        "DBClusterIdentifier": cluster.db_cluster_identifier,
        "RestoreWindow": {"EarliestTime": earliest, "LatestTime": deleted_at},
        "MasterUsername": cluster.master_username,
        "DbClusterResourceId": cluster.db_cluster_resource_id,
        "Region": backend.region_name,
        "LicenseModel": cluster.license_model,
        "Status": "retained",
        "IAMDatabaseAuthenticationEnabled": cluster.iam_database_authentication_enabled,
        "ClusterCreateTime": cluster.cluster_create_time,
        "StorageEncrypted": cluster.storage_encrypted,
        "AllocatedStorage": cluster.allocated_storage,
        "EngineVersion": cluster.engine_version,
        "DBClusterArn": cluster.db_cluster_arn,
        "BackupRetentionPeriod": cluster.backup_retention_period,
        "PreferredBackupWindow": cluster.preferred_backup_window,
        "EngineMode": cluster.engine_mode,
        "AvailabilityZones": list(cluster.availability_zones),
        "Port": cluster.__dict__.get("port"),  # the stored port: a database server has gone with the cluster
        "TagList": list(cluster.tags),
    }
    if cluster.storage_encrypted:
        backup["KmsKeyId"] = cluster.kms_key_id
    retained_backups(backend).append(backup)


def retained_backups(backend: RDSBackend) -> list[dict[str, Any]]:
    return backend.__dict__.setdefault(RETAINED_ATTRIBUTE, [])


def describe_db_cluster_automated_backups(self: RDSResponse) -> ActionResult:
    """DescribeDBClusterAutomatedBackups: the retained backups of deleted clusters.

    The reference lists `retained` (backups of deleted clusters) as the only status of a
    DBClusterAutomatedBackup, so the backups of current clusters are not listed here. An
    explicit DBClusterIdentifier or DbClusterResourceId without a backup is
    DBClusterAutomatedBackupNotFoundFault; filters that match nothing give an empty list.
    """
    backups = list(retained_backups(self.backend))
    for parameter in ("DBClusterIdentifier", "DbClusterResourceId"):
        value = self.params.get(parameter)
        if value:  # both case-insensitive, says the reference
            backups = [b for b in backups if b[parameter].lower() == value.lower()]
            if not backups:
                raise DBClusterAutomatedBackupNotFoundFault(value)
    for name, values in ((f["Name"], f["Values"]) for f in self.params.get("Filters") or []):
        if name not in FILTER_FIELDS:
            raise InvalidParameterValue(f"Unrecognized filter name: {name}")
        wanted_values = {v.lower() for v in values}
        backups = [b for b in backups if any(b[field].lower() in wanted_values for field in FILTER_FIELDS[name])]
    return ActionResult({"DBClusterAutomatedBackups": backups})


def _is_automated_snapshot_of(snapshot: Any, cluster: DBCluster) -> bool:
    """By resource id, which stays the same through renames and differs between two clusters
    that had the same name."""
    return (
        snapshot.snapshot_type == "automated"
        and snapshot.cluster.db_cluster_resource_id == cluster.db_cluster_resource_id
    )


def _save_automated_backup_once_a_minute(cluster: DBCluster) -> None:
    try:
        _moto_save_automated_backup(cluster)
    except DBClusterSnapshotAlreadyExistsError:
        pass  # this minute's automated snapshot of that id exists already
