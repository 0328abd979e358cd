"""Everything a step may look at or act through, so steps stay free of kopf and easy to drive in tests."""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..api.models import AuroraRestoreSpec, AuroraRestoreStatus
from ..aws.ec2 import Ec2Gateway
from ..aws.identity import AccountOf
from ..aws.kms import KmsGateway
from ..aws.ram import RamGateway
from ..aws.rds import RdsGateway, tags_of
from ..db.connection import Timeouts, Tls
from . import names

if TYPE_CHECKING:
    from ..k8s.config_maps import ConfigMaps
    from ..k8s.jobs import HookJobs
    from ..k8s.secrets import SecretHolder, SecretWriter
    from ..notify.notifier import Notifier
    from .policy import Coverage

MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "aurora-restore-operator"
RESTORE_UID_TAG = "dbrestore.io/restore-uid"
RESTORE_NAME_TAG = "dbrestore.io/restore"
# On the snapshots the operator itself takes (copy, share, final): what `latest` skips. Not on the restored
# cluster, so the snapshots users take of it (which copy its tags, the UID among them) stay candidates.
SNAPSHOT_ROLE_TAG = "dbrestore.io/snapshot-role"
# Its value on an output snapshot (steps/output.py): a product to restore from, so `latest` does not skip it.
OUTPUT_SNAPSHOT_ROLE = "output"


class SecretReader(Protocol):
    """Kubernetes Secrets of the restore's namespace (k8s/secrets.py; a dict in unit tests)."""

    def read_key(self, name: str, key: str, field: str) -> str | None: ...

    def holder_of(self, name: str) -> "SecretHolder | None": ...

    def write(self, name: str, data: dict[str, str], owner: dict[str, Any] | None, writer: "SecretWriter",
              checked: "SecretHolder | None") -> None: ...

    def delete_written_by(self, name: str, uid: str) -> None: ...


class RestoreReader(Protocol):
    """AuroraRestores by name, as plain dicts; None when absent (k8s/resources.py; a dict in unit tests)."""

    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...


class SecretStringReader(Protocol):
    """Secrets Manager in the target region (aws/secrets.py)."""

    def get_secret_string(self, secret_id: str) -> str | None: ...


class ShareGrants(Protocol):
    """Counts the restores that need one share of a snapshot with one account (k8s/share_leases.py)."""

    def join(self, holder: str, already_shared) -> bool: ...

    def leave(self, holder: str, unshare, keep: bool = False) -> bool: ...


class PolicyBook(Protocol):
    """The cluster's AuroraRestorePolicies, read when asked (k8s/policies.py; a list in unit tests)."""

    def covering(self, namespace: str) -> "Coverage": ...


class TargetLock(Protocol):
    """Serialises restores aimed at one target cluster (a Lease in Kubernetes, a dict in unit tests)."""

    def acquire(self) -> str | None:
        """Take the lock; return None when held by us, else a description of the restore holding it."""

    def release(self) -> None:
        """Give the lock back (no-op when not held)."""


class Side(Protocol):
    """One identity in one region, handing out its gateways on first use (aws/side.py; fakes in unit tests)."""

    region: str
    rds: RdsGateway
    kms: KmsGateway
    ec2: Ec2Gateway
    ram: RamGateway
    secrets_manager: SecretStringReader
    account: AccountOf

    def in_region(self, region: str) -> "Side": ...


def restored_identifier(spec: AuroraRestoreSpec, uid: str) -> str:
    """The one place that decides which cluster identifier a restore works on (Lease, policy, instances, cleanup):
    spec.target.clusterIdentifier, or for a drill `<target>-drill-<uid8>`, so a drill never meets a real cluster."""
    if spec.drill is not None:
        return names.drill_cluster(spec.target.cluster_identifier, uid)
    return spec.target.cluster_identifier


@dataclass
class RestoreContext:
    """One AuroraRestore as a step sees it: its identity, spec and status, and the two sides it acts on."""

    name: str
    namespace: str
    uid: str
    spec: AuroraRestoreSpec
    status: AuroraRestoreStatus
    source: Side  # the snapshot's account (spec.source.roleArn) in the source region
    target: Side  # the new cluster's account (spec.target.roleArn) in the target region
    target_lock: TargetLock
    now: datetime
    default_tags: dict[str, str]
    policies: PolicyBook  # what the cluster admin's AuroraRestorePolicies allow (steps/policy.py)
    secrets: SecretReader | None = None
    db_tls: Tls = field(default_factory=Tls)
    db_timeouts: Timeouts = field(default_factory=Timeouts)
    resource: dict[str, Any] | None = None  # the AuroraRestore object, for ownerReferences
    # (snapshot ARN, account) -> the count of restores needing that share (cross-account manual snapshots)
    share_grants: Callable[[str, str], ShareGrants] | None = None
    restores: RestoreReader | None = None  # who holds a connection Secret this restore wants (steps/publish.py)
    notifier: "Notifier | None" = None  # sends spec.notification's notifications (notify/notifier.py)
    rng: random.Random | None = None  # the Runtime's, for source.latest.pick random (a seeded one in tests)
    # Job hooks' Jobs and Secrets (k8s/jobs.py HookJobs) and configMapRef SQL (k8s/config_maps.py ConfigMaps).
    hook_jobs: "HookJobs | None" = None
    config_maps: "ConfigMaps | None" = None
    # Posts an Event on the AuroraRestore: (type, reason, message); e.g. a hook that failed with onFailure Continue.
    record_event: Callable[[str, str, str], None] | None = None

    @property
    def staging(self) -> Side:
        """The target identity in the source region, where a shared snapshot is copied before crossing regions."""
        return self.target.in_region(self.spec.source.region)

    # --- names: derived from the UID so a re-run finds what an earlier run created (names.py) ---------------

    @property
    def short_uid(self) -> str:
        return names.short_uid(self.uid)

    @property
    def copied_snapshot_identifier(self) -> str:
        return names.copied_snapshot(self.uid)

    @property
    def staged_snapshot_identifier(self) -> str:
        """The target account's in-region copy of a shared snapshot, before it crosses regions."""
        return names.staged_snapshot(self.uid)

    @property
    def shared_snapshot_identifier(self) -> str:
        """The manual copy made in the source account when an automated snapshot must be shared."""
        return names.shared_snapshot(self.uid)

    @property
    def target_identifier(self) -> str:
        """The cluster this restore creates (restored_identifier): the target's, or a drill's own."""
        return restored_identifier(self.spec, self.uid)

    @property
    def drilling(self) -> bool:
        return self.spec.drill is not None

    @property
    def replacing(self) -> bool:
        """Preflight found a cluster to replace: the restore is built beside it and swapped in."""
        return self.status.replaced_cluster is not None

    @property
    def temporary_cluster_identifier(self) -> str:
        return names.temporary_cluster(self.target_identifier, self.uid)

    @property
    def cluster_identifier(self) -> str:
        """Where the restored cluster is now: the temporary identifier of a Replace until the swap is done."""
        record = self.status.replaced_cluster
        if record is not None and record.swapped_at is None:
            return self.temporary_cluster_identifier
        return self.target_identifier

    @property
    def previous_cluster_identifier(self) -> str:
        return names.previous_cluster(self.target_identifier, self.uid)

    @property
    def final_snapshot_identifier(self) -> str:
        return names.final_snapshot(self.target_identifier, self.uid)

    def instance_identifier(self, number: int) -> str:
        return names.instance(self.target_identifier, self.uid, number, self.replacing)

    # --- tags: every AWS resource created carries the restore's UID --------------------------------------------

    @property
    def restore_tags(self) -> dict[str, str]:
        return {
            MANAGED_BY_TAG: MANAGED_BY_VALUE,
            RESTORE_UID_TAG: self.uid,
            RESTORE_NAME_TAG: names.tag_value(f"{self.namespace}/{self.name}"),
        }

    @property
    def holder(self) -> str:
        """How this restore is named where several restores are counted (share grants): namespace/name/uid."""
        return f"{self.namespace}/{self.name}/{self.uid}"

    def snapshot_tags(self, role: str) -> dict[str, str]:
        """Tags for a snapshot this restore takes: its UID and what the snapshot is for."""
        return {**self.restore_tags, SNAPSHOT_ROLE_TAG: role}

    @property
    def target_tags(self) -> dict[str, str]:
        """Tags for the cluster and instances: operator defaults, then the user's, then ours (never overridden)."""
        return {**self.default_tags, **self.spec.target.tags, **self.restore_tags}

    def owns(self, resource: dict[str, Any]) -> bool:
        """True when `resource` (a described RDS object) was created by this restore."""
        return tags_of(resource).get(RESTORE_UID_TAG) == self.uid
