"""The rulebook (rulebook.py) applied to moto's RDS: each hook reads moto's objects and calls a rule's check.

Beside the rules, two fixes of moto's own handling live here: ModifyDBCluster of a missing cluster and
RotateMasterUserPassword without a managed password crashed inside moto, and moto removes a cluster while it
modifies it, so a failing modification lost the cluster; it is put back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.kms.models import kms_backends
from moto.rds.exceptions import RDSClientError
from moto.rds.models import DBCluster

from . import rulebook
from .arns import RdsArn
from .rds_hooks import Proceed, RdsHooks, RdsRequest
from .rds_lifecycle import RdsLifecycle
from .settings import SimulatorSettings
from .shared_snapshots import find_cluster_snapshot

# Kept importable from here: engine_versions.py and older tests use these names.
KNOWN_ENGINE_VERSIONS = rulebook.KNOWN_ENGINE_VERSIONS
engine_version_problem = rulebook.engine_version_problem
major_version = rulebook.major_version
version_key = rulebook.version_key

CREATING_ACTIONS = (
    "create_db_cluster",
    "restore_db_cluster_from_snapshot",
    "restore_db_cluster_to_point_in_time",
)
# Actions whose Tags parameter tags the resource they create.
TAGGING_ACTIONS = (
    "create_db_cluster",
    "restore_db_cluster_from_snapshot",
    "restore_db_cluster_to_point_in_time",
    "create_db_instance",
    "create_db_cluster_snapshot",
)
# moto's placeholder KmsKeyId of a cluster encrypted without a key: RDS uses the AWS managed key (aws/rds) there.
MOTO_DEFAULT_KEY = "default_kms_key_id"


class RuleError(RDSClientError):
    """A RuleViolation in moto's error type: moto answers with the rule's code (and the HTTP status the RDS model
    gives that code)."""

    def __init__(self, violation: rulebook.RuleViolation) -> None:
        super().__init__(violation.code, violation.message)


def enforced(check: Callable[..., None]) -> Callable[..., None]:
    """A check of the rulebook that raises moto's error type."""

    def call(*args, **kwargs) -> None:
        try:
            check(*args, **kwargs)
        except rulebook.RuleViolation as violation:
            raise RuleError(violation) from None

    return call


def register(hooks: RdsHooks, settings: SimulatorSettings) -> None:
    for action, parameters in rulebook.IDENTIFIER_PARAMETERS.items():
        hooks.before(action, _identifier_check(parameters))
    for action in CREATING_ACTIONS:
        hooks.before(action, refuse_existing_cluster)
    for action in TAGGING_ACTIONS:
        hooks.before(action, check_request_tags)
    hooks.before("copy_db_cluster_snapshot", check_copy_tags)
    hooks.before("add_tags_to_resource", check_added_tags)
    hooks.before("restore_db_cluster_from_snapshot", check_restore_engine_version)
    hooks.before("restore_db_cluster_from_snapshot", check_kms_key)
    hooks.before("restore_db_cluster_from_snapshot", check_shared_key_access("SnapshotIdentifier"))
    hooks.before("copy_db_cluster_snapshot", check_kms_key)
    hooks.before("copy_db_cluster_snapshot", check_copy_encryption)
    hooks.before("copy_db_cluster_snapshot", check_shared_key_access("SourceDBClusterSnapshotIdentifier"))
    hooks.before("modify_db_cluster_snapshot_attribute", check_shareable)
    hooks.before("describe_db_cluster_snapshots", require_listed_cluster)
    hooks.before("restore_db_cluster_to_point_in_time", check_restore_time)
    hooks.before("delete_db_cluster", require_final_snapshot_choice)
    hooks.before("modify_db_cluster", require_existing_cluster)
    hooks.before("modify_db_cluster", require_managed_password_to_rotate)
    hooks.before("modify_db_cluster", check_master_password)
    hooks.around("modify_db_cluster", keep_cluster_when_modify_fails)
    install_restorable_window(settings)


def register_password_resets(hooks: RdsHooks, lifecycle: RdsLifecycle) -> None:
    """After the rename's hook: a new master password puts the cluster in `resetting-master-credentials`."""
    hooks.around("modify_db_cluster", _PasswordResets(lifecycle).reset)


# -- identifiers and tags ------------------------------------------------------------------------------------------


def _identifier_check(parameters: tuple[tuple[str, int], ...]):
    def check_identifiers(request: RdsRequest) -> None:
        for parameter, max_length in parameters:
            enforced(rulebook.check_identifier)(parameter, request.params.get(parameter), max_length)

    return check_identifiers


def check_request_tags(request: RdsRequest) -> None:
    enforced(rulebook.check_tags)(request.params.get("Tags"))


def check_copy_tags(request: RdsRequest) -> None:
    """With CopyTags the copy gets the source's tags as well as the request's."""
    existing = {}
    if request.params.get("CopyTags"):
        source = find_cluster_snapshot(request, request.params.get("SourceDBClusterSnapshotIdentifier") or "")
        existing = {tag["Key"]: tag["Value"] for tag in (source.tags if source is not None else [])}
    enforced(rulebook.check_tags)(request.params.get("Tags"), existing)


def check_added_tags(request: RdsRequest) -> None:
    try:
        current = request.backend.list_tags_for_resource(request.params.get("ResourceName"))
    except Exception:  # moto answers "not found" itself
        current = []
    existing = {tag["Key"]: tag["Value"] for tag in current or []}
    enforced(rulebook.check_tags)(request.params.get("Tags"), existing)


def refuse_existing_cluster(request: RdsRequest) -> None:
    identifier = request.params.get("DBClusterIdentifier")
    enforced(rulebook.check_cluster_free)(identifier, bool(identifier) and identifier in request.backend.clusters)


# -- engine versions and keys ---------------------------------------------------------------------------------------


def check_restore_engine_version(request: RdsRequest) -> None:
    target = request.params.get("EngineVersion")
    snapshot_id = request.params.get("SnapshotIdentifier")
    if not target or not snapshot_id:
        return
    snapshot = find_cluster_snapshot(request, snapshot_id)
    if snapshot is None:
        return  # moto answers "not found"
    enforced(rulebook.check_restore_engine_version)(snapshot.engine, snapshot.engine_version, target)


def check_kms_key(request: RdsRequest) -> None:
    key_id = request.params.get("KmsKeyId")
    enforced(rulebook.check_kms_key_usable)(key_id, bool(key_id) and kms_key_usable(key_id, request.account,
                                                                                    request.region))


def kms_key_usable(key_id: str, account: str, region: str) -> bool:
    """Whether `key_id` names an enabled KMS key in `region` (of the ARN's account, if any)."""
    key = find_key(key_id, account, region)
    return key is not None and key.key_state == "Enabled"


def find_key(key_id: str, account: str, region: str):
    """moto's KMS key that a key id, key ARN, alias name or alias ARN names, or None."""
    if key_id.startswith("arn:"):
        parts = key_id.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms" or parts[3] != region:
            return None
        account = parts[4]
    try:
        return kms_backends[account][region].describe_key(key_id)
    except (KeyError, AttributeError):
        # moto raises KeyError for an unknown key id and AttributeError for an unknown alias.
        return None


def check_copy_encryption(request: RdsRequest) -> None:
    source_id = request.params.get("SourceDBClusterSnapshotIdentifier")
    snapshot = find_cluster_snapshot(request, source_id) if source_id else None
    if snapshot is None:
        return
    arn = RdsArn.parse(source_id)
    enforced(rulebook.check_copy_encryption)(
        source_encrypted=bool(snapshot.storage_encrypted),
        kms_key_id=request.params.get("KmsKeyId"),
        cross_region=arn is not None and arn.region != request.region,
        shared=arn is not None and arn.account != request.account,
    )


def check_shared_key_access(parameter: str):
    def require_key_access(request: RdsRequest) -> None:
        """An encrypted snapshot of another account is only usable with access to the owner's key."""
        identifier = request.params.get(parameter)
        arn = RdsArn.parse(identifier) if isinstance(identifier, str) else None
        if arn is None or arn.account == request.account:
            return
        snapshot = find_cluster_snapshot(request, identifier)
        if snapshot is None or not snapshot.storage_encrypted:
            return
        key_id = snapshot.kms_key_id or MOTO_DEFAULT_KEY
        key = find_key(key_id, arn.account, arn.region)
        allowed: set[str] = set()
        if key is not None:
            allowed |= rulebook.accounts_in_key_policy(key.policy)
            allowed |= {rulebook.account_of(grant.grantee_principal) or "" for grant in key.grants.values()}
        enforced(rulebook.check_key_access)(
            key_id=key_id, key_account=arn.account, caller_account=request.account, allowed_accounts=allowed
        )

    return require_key_access


def check_shareable(request: RdsRequest) -> None:
    if request.params.get("AttributeName") != "restore":
        return
    snapshot = find_cluster_snapshot(request, request.params.get("DBClusterSnapshotIdentifier") or "")
    if snapshot is None:
        return
    key_id = snapshot.kms_key_id or MOTO_DEFAULT_KEY
    key = find_key(key_id, request.account, request.region)
    manager = "AWS" if key_id == MOTO_DEFAULT_KEY else getattr(key, "key_manager", None)
    enforced(rulebook.check_shareable)(
        encrypted=bool(snapshot.storage_encrypted),
        key_manager=manager,
        values_to_add=request.params.get("ValuesToAdd") or [],
    )


# -- listing snapshots ----------------------------------------------------------------------------------------------


def require_listed_cluster(request: RdsRequest) -> None:
    """A DBClusterIdentifier of the caller's own account must name a cluster (ARNs of others are left alone)."""
    identifier = request.params.get("DBClusterIdentifier")
    if not identifier or RdsArn.parse(identifier) is not None:
        return
    enforced(rulebook.check_snapshot_listing_cluster)(identifier, identifier in request.backend.clusters)


# -- point in time ------------------------------------------------------------------------------------------------


def install_restorable_window(settings: SimulatorSettings) -> None:
    """LatestRestorableTime trails the present by `settings.restorable_lag` (moto reported the present)."""

    def latest_restorable_time(cluster: DBCluster) -> datetime:
        return rulebook.restorable_window(cluster.earliest_restorable_time, utcnow(), settings.restorable_lag)[1]

    DBCluster.latest_restorable_time = property(latest_restorable_time)


def check_restore_time(request: RdsRequest) -> None:
    source = request.backend.clusters.get(request.params.get("SourceDBClusterIdentifier"))
    restore_to = request.params.get("RestoreToTime")
    if source is None or not restore_to:
        return
    moment = restore_to if isinstance(restore_to, datetime) else datetime.fromisoformat(str(restore_to))
    if moment.tzinfo is not None:  # moto keeps naive UTC times
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    enforced(rulebook.check_restore_time)(moment, source.earliest_restorable_time, source.latest_restorable_time)


# -- deleting and modifying ----------------------------------------------------------------------------------------


def require_final_snapshot_choice(request: RdsRequest) -> None:
    enforced(rulebook.check_final_snapshot_choice)(
        bool(request.params.get("SkipFinalSnapshot")), request.params.get("FinalDBSnapshotIdentifier")
    )


def require_existing_cluster(request: RdsRequest) -> None:
    identifier = request.params.get("DBClusterIdentifier")
    enforced(rulebook.check_cluster_exists)(identifier, identifier in request.backend.clusters)


def require_managed_password_to_rotate(request: RdsRequest) -> None:
    cluster = request.backend.clusters.get(request.params.get("DBClusterIdentifier"))
    if cluster is None:
        return
    enforced(rulebook.check_rotation)(
        rotate=bool(request.params.get("RotateMasterUserPassword")),
        managed=bool(cluster.manage_master_user_password or request.params.get("ManageMasterUserPassword")),
    )


def check_master_password(request: RdsRequest) -> None:
    enforced(rulebook.check_master_password)(request.params.get("MasterUserPassword"))


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


class _PasswordResets:
    """ModifyDBCluster with MasterUserPassword: `resetting-master-credentials` for the delay, as RDS shows it."""

    def __init__(self, lifecycle: RdsLifecycle) -> None:
        self.lifecycle = lifecycle

    def reset(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        # Read before moto, which consumes the parameters.
        identifier = request.params.get("DBClusterIdentifier")
        new_password = request.params.get("MasterUserPassword") is not None
        resets = new_password and not request.params.get("NewDBClusterIdentifier")
        result = proceed()
        if not resets or not identifier:
            return result
        cluster = request.backend.clusters.get(identifier)
        if cluster is None or not self.lifecycle.start(cluster, ("resetting-master-credentials",), "available"):
            return result
        return ActionResult({**result.result, "DBCluster": cluster})

