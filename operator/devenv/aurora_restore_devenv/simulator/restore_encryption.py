"""Encryption of a cluster restored from a snapshot, as RDS decides it (moto restores every cluster unencrypted).

API reference, RestoreDBClusterFromSnapshot KmsKeyId: "If you don't specify a value for the KmsKeyId parameter,
then: if the DB snapshot or DB cluster snapshot in SnapshotIdentifier is encrypted, then the restored DB cluster
is encrypted using the KMS key that was used to encrypt the DB snapshot or DB cluster snapshot; if [it] isn't
encrypted, then the restored DB cluster isn't encrypted." A KmsKeyId given encrypts the restored cluster with that
key, which is how an unencrypted snapshot becomes an encrypted cluster (a copy cannot encrypt it).
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.kms.models import kms_backends

from .rds_hooks import Proceed, RdsHooks, RdsRequest
from .shared_snapshots import find_cluster_snapshot


def register(hooks: RdsHooks) -> None:
    hooks.around("restore_db_cluster_from_snapshot", encrypt_as_rds_does)


def encrypt_as_rds_does(request: RdsRequest, proceed: Proceed) -> ActionResult:
    """Set the restored cluster's StorageEncrypted and KmsKeyId from the request's key or the snapshot's."""
    snapshot = find_cluster_snapshot(request, request.params.get("SnapshotIdentifier") or "")
    key_id = request.params.get("KmsKeyId")
    result = proceed()
    cluster = request.backend.clusters.get(request.params.get("DBClusterIdentifier"))
    if cluster is not None and snapshot is not None:
        encrypted = bool(key_id) or bool(snapshot.storage_encrypted)
        cluster.storage_encrypted = encrypted
        cluster.kms_key_id = (key_arn(key_id, request) if key_id else snapshot.kms_key_id) if encrypted else None
    return result


def key_arn(key_id: str, request: RdsRequest) -> str:
    """RDS reports a cluster's KmsKeyId as the key's ARN, whichever form (id, alias) the request named it by."""
    try:
        return kms_backends[request.account][request.region].describe_key(key_id).arn
    except (KeyError, AttributeError):  # validation refuses unknown keys before this runs
        return key_id
