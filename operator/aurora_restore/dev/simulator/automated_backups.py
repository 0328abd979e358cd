"""Automated cluster snapshots that behave like AWS's around deletion and re-creation.

moto names the automated snapshot it takes at cluster creation `rds:<id>-<YYYY-MM-DD-HH-MM>`
and keeps it after the cluster is deleted, so creating or restoring the same cluster id twice
within a minute fails with DBClusterSnapshotAlreadyExistsFault (after creating the cluster).
AWS removes a cluster's automated backups with the cluster (unless DeleteAutomatedBackups is
false), which `remove()` does; and a name clash left over from a retained backup is ignored.
"""

from __future__ import annotations

from moto.rds.exceptions import DBClusterSnapshotAlreadyExistsError
from moto.rds.models import DBCluster, RDSBackend

_moto_save_automated_backup = DBCluster.save_automated_backup


def install() -> None:
    """Let a cluster be created while an automated snapshot of the same name exists."""
    DBCluster.save_automated_backup = _save_automated_backup_once_a_minute


def remove(backend: RDSBackend, cluster_identifier: str) -> None:
    """Delete the automated snapshots of a cluster that has been deleted."""
    for snapshot_id, snapshot in list(backend.cluster_snapshots.items()):
        if (
            snapshot.snapshot_type == "automated"
            and snapshot.db_cluster_identifier == cluster_identifier
        ):
            del backend.cluster_snapshots[snapshot_id]


def _save_automated_backup_once_a_minute(cluster: DBCluster) -> None:
    try:
        _moto_save_automated_backup(cluster)
    except DBClusterSnapshotAlreadyExistsError:
        pass  # this minute's automated snapshot of that id exists already
