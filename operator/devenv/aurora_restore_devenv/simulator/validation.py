"""Parameter checks that AWS makes and moto does not, where a missing check hides a bug.

- CreateDBCluster and both restores refuse an identifier that exists (moto silently replaces
  the cluster): DBClusterAlreadyExistsFault.
- RestoreDBClusterFromSnapshot refuses an EngineVersion that is no valid target for the
  snapshot's engine version: InvalidParameterCombination. The rule, simpler than AWS's:
  the snapshot's own version is always valid; any other must be a known version of the engine
  (`KNOWN_ENGINE_VERSIONS`), of the same major version, and not lower.
- CopyDBClusterSnapshot and RestoreDBClusterFromSnapshot refuse a KmsKeyId (key id, key ARN,
  alias name or alias ARN) that names no enabled key in the KMS of the caller's account and
  the request's region: KMSKeyNotAccessibleFault (moto crashes on an unknown alias).
- CopyDBClusterSnapshot of an unencrypted snapshot refuses any KmsKeyId (API reference,
  CopyDBClusterSnapshot KmsKeyId: "If you copy an unencrypted DB cluster snapshot and specify a
  value for the KmsKeyId parameter, an error is returned"; it names no code, so the simulator
  answers InvalidParameterCombination). Encryption is chosen at restore time instead.
- DeleteDBCluster needs either SkipFinalSnapshot or a FinalDBSnapshotIdentifier.
- ModifyDBCluster of a missing cluster is DBClusterNotFoundFault (moto crashes), and
  RotateMasterUserPassword needs a password managed in Secrets Manager (moto crashes).
  moto removes the cluster while it modifies it; when moto fails, the cluster is put back.
"""

from __future__ import annotations

import re

from moto.core.responses import ActionResult
from moto.kms.models import kms_backends
from moto.rds.exceptions import (
    DBClusterNotFoundError,
    InvalidParameterCombination,
    KMSKeyNotAccessibleFault,
    RDSClientError,
)

from .rds_hooks import Proceed, RdsHooks, RdsRequest
from .shared_snapshots import find_cluster_snapshot

# Aurora engine versions a restore may target. Representative, not exhaustive: add versions
# here when a test needs them. moto's default versions (aurora-postgresql 12.7,
# aurora-mysql 5.7.mysql_aurora.2.07.2) are included so that clusters created without an
# EngineVersion can be restored with an explicit one.
KNOWN_ENGINE_VERSIONS: dict[str, frozenset[str]] = {
    "aurora-postgresql": frozenset(
        """
        11.9 11.21 12.7 12.9 12.15 12.22 13.7 13.9 13.12 13.15 13.18 13.20
        14.3 14.6 14.9 14.10 14.12 14.15 14.17 15.2 15.3 15.4 15.5 15.6 15.7 15.8 15.10
        15.12 16.1 16.2 16.3 16.4 16.6 16.8 17.4 17.5
        """.split()
    ),
    "aurora-mysql": frozenset(
        """
        5.7.mysql_aurora.2.07.2 5.7.mysql_aurora.2.11.2 5.7.mysql_aurora.2.11.4
        5.7.mysql_aurora.2.12.0 5.7.mysql_aurora.2.12.1 5.7.mysql_aurora.2.12.2
        8.0.mysql_aurora.3.04.0 8.0.mysql_aurora.3.04.1 8.0.mysql_aurora.3.04.2
        8.0.mysql_aurora.3.05.2 8.0.mysql_aurora.3.06.0 8.0.mysql_aurora.3.07.1
        8.0.mysql_aurora.3.08.0 8.0.mysql_aurora.3.08.1 8.0.mysql_aurora.3.08.2
        8.0.mysql_aurora.3.09.0
        """.split()
    ),
}

CREATING_ACTIONS = (
    "create_db_cluster",
    "restore_db_cluster_from_snapshot",
    "restore_db_cluster_to_point_in_time",
)


def register(hooks: RdsHooks) -> None:
    for action in CREATING_ACTIONS:
        hooks.before(action, refuse_existing_cluster)
    hooks.before("restore_db_cluster_from_snapshot", check_restore_engine_version)
    hooks.before("restore_db_cluster_from_snapshot", check_kms_key)
    hooks.before("copy_db_cluster_snapshot", check_kms_key)
    hooks.before("copy_db_cluster_snapshot", refuse_kms_key_for_unencrypted_copy)
    hooks.before("delete_db_cluster", require_final_snapshot_choice)
    hooks.before("modify_db_cluster", require_existing_cluster)
    hooks.before("modify_db_cluster", require_managed_password_to_rotate)
    hooks.around("modify_db_cluster", keep_cluster_when_modify_fails)


def refuse_existing_cluster(request: RdsRequest) -> None:
    identifier = request.params.get("DBClusterIdentifier")
    if identifier and identifier in request.backend.clusters:
        raise RDSClientError("DBClusterAlreadyExistsFault", "DB Cluster already exists")


def check_restore_engine_version(request: RdsRequest) -> None:
    target = request.params.get("EngineVersion")
    snapshot_id = request.params.get("SnapshotIdentifier")
    if not target or not snapshot_id:
        return
    snapshot = find_cluster_snapshot(request, snapshot_id)
    if snapshot is None:
        return  # moto answers "not found"
    problem = engine_version_problem(snapshot.engine, snapshot.engine_version, target)
    if problem:
        raise InvalidParameterCombination(problem)


def engine_version_problem(engine: str, source: str, target: str) -> str | None:
    """Why `target` is no valid restore target for a `source` snapshot, or None."""
    if target == source or engine not in KNOWN_ENGINE_VERSIONS:
        return None
    if target not in KNOWN_ENGINE_VERSIONS[engine]:
        return f"Cannot find version {target} for {engine}"
    if major_version(engine, target) != major_version(engine, source) or version_key(
        target
    ) < version_key(source):
        return f"Cannot upgrade {engine} from {source} to {target}"
    return None


def major_version(engine: str, version: str) -> str:
    """ "15" for aurora-postgresql 15.4, "8.0" for aurora-mysql 8.0.mysql_aurora.3.05.2."""
    parts = version.split(".")
    if engine == "aurora-postgresql" and parts[0].isdigit() and int(parts[0]) >= 10:
        return parts[0]
    return ".".join(parts[:2])


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", version))


def check_kms_key(request: RdsRequest) -> None:
    key_id = request.params.get("KmsKeyId")
    if key_id and not kms_key_usable(key_id, request.account, request.region):
        raise KMSKeyNotAccessibleFault(key_id)


def refuse_kms_key_for_unencrypted_copy(request: RdsRequest) -> None:
    """An unencrypted cluster snapshot cannot be encrypted by copying it (module docstring)."""
    source_id = request.params.get("SourceDBClusterSnapshotIdentifier")
    if not request.params.get("KmsKeyId") or not source_id:
        return
    snapshot = find_cluster_snapshot(request, source_id)
    if snapshot is not None and not snapshot.storage_encrypted:
        raise InvalidParameterCombination(
            "KmsKeyId can't be specified when copying an unencrypted DB cluster snapshot: encrypt the "
            "cluster when you restore it instead"
        )


def kms_key_usable(key_id: str, account: str, region: str) -> bool:
    """Whether `key_id` names an enabled KMS key in `region` (of the ARN's account, if any)."""
    if key_id.startswith("arn:"):
        parts = key_id.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms" or parts[3] != region:
            return False
        account = parts[4]
    try:
        key = kms_backends[account][region].describe_key(key_id)
    except (KeyError, AttributeError):
        # moto raises KeyError for an unknown key id and AttributeError for an unknown alias.
        return False
    return key.key_state == "Enabled"


def require_final_snapshot_choice(request: RdsRequest) -> None:
    if not request.params.get("SkipFinalSnapshot") and not request.params.get(
        "FinalDBSnapshotIdentifier"
    ):
        raise InvalidParameterCombination(
            "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified."
        )


def require_existing_cluster(request: RdsRequest) -> None:
    identifier = request.params.get("DBClusterIdentifier")
    if identifier not in request.backend.clusters:
        raise DBClusterNotFoundError(identifier)


def require_managed_password_to_rotate(request: RdsRequest) -> None:
    cluster = request.backend.clusters.get(request.params.get("DBClusterIdentifier"))
    if (
        request.params.get("RotateMasterUserPassword")
        and cluster is not None
        and not cluster.manage_master_user_password
        and not request.params.get("ManageMasterUserPassword")
    ):
        raise InvalidParameterCombination(
            "The master user password can only be rotated when it is managed in Secrets "
            "Manager (ManageMasterUserPassword)."
        )


def keep_cluster_when_modify_fails(request: RdsRequest, proceed: Proceed) -> ActionResult:
    """moto deletes the cluster at the start of a modification and adds it back at the end;
    an error in between (even a valid AWS error) would lose it."""
    identifier = request.params.get("DBClusterIdentifier")
    cluster = request.backend.clusters.get(identifier)
    try:
        return proceed()
    except Exception:
        if cluster is not None and identifier not in request.backend.clusters:
            request.backend.clusters[identifier] = cluster
        raise
