"""Aurora clones, in one account and across accounts through RAM shares, with the rules RDS applies to them.

A clone is RestoreDBClusterToPointInTime with RestoreType=copy-on-write. moto copies the source in
full (fine: the database servers copy the data as for any restore to a point in time) but checks
none of the clone rules, always reports CrossAccountClone false and looks every identifier up in
the caller's own account. Here:
  - an ARN of another account's cluster names that cluster when the owner shared it with the caller
    through RAM (ram.py) in the request's region and the caller's association is ASSOCIATED: then
    DescribeDBClusters lists it and RestoreDBClusterToPointInTime clones it; otherwise it is not found;
  - the clone rules of rulebook.py are checked before moto runs (state, instances, region, engine
    mode, key, limits, clones of shared clones);
  - the clone remembers where it came from (`CloneOrigin`), which gives CrossAccountClone and the
    counts of the limits; the source and its clones share a CloneGroupId (kept for the source's
    lifetime). The counts are of clusters that exist: a clone counts until it is gone.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.models import DBCluster, RDSBackend, rds_backends

from . import rulebook
from .arns import RdsArn
from .ram import ResourceShares
from .rds_hooks import Proceed, RdsHooks, RdsRequest
from .rds_lifecycle import transition_of
from .validation import MOTO_DEFAULT_KEY, enforced, find_key

# Where a clone keeps its origin (an attribute moto never reads, and does not copy into restores: moto strips
# the leading underscore and DBCluster ignores the unknown keyword).
ORIGIN_ATTRIBUTE = "_simulated_clone_origin"
# Where a cluster keeps its CloneGroupId, from its first clone on (the source's and all its clones').
CLONE_GROUP_ATTRIBUTE = "_simulated_clone_group"
COPY_ON_WRITE = "copy-on-write"


@dataclass(frozen=True)
class CloneOrigin:
    #: The ARN of the cluster it was cloned from.
    source_arn: str
    #: The ARN of the first cluster of the line (a clone of a clone counts with the original).
    family_arn: str
    cross_account: bool


def origin_of(cluster: Any) -> CloneOrigin | None:
    return cluster.__dict__.get(ORIGIN_ATTRIBUTE) if cluster is not None else None


class ClusterSharing:
    """Finds clusters for a caller (its own, or shared with it) and enforces the clone rules."""

    def __init__(self, shares: ResourceShares) -> None:
        self.shares = shares
        shares.resource_exists = self._cluster_exists
        shares.resource_refusal = self._share_refusal

    def register(self, hooks: RdsHooks) -> None:
        hooks.around("describe_db_clusters", self.describe_shared_cluster)
        hooks.before("restore_db_cluster_to_point_in_time", self.check_clone)
        hooks.around("restore_db_cluster_to_point_in_time", self.clone)
        _install_cross_account_clone_flag()

    # -- lookups ---------------------------------------------------------------------------------

    def find_cluster(self, request: RdsRequest, identifier: str | None) -> DBCluster | None:
        """The cluster an identifier (or ARN) names for the caller: its own in the request's region, or
        another account's that is shared with it there. None when there is none it may see."""
        if not identifier:
            return None
        arn = RdsArn.parse(identifier)
        if arn is None or arn.account == request.account:
            if arn is not None and (arn.region != request.region or arn.resource_type != "cluster"):
                return None
            return request.backend.clusters.get(arn.name if arn is not None else identifier)
        if arn.region != request.region or arn.resource_type != "cluster":
            return None
        cluster = _owner_clusters(arn.account, arn.region).get(arn.name)
        if cluster is None or not self.shares.is_shared(cluster.db_cluster_arn, request.account, request.region):
            return None
        return cluster

    def _cluster_exists(self, arn: str, account: str, region: str) -> bool:
        parsed = RdsArn.parse(arn)
        return parsed is not None and parsed.name in _owner_clusters(account, region)

    def _share_refusal(self, arn: str) -> rulebook.RuleViolation | None:
        """A cross-account clone is not shared again (rule `no-clone-of-shared-clone`)."""
        parsed = RdsArn.parse(arn)
        cluster = _owner_clusters(parsed.account, parsed.region).get(parsed.name) if parsed else None
        origin = origin_of(cluster)
        try:
            rulebook.check_not_a_shared_clone(arn, origin is not None and origin.cross_account)
        except rulebook.RuleViolation as violation:
            return violation
        return None

    # -- DescribeDBClusters ----------------------------------------------------------------------

    def describe_shared_cluster(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        """Rule `shared-cluster-visible`: another account's cluster by ARN, when it is shared with the caller."""
        identifier = request.params.get("DBClusterIdentifier")
        arn = RdsArn.parse(identifier) if isinstance(identifier, str) else None
        if arn is None or arn.account == request.account:
            return proceed()
        cluster = self.find_cluster(request, identifier)
        enforced(rulebook.check_shared_cluster_visible)(identifier, cluster is not None)
        return ActionResult({"DBClusters": [cluster]})

    # -- RestoreDBClusterToPointInTime -----------------------------------------------------------

    def check_clone(self, request: RdsRequest) -> None:
        """The clone rules, before moto copies anything."""
        identifier = request.params.get("SourceDBClusterIdentifier")
        if not isinstance(identifier, str):
            return
        restore_type = request.params.get("RestoreType")
        arn = RdsArn.parse(identifier)
        foreign = arn is not None and arn.account != request.account
        if not foreign and restore_type != COPY_ON_WRITE:
            return  # a restore to a point in time of one's own cluster: validation.py and moto
        if arn is not None and arn.region != request.region:
            enforced(rulebook.check_clone_region)(identifier, source_region=arn.region, region=request.region)
        source = self.find_cluster(request, identifier)
        if source is None:
            if foreign:
                enforced(rulebook.check_shared_cluster_visible)(identifier, False)
            return  # moto answers DBClusterNotFoundFault
        if foreign:
            self._check_cross_account(request, identifier, source, restore_type)
        enforced(rulebook.check_clone_source_state)(
            identifier, status=source.status, instances=_live_instances(source),
            engine_mode=getattr(source, "engine_mode", None),
        )
        origin = origin_of(source)
        enforced(rulebook.check_not_a_shared_clone)(identifier, origin is not None and origin.cross_account)
        if foreign:
            family = _family_of(source)
            clones = _cross_account_clones(family)
            enforced(rulebook.check_cross_account_clone_limits)(
                identifier,
                clones_of_source=len(clones),
                clones_in_account=sum(1 for account, _ in clones if account == request.account),
            )

    def _check_cross_account(
        self, request: RdsRequest, identifier: str, source: DBCluster, restore_type: str | None
    ) -> None:
        arn = RdsArn.parse(source.db_cluster_arn)
        owner = arn.account if arn is not None else ""
        key_id = source.kms_key_id if source.storage_encrypted else None
        key = find_key(key_id, owner, request.region) if key_id and key_id != MOTO_DEFAULT_KEY else None
        aws_managed = bool(source.storage_encrypted) and (
            key_id in (None, MOTO_DEFAULT_KEY) or getattr(key, "key_manager", None) == "AWS"
        )
        allowed: set[str] = set()
        if key is not None:
            allowed |= rulebook.accounts_in_key_policy(key.policy)
            allowed |= {rulebook.account_of(grant.grantee_principal) or "" for grant in key.grants.values()}
        enforced(rulebook.check_cross_account_clone)(
            identifier,
            restore_type=restore_type,
            engine_mode=getattr(source, "engine_mode", None),
            encrypted=bool(source.storage_encrypted),
            key_id=key_id,
            key_manager="AWS" if aws_managed else "CUSTOMER",
            caller_account=request.account,
            key_account=owner,
            key_allowed_accounts=allowed,
        )

    def clone(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        """Let moto copy the source (another account's, found for it), then mark the new cluster a clone."""
        identifier = request.params.get("SourceDBClusterIdentifier")
        source = self.find_cluster(request, identifier) if isinstance(identifier, str) else None
        arn = RdsArn.parse(identifier) if isinstance(identifier, str) else None
        foreign = arn is not None and arn.account != request.account
        if foreign and source is not None:
            with _found_by_moto(request.backend, source):
                result = proceed()
        else:
            result = proceed()
        if source is None:
            return result
        created = result.result["DBCluster"]
        if request.params.get("RestoreType") == COPY_ON_WRITE:
            created.__dict__[ORIGIN_ATTRIBUTE] = CloneOrigin(
                source_arn=source.db_cluster_arn, family_arn=_family_of(source), cross_account=foreign
            )
            source.__dict__.setdefault(CLONE_GROUP_ATTRIBUTE, str(uuid.uuid4()))  # kept for the source's lifetime
        if CLONE_GROUP_ATTRIBUTE in source.__dict__:  # a full copy inherits the source's group too
            created.__dict__[CLONE_GROUP_ATTRIBUTE] = source.__dict__[CLONE_GROUP_ATTRIBUTE]
        return result


# -- helpers ---------------------------------------------------------------------------------------


def _owner_clusters(account: str, region: str) -> dict[str, DBCluster]:
    """An account's clusters in a region, creating no backend (dict lookups, not moto's)."""
    regions = dict.get(rds_backends, account)
    backend = dict.get(regions, region) if regions is not None else None
    return backend.clusters if backend is not None else {}


def _all_clusters() -> Iterator[tuple[str, DBCluster]]:
    for account, regions in list(dict.items(rds_backends)):
        for backend in list(dict.values(regions)):
            for cluster in list(backend.clusters.values()):
                yield account, cluster


def _leaving(obj: Any) -> bool:
    transition = transition_of(obj)
    return transition is not None and transition.removes


def _live_instances(cluster: DBCluster) -> int:
    """The DB instances of `cluster` that are not being deleted (in its own backend)."""
    members = cluster.backend.databases.values()
    return sum(
        1
        for member in list(members)
        if getattr(member, "db_cluster_identifier", None) == cluster.db_cluster_identifier and not _leaving(member)
    )


def _family_of(cluster: DBCluster) -> str:
    origin = origin_of(cluster)
    return origin.family_arn if origin is not None else cluster.db_cluster_arn


def _cross_account_clones(family_arn: str) -> list[tuple[str, DBCluster]]:
    """The cross-account clones of a cluster and of its clones, with their accounts. A clone being deleted still
    counts until it is gone: it still stands."""
    return [
        (account, cluster)
        for account, cluster in _all_clusters()
        if (origin := origin_of(cluster)) is not None and origin.cross_account and origin.family_arn == family_arn
    ]


@contextlib.contextmanager
def _found_by_moto(backend: RDSBackend, cluster: DBCluster) -> Iterator[None]:
    """Make moto's restore find another account's `cluster` in `backend` for one call (it looks the source up
    with describe_db_clusters). RDS requests run one at a time (see middleware), so no other request sees it."""
    backend.describe_db_clusters = lambda *_args, **_kwargs: [cluster]
    try:
        yield
    finally:
        del backend.describe_db_clusters


_MOTO_CROSS_ACCOUNT_CLONE = DBCluster.__dict__["cross_account_clone"]


def _install_cross_account_clone_flag() -> None:
    """Rule `cross-account-clone-flag`: CrossAccountClone is true for a clone of another account's cluster.
    Rule `clone-group`: CloneGroupId (moto has none), the source's and its clones' in any account, from the first
    clone on, for the source's lifetime; a cluster never cloned reports none."""

    def cross_account_clone(cluster: DBCluster) -> bool:
        origin = origin_of(cluster)
        return origin is not None and origin.cross_account

    DBCluster.cross_account_clone = property(cross_account_clone, doc=_MOTO_CROSS_ACCOUNT_CLONE.__doc__)
    DBCluster.clone_group_id = property(_clone_group_id)


def _clone_group_id(cluster: DBCluster) -> str | None:
    return cluster.__dict__.get(CLONE_GROUP_ATTRIBUTE)
