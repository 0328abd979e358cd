"""An in-memory Amazon RDS for unit tests: the public methods of RdsGateway, with AWS's refusals and delays.

FakeCloud is one AWS account: a FakeRds, FakeKms and FakeEc2 per region (fake_account.py holds the last two).
Every account of a test shares one log of every call made, in order, so a test can assert on what the operator
asked AWS to do ("exactly one RestoreDBClusterFromSnapshot", "the source snapshot was never deleted", "nothing
at all") without caring which step, or which account's identity, made the call. `cloud.account(id)` is another
account of the same world.

What the fake models, because the steps depend on it:
  * resources created by a call start in a transitional status (creating, copying, deleting) and settle after
    `ticks` observations (a describe or list that returns them); `ticks=0` settles on the first look;
  * identifiers are case-insensitive and stored in lower case, as RDS does;
  * TagList is kept, DBClusterMembers lists the cluster's instances and marks the first one the writer;
  * a cluster describes its MasterUsername, Endpoint and Port (and DatabaseName, MasterUserSecret when set);
    ModifyDBCluster of the master password puts the cluster in a transitional status, and ManageMasterUserPassword
    gives it a MasterUserSecret once it settles;
  * AWS's refusals (deleting a cluster that still has live instances, restoring onto an existing identifier,
    using a KMS key that is not usable, ...) raise exactly what RdsGateway would raise: a botocore ClientError
    with the AWS error code, passed through aws/errors.py `classify`;
  * `fail(action, error)` queues an error for the next call of `action` (throttling, a KMS fault, ...);
  * `settles_as["cluster" | "instance"]` makes new clusters or instances settle in that status (a failure status
    such as `incompatible-parameters`) instead of available; `put_in_status(kind, identifier, status)` puts an
    existing one in a status at once, for good;
  * sharing: a manual snapshot shared with account X ("restore" attribute) can be copied by account X's FakeRds
    by its ARN, in the snapshot's own region only (AWS copies a shared cluster snapshot only within its region);
    an encrypted one only with a KmsKeyId of X's. AWS shares neither automated snapshots nor snapshots encrypted
    with the AWS-managed key, and changes the attribute only of an available snapshot;
  * renames (ModifyDBCluster NewDBClusterIdentifier): refused onto a taken or invalid name or for a cluster that
    is not available; the cluster shows `renaming`, its endpoints and ARN change with the name, its instances and
    automated snapshots follow it, its DbClusterResourceId stays; DeleteDBCluster keeps the automated backups
    (`retained_backups`) only with DeleteAutomatedBackups=False, else removes the automated snapshots;
  * the rules of the simulator's rulebook (aurora_restore_devenv.simulator.rulebook: identifiers, tags, KMS keys
    of copies and shares, engine versions, the restorable window, deletion, master passwords) are checked by the
    same functions, so the fake and the simulator refuse the same requests with the same codes
    (tests/aws/test_rulebook.py runs the same cases against both). KMS keys: a key of another region is refused,
    access to another account's key comes from its key policy or a grant (fake_account.py FakeKms). A cluster
    added with `restorable=LIVE` has the simulator's window: from its creation to `restorable_lag` before the
    present. Listing a cluster's snapshots with shared ones ("any", "shared") includes those other accounts
    shared with this one; a shared snapshot can be restored without copying it. Not modelled: the
    DescribeDBClusterSnapshots parameters the gateway never sends (DBClusterIdentifier, filters but
    db-cluster-id);
  * preflight look-ups: subnet and parameter groups (`add_group`), the engine versions a snapshot can be
    restored to (`upgrade_targets`), a cluster's restorable window for point-in-time restores.

Only what the operator uses is modelled; anything else is deliberately absent so an unexpected call fails loudly.
"""

import copy
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from botocore.exceptions import ClientError

from aurora_restore.aws.errors import classify
from aurora_restore.aws.rds import FAILED_STATUSES, as_tag_list, tags_of
from aurora_restore.errors import RestoreError, RetryableError, TerminalError
from aurora_restore.k8s.share_leases import ShareGrant
from aurora_restore_devenv.simulator import rulebook

from .fake_account import FakeEc2, FakeKms

ACCOUNT_ID = "123456789012"
DEFAULT_CREATE_TIME = datetime(2025, 3, 1, 3, 0, tzinfo=timezone.utc)
# The point-in-time window of a cluster that exists before the restore: a week of backups up to a few minutes
# before the harness's clock starts.
RESTORABLE_FROM = DEFAULT_CREATE_TIME - timedelta(days=7)
RESTORABLE_UNTIL = datetime(2025, 3, 1, 11, 55, tzinfo=timezone.utc)
# add_cluster(restorable=LIVE): a window from the cluster's creation (now) to the FakeRds's `restorable_lag` before
# the present, computed at every look, as the simulator computes it.
LIVE = "live"
# DescribeDBEngineVersions' ValidUpgradeTarget for the versions the tests use (a version absent here is unknown).
UPGRADE_TARGETS: dict[tuple[str, str], list[str]] = {
    ("aurora-postgresql", "15.4"): ["15.5", "15.6", "15.7", "16.1", "16.2"],
    ("aurora-postgresql", "15.5"): ["15.6", "15.7", "16.1", "16.2"],
    ("aurora-mysql", "8.0"): ["8.0.mysql_aurora.3.04.0", "8.0.mysql_aurora.3.05.2"],
}
# DbClusterResourceId: unique per cluster ever created, kept through renames.
RESOURCE_IDS = itertools.count(1)
GROUP_KINDS = ("subnet group", "cluster parameter group", "parameter group")

# The boto3 operation behind each gateway method: errors name it exactly as RdsGateway's do.
BOTO_OPERATION = {
    "describe_snapshot": "describe_db_cluster_snapshots",
    "list_cluster_snapshots": "describe_db_cluster_snapshots",
    "copy_snapshot": "copy_db_cluster_snapshot",
    "create_cluster_snapshot": "create_db_cluster_snapshot",
    "delete_snapshot": "delete_db_cluster_snapshot",
    "describe_cluster": "describe_db_clusters",
    "restore_cluster_from_snapshot": "restore_db_cluster_from_snapshot",
    "modify_cluster": "modify_db_cluster",
    "rename_cluster": "modify_db_cluster",
    "add_tags": "add_tags_to_resource",
    "delete_cluster": "delete_db_cluster",
    "describe_instance": "describe_db_instances",
    "list_cluster_instances": "describe_db_instances",
    "create_instance": "create_db_instance",
    "delete_instance": "delete_db_instance",
    "restore_accounts": "describe_db_cluster_snapshot_attributes",
    "share_snapshot": "modify_db_cluster_snapshot_attribute",
    "unshare_snapshot": "modify_db_cluster_snapshot_attribute",
    "valid_upgrade_targets": "describe_db_engine_versions",
    "exists": "describe_db_subnet_groups",
    "restore_cluster_to_point_in_time": "restore_db_cluster_to_point_in_time",
    "list_clusters": "describe_db_clusters",
    "cluster_quota": "describe_account_attributes",
    "describe_key": "describe_key",
    "missing_security_groups": "describe_security_groups",
}
MUTATING = frozenset(
    {
        "copy_snapshot",
        "create_cluster_snapshot",
        "delete_snapshot",
        "restore_cluster_from_snapshot",
        "restore_cluster_to_point_in_time",
        "modify_cluster",
        "rename_cluster",
        "add_tags",
        "delete_cluster",
        "create_instance",
        "delete_instance",
        "share_snapshot",
        "unshare_snapshot",
        # AWS RAM (fake_clone.py)
        "create_resource_share",
        "delete_resource_share",
        "accept_resource_share_invitation",
    }
)


def aws_error(
    code: str, message: str = "", *, action: str = "copy_snapshot", region: str = "eu-west-1", http_status: int = 400
) -> RetryableError | TerminalError:
    """The error RdsGateway raises when AWS answers `action` with error `code` (classified by aws/errors.py)."""
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": http_status},
    }
    operation = BOTO_OPERATION[action]
    return classify(ClientError(response, operation), f"{operation} in {region}")


def default_master_username(engine: str) -> str:
    """The master user name the fake gives snapshots and clusters that were not told one."""
    return "postgres" if "postgres" in engine else "admin"


def throttling(action: str, region: str = "eu-west-1") -> RetryableError:
    error = aws_error("Throttling", "Rate exceeded", action=action, region=region)
    assert isinstance(error, RetryableError)
    return error


@dataclass
class Call:
    """One gateway call as the operator made it, in the account whose identity made it."""

    region: str
    action: str
    params: dict[str, Any]
    error: str | None = None  # the reason of the error raised, if any
    account: str = ACCOUNT_ID

    @property
    def mutating(self) -> bool:
        return self.action in MUTATING


@dataclass
class _Settling:
    """A resource in a transitional status: `remaining` more observations see it unchanged, then `settle` runs."""

    remaining: int
    total: int
    settle: Callable[[], None]


@dataclass
class _World:
    """What every account of one test shares: the call log, the default settle time, the accounts by id."""

    ticks: int
    calls: list[Call] = field(default_factory=list)
    accounts: dict[str, "FakeCloud"] = field(default_factory=dict)
    ram: Any = None  # fake_clone.RamWorld, made on first use


class FakeCloud:
    """All regions of one AWS account; every account made through `account()` shares its call log."""

    def __init__(self, ticks: int = 1, account_id: str = ACCOUNT_ID, *, world: _World | None = None):
        self.world = world or _World(ticks)
        self.account_id = account_id
        self.world.accounts[account_id] = self
        self.regions: dict[str, "FakeRds"] = {}
        self.kms_by_region: dict[str, FakeKms] = {}
        self.ec2_by_region: dict[str, FakeEc2] = {}

    @property
    def ticks(self) -> int:
        return self.world.ticks

    @ticks.setter
    def ticks(self, value: int) -> None:
        self.world.ticks = value

    @property
    def calls(self) -> list[Call]:
        return self.world.calls

    def account(self, account_id: str) -> "FakeCloud":
        """Another account of the same world (created on first use)."""
        if account_id not in self.world.accounts:
            FakeCloud(account_id=account_id, world=self.world)
        return self.world.accounts[account_id]

    def rds(self, region: str) -> "FakeRds":
        if region not in self.regions:
            self.regions[region] = FakeRds(region, cloud=self)
        return self.regions[region]

    def kms(self, region: str) -> FakeKms:
        if region not in self.kms_by_region:
            self.kms_by_region[region] = FakeKms(region, cloud=self)
        return self.kms_by_region[region]

    def ec2(self, region: str) -> FakeEc2:
        if region not in self.ec2_by_region:
            self.ec2_by_region[region] = FakeEc2(region, cloud=self)
        return self.ec2_by_region[region]

    def record(self, region: str, action: str, params: dict[str, Any]) -> Call:
        """Log one call made with this account's identity."""
        call = Call(region, action, copy.deepcopy(params), account=self.account_id)
        self.calls.append(call)
        return call

    def calls_to(self, action: str, region: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.action == action and (region is None or c.region == region)]

    @property
    def mutations(self) -> list[Call]:
        """The calls that changed something (or tried to), in order."""
        return [c for c in self.calls if c.mutating]


class FakeRds:
    """The RdsGateway of one region, in memory. Method signatures and return shapes follow aws/rds.py."""

    def __init__(self, region: str, cloud: FakeCloud | None = None, ticks: int | None = None):
        self.region = region
        self.cloud = cloud or FakeCloud()
        self.cloud.regions.setdefault(region, self)
        # How many observations a new resource stays transitional; by kind ("copy", "cluster", "instance",
        # "cluster-delete", "instance-delete", "final-snapshot"), falling back to the cloud's default.
        self.ticks_by_kind: dict[str, int] = {}
        # The status a new "cluster" or "instance" settles in instead of available (RDS's failure statuses).
        self.settles_as: dict[str, str] = {}
        self._default_ticks = ticks
        # Only these KMS key ids (or ARNs) are usable in this region; None: every key is usable.
        self.usable_kms_keys: set[str] | None = None
        self.snapshots: dict[str, dict[str, Any]] = {}  # by lower-cased identifier (the ARN for shared ones)
        self.clusters: dict[str, dict[str, Any]] = {}
        self.instances: dict[str, dict[str, Any]] = {}
        self._settling: dict[tuple[str, str], _Settling] = {}
        self._queued_errors: list[tuple[str, RestoreError]] = []
        self._writers: set[str] = set()  # instance identifiers that are their cluster's writer
        # Host every new cluster's endpoints point at (None: an RDS-style DNS name); a loopback address lets a
        # test make real, refused connections without a database server.
        self.endpoint_host: str | None = None
        # The master password each cluster was last given through modify_cluster, by cluster key.
        self.master_passwords: dict[str, str] = {}
        # Accounts each manual snapshot is shared with (its "restore" attribute), by snapshot key.
        self.shared_with: dict[str, list[str]] = {}
        # Automated backups kept after DeleteDBCluster(DeleteAutomatedBackups=False), by cluster identifier.
        self.retained_backups: dict[str, dict[str, Any]] = {}
        # Subnet groups, cluster parameter groups and parameter groups that exist, by kind.
        self.groups: dict[str, set[str]] = {kind: set() for kind in GROUP_KINDS}
        self.upgrade_targets: dict[tuple[str, str], list[str]] = copy.deepcopy(UPGRADE_TARGETS)
        # How far LatestRestorableTime trails the present for clusters added with restorable=LIVE, and the clock.
        self.restorable_lag: float = rulebook.DEFAULT_RESTORABLE_LAG_SECONDS
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self._restorable_since: dict[str, datetime] = {}  # LIVE clusters' creation, by cluster key
        # The DBClusters quota DescribeAccountAttributes reports (None: not reported).
        self.cluster_quota_max: int | None = 40

    # --- test set-up ---------------------------------------------------------------------------------------------

    def fail(self, action: str, error: RestoreError, times: int = 1) -> None:
        """Raise `error` from the next `times` calls of gateway method `action` ("*": whichever call comes next)."""
        assert action == "*" or action in BOTO_OPERATION, f"no gateway method {action!r}"
        self._queued_errors.extend([(action, error)] * times)

    def put_in_status(self, kind: str, identifier: str, status: str) -> None:
        """Put an existing "cluster" or "instance" in `status` now (RDS turning it `incompatible-parameters`
        after a restart, say), for good: a transition it was settling through is dropped."""
        key = identifier.lower()
        table, field_name = (self.clusters, "Status") if kind == "cluster" else (self.instances, "DBInstanceStatus")
        self._settling.pop((kind, key), None)
        table[key][field_name] = status

    def add_group(self, kind: str, *names: str) -> None:
        """Subnet groups ("subnet group"), "cluster parameter group"s or "parameter group"s that exist."""
        self.groups[kind].update(names)

    def ticks_for(self, kind: str) -> int:
        if kind in self.ticks_by_kind:
            return self.ticks_by_kind[kind]
        return self._default_ticks if self._default_ticks is not None else self.cloud.ticks

    def arn(self, kind: str, identifier: str, account_id: str | None = None) -> str:
        return f"arn:aws:rds:{self.region}:{account_id or self.cloud.account_id}:{kind}:{identifier}"

    def add_snapshot(
        self,
        identifier: str,
        cluster: str = "prod",
        *,
        snapshot_type: str = "manual",
        created: datetime | None = DEFAULT_CREATE_TIME,
        status: str = "available",
        encrypted: bool = False,
        engine: str = "aurora-postgresql",
        engine_version: str = "15.4",
        tags: dict[str, str] | None = None,
        shared_from: str | None = None,
        settles_after: int | None = None,
        master_username: str | None = None,
        kms_key_id: str | None = None,
    ) -> dict[str, Any]:
        """A snapshot that exists before the restore starts. `shared_from`: the account that shared it with us.

        A snapshot created with a transitional status becomes available after `settles_after` observations
        (default: never, so a test can hold it there). An encrypted one uses `kms_key_id`, by default a
        customer-managed key of this account and region ("source-key", which its FakeKms then knows).
        """
        identifier = identifier.lower()
        arn = self.arn("cluster-snapshot", identifier, shared_from)
        key = arn if shared_from else identifier
        snapshot = {
            "DBClusterSnapshotIdentifier": arn if shared_from else identifier,
            "DBClusterSnapshotArn": arn,
            "DBClusterIdentifier": cluster.lower(),
            "SnapshotType": "shared" if shared_from else snapshot_type,
            "Status": status,
            "Engine": engine,
            "EngineVersion": engine_version,
            "StorageEncrypted": encrypted,
            "MasterUsername": master_username or default_master_username(engine),
            "PercentProgress": 100 if status == "available" else 0,
            "TagList": as_tag_list(tags or {}),
        }
        if encrypted:
            kms = self.cloud.kms(self.region)
            snapshot["KmsKeyId"] = kms_key_id or kms.key_arn("source-key")
            if kms_key_id is None and kms.find("source-key") is None:
                kms.add_key("source-key", users=["*"])  # shared with every account, as a shared snapshot needs
        if created is not None:
            snapshot["SnapshotCreateTime"] = created
        self.snapshots[key] = snapshot
        if status != "available" and settles_after is not None:
            self._settle_later("snapshot", key, settles_after, lambda: self._set(snapshot, "available"))
        return copy.deepcopy(snapshot)

    def add_cluster(
        self,
        identifier: str,
        *,
        instances: int = 0,
        status: str = "available",
        deletion_protection: bool = False,
        tags: dict[str, str] | None = None,
        engine: str = "aurora-postgresql",
        database_name: str | None = None,
        restorable: tuple[datetime, datetime] | str | None = (RESTORABLE_FROM, RESTORABLE_UNTIL),
        global_cluster: str | None = None,
        instance_tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A cluster (with `instances` available instances) that exists before the restore starts. Its instances
        carry `instance_tags`, by default the cluster's tags (as an owner tags both to allow a Replace).

        `restorable`: its EarliestRestorableTime and LatestRestorableTime (None: neither is described; LIVE: from
        now to `restorable_lag` before the present, never before its creation, as the simulator does).
        """
        cluster = self._new_cluster(identifier.lower(), engine, "15.4", tags or {}, status)
        cluster["DeletionProtection"] = deletion_protection
        if restorable == LIVE:
            self._restorable_since[identifier.lower()] = self.clock()
        elif restorable is not None:
            cluster["EarliestRestorableTime"], cluster["LatestRestorableTime"] = restorable
        if database_name:
            cluster["DatabaseName"] = database_name
        if global_cluster:
            cluster["GlobalClusterIdentifier"] = global_cluster
        for number in range(1, instances + 1):
            instance = self._new_instance(f"{identifier.lower()}-instance-{number}", cluster, "db.r6g.large",
                                          (tags or {}) if instance_tags is None else instance_tags)
            instance["DBInstanceStatus"] = "available"
        return copy.deepcopy(cluster)

    # --- snapshots -----------------------------------------------------------------------------------------------

    def describe_snapshot(self, identifier: str) -> dict[str, Any] | None:
        self._enter("describe_snapshot", identifier=identifier)
        key = self._snapshot_key(identifier)
        return self._observe("snapshot", key, self.snapshots) if key else None

    def list_cluster_snapshots(self, cluster_identifier: str, snapshot_type: str) -> list[dict[str, Any]]:
        """Without SnapshotType AWS returns automated and manual; shared ones only when asked for."""
        self._enter("list_cluster_snapshots", cluster_identifier=cluster_identifier, snapshot_type=snapshot_type)
        types = {"automated", "manual", "shared"} if snapshot_type == "any" else {snapshot_type}
        keys = [
            key
            for key, snapshot in self.snapshots.items()
            if snapshot["DBClusterIdentifier"] == cluster_identifier.lower() and snapshot["SnapshotType"] in types
        ]
        found = [self._observe("snapshot", key, self.snapshots) for key in keys]
        if "shared" in types:  # rulebook `describe-snapshots-shared`: IncludeShared adds other accounts' shares
            found += [copy.deepcopy(snapshot) for snapshot in self._shared_snapshots()
                      if snapshot["DBClusterIdentifier"] == cluster_identifier.lower()]
        return [snapshot for snapshot in found if snapshot is not None]

    def _shared_snapshots(self) -> list[dict[str, Any]]:
        """Manual snapshots of this region that other accounts of the world shared with this one, as their owners
        describe them."""
        shared = []
        for account_id, account in self.cloud.world.accounts.items():
            origin = account.regions.get(self.region) if account_id != self.cloud.account_id else None
            for key, snapshot in (origin.snapshots.items() if origin is not None else ()):
                accounts = origin.shared_with.get(key, [])
                if self.cloud.account_id in accounts or "all" in accounts:
                    shared.append(snapshot)
        return shared

    def copy_snapshot(
        self,
        source_arn: str,
        source_region: str,
        identifier: str,
        kms_key_id: str | None,
        copy_tags: bool,
        tags: dict[str, str],
    ) -> dict[str, Any]:
        action = "copy_snapshot"
        self._enter(
            action,
            source_arn=source_arn,
            source_region=source_region,
            identifier=identifier,
            kms_key_id=kms_key_id,
            copy_tags=copy_tags,
            tags=dict(tags),
        )
        self._rule(action, rulebook.check_identifier, "TargetDBClusterSnapshotIdentifier", identifier)
        self._rule(action, rulebook.check_tags, as_tag_list(tags))
        shared = self._shared_with_us(source_arn)
        if shared is not None:
            source = shared
        else:
            origin = self.cloud.regions.get(source_region)
            key = origin._snapshot_key(source_arn) if origin else None
            if key is None:
                raise self._refuse(
                    action, "DBClusterSnapshotNotFoundFault", f"DBClusterSnapshot {source_arn} not found."
                )
            source = origin.snapshots[key]
        if source["Status"] != "available":
            raise self._refuse(
                action, "InvalidDBClusterSnapshotStateFault", "The source snapshot must be in the available state."
            )
        if identifier.lower() in self.snapshots:
            raise self._refuse(
                action, "DBClusterSnapshotAlreadyExistsFault", f"Cannot create the snapshot {identifier}: it exists."
            )
        self._rule(
            action,
            rulebook.check_copy_encryption,
            source_encrypted=bool(source["StorageEncrypted"]),
            kms_key_id=kms_key_id,
            cross_region=source_region != self.region,
            shared=shared is not None,
        )
        if shared is not None and source["StorageEncrypted"]:
            self._check_owner_key_access(action, source_arn, source.get("KmsKeyId"))
        self._check_kms_key(action, kms_key_id)
        if copy_tags:
            self._rule(action, rulebook.check_tags, as_tag_list(tags), tags_of(source))
        copied_tags = {**(tags_of(source) if copy_tags else {}), **tags}
        identifier = identifier.lower()
        snapshot = {
            **copy.deepcopy(source),
            "DBClusterSnapshotIdentifier": identifier,
            "DBClusterSnapshotArn": self.arn("cluster-snapshot", identifier),
            "SnapshotType": "manual",
            "Status": "copying",
            "PercentProgress": 0,
            "SnapshotCreateTime": source.get("SnapshotCreateTime"),
            "SourceDBClusterSnapshotArn": source["DBClusterSnapshotArn"],
            "StorageEncrypted": bool(source["StorageEncrypted"] or kms_key_id),
            "TagList": as_tag_list(copied_tags),
        }
        if kms_key_id:
            snapshot["KmsKeyId"] = kms_key_id
        self.snapshots[identifier] = snapshot
        self._settle_later("snapshot", identifier, self.ticks_for("copy"), lambda: self._set(snapshot, "available"))
        return copy.deepcopy(snapshot)

    def create_cluster_snapshot(self, identifier: str, cluster_identifier: str, tags: dict[str, str]) -> dict[str, Any]:
        """A manual snapshot of an available cluster, `creating` for the "snapshot" ticks, with the cluster's key."""
        action = "create_cluster_snapshot"
        self._enter(action, identifier=identifier, cluster_identifier=cluster_identifier, tags=dict(tags))
        self._rule(action, rulebook.check_identifier, "DBClusterSnapshotIdentifier", identifier)
        self._rule(action, rulebook.check_tags, as_tag_list(tags))
        cluster = self.clusters.get(cluster_identifier.lower())
        if cluster is None:
            raise self._refuse(action, "DBClusterNotFoundFault", f"DBCluster {cluster_identifier} not found.")
        if cluster["Status"] != "available":
            raise self._refuse(action, "InvalidDBClusterStateFault", f"DBCluster {cluster_identifier} is not "
                               f"available.")
        identifier = identifier.lower()
        if identifier in self.snapshots:
            raise self._refuse(
                action, "DBClusterSnapshotAlreadyExistsFault", f"Cannot create the snapshot {identifier}: it exists."
            )
        snapshot = {
            "DBClusterSnapshotIdentifier": identifier,
            "DBClusterSnapshotArn": self.arn("cluster-snapshot", identifier),
            "DBClusterIdentifier": cluster["DBClusterIdentifier"],
            "SnapshotType": "manual",
            "Status": "creating",
            "Engine": cluster["Engine"],
            "EngineVersion": cluster["EngineVersion"],
            "StorageEncrypted": bool(cluster.get("StorageEncrypted")),
            "MasterUsername": cluster.get("MasterUsername"),
            "PercentProgress": 0,
            "SnapshotCreateTime": self.clock(),
            "TagList": as_tag_list(tags),
        }
        if cluster.get("KmsKeyId"):
            snapshot["KmsKeyId"] = cluster["KmsKeyId"]
        self.snapshots[identifier] = snapshot
        self._settle_later("snapshot", identifier, self.ticks_for("snapshot"), lambda: self._set(snapshot, "available"))
        return copy.deepcopy(snapshot)

    def delete_snapshot(self, identifier: str) -> None:
        """A missing snapshot is fine (the gateway swallows DBClusterSnapshotNotFoundFault); a creating one is not.

        AWS deletes a snapshot only when it is available, or cancels the copy when it is still copying.
        """
        action = "delete_snapshot"
        self._enter(action, identifier=identifier)
        key = self._snapshot_key(identifier)
        if key is None:
            return
        if self.snapshots[key]["Status"] not in ("available", "copying"):
            raise self._refuse(
                action, "InvalidDBClusterSnapshotStateFault", f"Snapshot {identifier} is not in the available state."
            )
        del self.snapshots[key]
        self.shared_with.pop(key, None)
        self._settling.pop(("snapshot", key), None)

    # --- sharing with other accounts ---------------------------------------------------------------------------

    def restore_accounts(self, identifier: str) -> list[str]:
        action = "restore_accounts"
        self._enter(action, identifier=identifier)
        key = self._snapshot_key(identifier)
        if key is None:
            raise self._refuse(action, "DBClusterSnapshotNotFoundFault", f"DBClusterSnapshot {identifier} not found.")
        return list(self.shared_with.get(key, []))

    def share_snapshot(self, identifier: str, account_id: str) -> None:
        """Adding an account already there is no error, as in AWS."""
        action = "share_snapshot"
        self._enter(action, identifier=identifier, account_id=account_id)
        key = self._snapshot_key(identifier)
        if key is None:
            raise self._refuse(action, "DBClusterSnapshotNotFoundFault", f"DBClusterSnapshot {identifier} not found.")
        snapshot = self.snapshots[key]
        if snapshot["SnapshotType"] != "manual":
            raise self._refuse(action, "InvalidParameterValue", "Only manual DB cluster snapshots can be shared.")
        if snapshot["Status"] != "available":
            raise self._refuse(
                action, "InvalidDBClusterSnapshotStateFault", f"Snapshot {identifier} is not in the available state."
            )
        key_metadata = self.cloud.kms(self.region).find(snapshot.get("KmsKeyId") or "")
        self._rule(
            action,
            rulebook.check_shareable,
            encrypted=bool(snapshot["StorageEncrypted"]),
            key_manager=key_metadata["KeyManager"] if key_metadata is not None else None,
            values_to_add=[account_id],
        )
        accounts = self.shared_with.setdefault(key, [])
        if account_id not in accounts:
            accounts.append(account_id)

    def unshare_snapshot(self, identifier: str, account_id: str) -> None:
        """A missing snapshot is fine (the gateway swallows DBClusterSnapshotNotFoundFault), so is an absent account."""
        action = "unshare_snapshot"
        self._enter(action, identifier=identifier, account_id=account_id)
        key = self._snapshot_key(identifier)
        if key is None:
            return
        if self.snapshots[key]["Status"] != "available":
            raise self._refuse(
                action, "InvalidDBClusterSnapshotStateFault", f"Snapshot {identifier} is not in the available state."
            )
        accounts = self.shared_with.get(key, [])
        if account_id in accounts:
            accounts.remove(account_id)

    def _shared_with_us(self, arn: str) -> dict[str, Any] | None:
        """The snapshot another account of the world shared with this one, named by its ARN, in this region."""
        parts = arn.split(":")
        if len(parts) != 7 or parts[5] != "cluster-snapshot" or parts[4] == self.cloud.account_id:
            return None
        owner = self.cloud.world.accounts.get(parts[4])
        origin = owner.regions.get(parts[3]) if owner is not None else None
        key = origin._snapshot_key(arn) if origin is not None else None
        if key is None or parts[3] != self.region:
            return None
        accounts = origin.shared_with.get(key, [])
        return origin.snapshots[key] if self.cloud.account_id in accounts or "all" in accounts else None

    # --- what preflight looks up ---------------------------------------------------------------------------------

    def valid_upgrade_targets(self, engine: str, version: str) -> list[str] | None:
        self._enter("valid_upgrade_targets", engine=engine, version=version)
        targets = self.upgrade_targets.get((engine, version))
        return list(targets) if targets is not None else None

    def exists(self, kind: str, name: str) -> bool:
        self._enter("exists", kind=kind, name=name)
        return name in self.groups[kind]

    # --- clusters ------------------------------------------------------------------------------------------------

    def describe_cluster(self, identifier: str) -> dict[str, Any] | None:
        self._enter("describe_cluster", identifier=identifier)
        return self._observe("cluster", identifier.lower(), self.clusters)

    def list_clusters(self) -> list[dict[str, Any]]:
        self._enter("list_clusters")
        return [self._view(cluster) for cluster in self.clusters.values()]

    def cluster_quota(self) -> tuple[int, int] | None:
        self._enter("cluster_quota")
        return None if self.cluster_quota_max is None else (len(self.clusters), self.cluster_quota_max)

    def _clone_source(self, action: str, identifier: str) -> dict[str, Any] | None:
        """A cluster of this account and region by identifier or ARN, or one another account shares with this one
        through RAM (fake_clone.py), by its ARN (rulebook: a cross-account clone names the shared cluster's ARN)."""
        if not identifier.startswith("arn:"):
            return self.clusters.get(identifier.lower())
        owner, name = identifier.split(":")[4], identifier.rsplit(":", 1)[-1].lower()
        if owner == self.cloud.account_id:
            return self.clusters.get(name)
        world_ram = self.cloud.world.ram
        if world_ram is None or not world_ram.cluster_shared_with(identifier, self.cloud.account_id):
            return None
        return self.cloud.account(owner).rds(self.region).clusters.get(name)

    def restore_cluster_from_snapshot(self, **params) -> dict[str, Any]:
        action = "restore_cluster_from_snapshot"
        self._enter(action, **params)
        missing = {"DBClusterIdentifier", "SnapshotIdentifier", "Engine"} - params.keys()
        if missing:
            raise self._refuse(action, "MissingParameter", f"missing {sorted(missing)}")
        self._rule(action, rulebook.check_identifier, "DBClusterIdentifier", params["DBClusterIdentifier"])
        self._rule(action, rulebook.check_tags, params.get("Tags"))
        identifier = params["DBClusterIdentifier"].lower()
        self._rule(action, rulebook.check_cluster_free, identifier, identifier in self.clusters)
        key = self._snapshot_key(params["SnapshotIdentifier"])
        shared = self._shared_with_us(params["SnapshotIdentifier"]) if key is None else None
        if key is None and shared is None:
            raise self._refuse(
                action, "DBClusterSnapshotNotFoundFault", f"DBClusterSnapshot {params['SnapshotIdentifier']} not found."
            )
        snapshot = shared if shared is not None else self.snapshots[key]
        if snapshot["Status"] != "available":
            raise self._refuse(action, "InvalidDBClusterSnapshotStateFault", "Snapshot is not available.")
        if params["Engine"] != snapshot["Engine"]:
            raise self._refuse(action, "InvalidParameterCombination", "The engine does not match the snapshot's.")
        self._rule(
            action,
            rulebook.check_upgrade_target,
            snapshot["Engine"],
            snapshot["EngineVersion"],
            params.get("EngineVersion"),
            self.upgrade_targets.get((snapshot["Engine"], snapshot["EngineVersion"])),
        )
        self._check_kms_key(action, params.get("KmsKeyId"))
        if shared is not None and snapshot["StorageEncrypted"]:
            self._check_owner_key_access(action, snapshot["DBClusterSnapshotArn"], snapshot.get("KmsKeyId"))
        cluster = self._new_cluster(
            identifier,
            params["Engine"],
            params.get("EngineVersion", snapshot["EngineVersion"]),
            self._request_tags(params),
            "creating",
        )
        cluster.update(
            StorageEncrypted=snapshot["StorageEncrypted"],
            DeletionProtection=params.get("DeletionProtection", False),
            CopyTagsToSnapshot=params.get("CopyTagsToSnapshot", False),
            Port=params.get("Port", cluster["Port"]),
            MasterUsername=snapshot.get("MasterUsername") or cluster["MasterUsername"],
        )
        if snapshot["StorageEncrypted"] or params.get("KmsKeyId"):  # the key given, else the snapshot's
            cluster.update(StorageEncrypted=True, KmsKeyId=params.get("KmsKeyId") or snapshot.get("KmsKeyId"))
        if params.get("DatabaseName"):
            cluster["DatabaseName"] = params["DatabaseName"]
        self._settle_later("cluster", identifier, self.ticks_for("cluster"),
                           lambda: self._set(cluster, self.settles_as.get("cluster", "available")))
        return self._view(cluster)

    def restore_cluster_to_point_in_time(self, **params) -> dict[str, Any]:
        """A full copy of a cluster of this region as it was at RestoreToTime (or its LatestRestorableTime)."""
        action = "restore_cluster_to_point_in_time"
        self._enter(action, **params)
        missing = {"DBClusterIdentifier", "SourceDBClusterIdentifier"} - params.keys()
        if missing:
            raise self._refuse(action, "MissingParameter", f"missing {sorted(missing)}")
        if ("RestoreToTime" in params) == bool(params.get("UseLatestRestorableTime")):
            raise self._refuse(
                action, "InvalidParameterCombination", "Give exactly one of RestoreToTime or UseLatestRestorableTime."
            )
        self._rule(action, rulebook.check_identifier, "DBClusterIdentifier", params["DBClusterIdentifier"])
        self._rule(action, rulebook.check_tags, params.get("Tags"))
        identifier = params["DBClusterIdentifier"].lower()
        self._rule(action, rulebook.check_cluster_free, identifier, identifier in self.clusters)
        source = self._clone_source(action, params["SourceDBClusterIdentifier"])
        if source is None:
            raise self._refuse(
                action, "DBClusterNotFoundFault", f"DBCluster {params['SourceDBClusterIdentifier']} not found."
            )
        copy_on_write = params.get("RestoreType") == "copy-on-write"
        if copy_on_write and not self._members_of(source):
            raise self._refuse(action, "InvalidDBClusterStateFault", "A clone needs a source with a DB instance.")
        moment = params.get("RestoreToTime")
        if moment is not None and moment.tzinfo is None:  # botocore sends a naive time as UTC
            moment = moment.replace(tzinfo=timezone.utc)
        window = self._view(source)
        earliest, latest = window.get("EarliestRestorableTime"), window.get("LatestRestorableTime")
        if moment is not None and (earliest is None or latest is None):
            raise self._refuse(action, "InvalidRestoreFault", "The source cluster has no restorable window.")
        self._rule(action, rulebook.check_restore_time, moment, earliest, latest)
        self._check_kms_key(action, params.get("KmsKeyId"))
        cluster = self._new_cluster(
            identifier, source["Engine"], source["EngineVersion"], self._request_tags(params), "creating"
        )
        if copy_on_write:  # a clone joins its source's clone group
            source.setdefault("CloneGroupId", f"clone-group-{source['DbClusterResourceId']}")
            cluster["CloneGroupId"] = source["CloneGroupId"]
        # DBCluster.CrossAccountClone: a clone of a cluster another account owns
        cluster["CrossAccountClone"] = copy_on_write and source["DBClusterArn"].split(":")[4] != self.cloud.account_id
        cluster.update(
            StorageEncrypted=source["StorageEncrypted"],
            DeletionProtection=params.get("DeletionProtection", False),
            CopyTagsToSnapshot=params.get("CopyTagsToSnapshot", False),
            Port=params.get("Port", cluster["Port"]),
            MasterUsername=source["MasterUsername"],
        )
        self._settle_later("cluster", identifier, self.ticks_for("cluster"),
                           lambda: self._set(cluster, self.settles_as.get("cluster", "available")))
        return self._view(cluster)

    def modify_cluster(self, identifier: str, **params) -> dict[str, Any]:
        """Only what the operator changes: the master password, or handing it to Secrets Manager, and the
        maintenance window and deletion protection (at once, no transitional status, as AWS does).

        AWS accepts a modification only of an available cluster and applies it (ApplyImmediately) through a
        transitional status; ManageMasterUserPassword leaves a MasterUserSecret on the cluster once settled.
        """
        action = "modify_cluster"
        self._enter(action, identifier=identifier, **params)
        key = identifier.lower()
        cluster = self.clusters.get(key)
        self._rule(action, rulebook.check_cluster_exists, identifier, cluster is not None)
        self._rule(
            action,
            rulebook.check_rotation,
            rotate=bool(params.get("RotateMasterUserPassword")),
            managed=bool(cluster.get("MasterUserSecret") or params.get("ManageMasterUserPassword")),
        )
        if cluster["Status"] != "available":
            raise self._refuse(action, "InvalidDBClusterStateFault", f"DB cluster is in state {cluster['Status']}")
        if "PreferredMaintenanceWindow" in params:
            cluster["PreferredMaintenanceWindow"] = params["PreferredMaintenanceWindow"].lower()
        if "DeletionProtection" in params:
            cluster["DeletionProtection"] = bool(params["DeletionProtection"])
        manage = params.get("ManageMasterUserPassword")
        password = params.get("MasterUserPassword")
        if manage and password is not None:
            raise self._refuse(
                action,
                "InvalidParameterCombination",
                "MasterUserPassword cannot be specified when ManageMasterUserPassword is true.",
            )
        self._rule(action, rulebook.check_master_password, password)
        if manage:
            secret = {
                "SecretArn": f"arn:aws:secretsmanager:{self.region}:{self.cloud.account_id}:secret:rds!cluster-{key}",
                "SecretStatus": "active",
            }
            cluster["Status"] = "modifying"

            def settle() -> None:
                cluster["Status"] = "available"
                cluster["MasterUserSecret"] = secret

            self._settle_later("cluster", key, self.ticks_for("modify"), settle)
        elif password is not None:
            self.master_passwords[key] = password
            cluster.pop("MasterUserSecret", None)
            cluster["Status"] = "resetting-master-credentials"
            self._settle_later("cluster", key, self.ticks_for("modify"), lambda: self._set(cluster, "available"))
        return self._view(cluster)

    def delete_cluster(
        self,
        identifier: str,
        final_snapshot_identifier: str | None,
        keep_automated_backups: bool = False,
        *,
        skip_final_snapshot: bool | None = None,
    ) -> None:
        """`skip_final_snapshot`: SkipFinalSnapshot as sent; None: as the gateway sends it (without a final
        snapshot identifier). A test passes False to make the request the gateway never makes."""
        action = "delete_cluster"
        self._enter(action, identifier=identifier, final_snapshot_identifier=final_snapshot_identifier,
                    keep_automated_backups=keep_automated_backups)
        if skip_final_snapshot is None:
            skip_final_snapshot = not final_snapshot_identifier
        self._rule(action, rulebook.check_final_snapshot_choice, skip_final_snapshot, final_snapshot_identifier)
        key = identifier.lower()
        cluster = self.clusters.get(key)
        self._rule(
            action,
            rulebook.check_identifier,
            "FinalDBSnapshotIdentifier",
            final_snapshot_identifier,
            rulebook.MAX_FINAL_SNAPSHOT_IDENTIFIER_LENGTH,
        )
        if cluster is None:
            return
        self._rule(
            action, rulebook.check_cluster_deletable, deletion_protection=bool(cluster["DeletionProtection"]),
            live_instances=0,
        )
        if cluster["Status"] != "available" and cluster["Status"] not in FAILED_STATUSES:  # AWS deletes broken ones
            raise self._refuse(action, "InvalidDBClusterStateFault", f"DB cluster is in state {cluster['Status']}")
        live = [i for i in self._instances_of(key) if i["DBInstanceStatus"] != "deleting"]
        self._rule(action, rulebook.check_cluster_deletable, deletion_protection=False, live_instances=len(live))
        if final_snapshot_identifier:
            final = final_snapshot_identifier.lower()
            if final in self.snapshots:
                raise self._refuse(
                    action, "DBClusterSnapshotAlreadyExistsFault", f"Cannot create the snapshot {final}: it exists."
                )
            self.add_snapshot(
                final,
                key,
                status="creating",
                engine=cluster["Engine"],
                engine_version=cluster["EngineVersion"],
                encrypted=cluster["StorageEncrypted"],
                tags=tags_of(cluster) if cluster.get("CopyTagsToSnapshot") else {},
                settles_after=self.ticks_for("final-snapshot"),
            )
        cluster["Status"] = "deleting"

        def forget() -> None:
            self._forget_cluster(key)
            if keep_automated_backups:
                self.retained_backups[key] = {"DBClusterIdentifier": key, "Status": "retained",
                                              "DbClusterResourceId": cluster["DbClusterResourceId"]}
            else:
                for snapshot_key, snapshot in list(self.snapshots.items()):
                    if snapshot["SnapshotType"] == "automated" and snapshot["DBClusterIdentifier"] == key:
                        del self.snapshots[snapshot_key]

        self._settle_later("cluster", key, self.ticks_for("cluster-delete"), forget)

    def rename_cluster(self, identifier: str, new_identifier: str) -> dict[str, Any]:
        """ModifyDBCluster NewDBClusterIdentifier: what moves with the name and what stays (module docstring)."""
        action = "rename_cluster"
        self._enter(action, identifier=identifier, new_identifier=new_identifier)
        key, new_key = identifier.lower(), new_identifier.lower()
        cluster = self.clusters.get(key)
        self._rule(action, rulebook.check_cluster_exists, identifier, cluster is not None)
        self._rule(action, rulebook.check_new_cluster_identifier, new_identifier, new_key in self.clusters)
        if cluster["Status"] != "available":
            raise self._refuse(action, "InvalidDBClusterStateFault", f"DB cluster is in state {cluster['Status']}")
        del self.clusters[key]
        self.clusters[new_key] = cluster
        cluster["DBClusterIdentifier"] = new_key
        cluster["DBClusterArn"] = self.arn("cluster", new_key)
        if not self.endpoint_host:
            cluster["Endpoint"] = f"{new_key}.cluster-c0ffee.{self.region}.rds.amazonaws.com"
            cluster["ReaderEndpoint"] = f"{new_key}.cluster-ro-c0ffee.{self.region}.rds.amazonaws.com"
        for instance in self.instances.values():
            if instance["DBClusterIdentifier"] == key:
                instance["DBClusterIdentifier"] = new_key
        for snapshot in self.snapshots.values():
            if snapshot["SnapshotType"] == "automated" and snapshot["DBClusterIdentifier"] == key:
                snapshot["DBClusterIdentifier"] = new_key
        if key in self.master_passwords:
            self.master_passwords[new_key] = self.master_passwords.pop(key)
        if key in self._restorable_since:
            self._restorable_since[new_key] = self._restorable_since.pop(key)
        cluster["Status"] = "renaming"
        self._settle_later("cluster", new_key, self.ticks_for("rename"), lambda: self._set(cluster, "available"))
        return self._view(cluster)

    def add_tags(self, arn: str, tags: dict[str, str]) -> None:
        action = "add_tags"
        self._enter(action, arn=arn, tags=tags)
        for table in (self.snapshots, self.clusters, self.instances):
            for resource in table.values():
                if arn in (resource.get("DBClusterSnapshotArn"), resource.get("DBClusterArn"),
                           resource.get("DBInstanceArn")):
                    self._rule(action, rulebook.check_tags, as_tag_list(tags), tags_of(resource))
                    resource["TagList"] = as_tag_list({**tags_of(resource), **tags})
                    return
        raise self._refuse(action, "DBClusterSnapshotNotFoundFault", f"{arn} not found.")

    # --- instances -----------------------------------------------------------------------------------------------

    def describe_instance(self, identifier: str) -> dict[str, Any] | None:
        self._enter("describe_instance", identifier=identifier)
        return self._observe("instance", identifier.lower(), self.instances)

    def list_cluster_instances(self, cluster_identifier: str) -> list[dict[str, Any]]:
        self._enter("list_cluster_instances", cluster_identifier=cluster_identifier)
        keys = [i["DBInstanceIdentifier"] for i in self._instances_of(cluster_identifier.lower())]
        found = [self._observe("instance", key, self.instances) for key in keys]
        return [instance for instance in found if instance is not None]

    def create_instance(self, **params) -> dict[str, Any]:
        action = "create_instance"
        self._enter(action, **params)
        missing = {"DBInstanceIdentifier", "DBClusterIdentifier", "Engine", "DBInstanceClass"} - params.keys()
        if missing:
            raise self._refuse(action, "MissingParameter", f"missing {sorted(missing)}")
        self._rule(action, rulebook.check_identifier, "DBInstanceIdentifier", params["DBInstanceIdentifier"])
        self._rule(action, rulebook.check_tags, params.get("Tags"))
        identifier = params["DBInstanceIdentifier"].lower()
        if identifier in self.instances:
            raise self._refuse(action, "DBInstanceAlreadyExists", "DB instance already exists")
        cluster = self.clusters.get(params["DBClusterIdentifier"].lower())
        if cluster is None:
            missing_cluster = params["DBClusterIdentifier"]
            raise self._refuse(action, "DBClusterNotFoundFault", f"DBCluster {missing_cluster} not found.")
        if params["Engine"] != cluster["Engine"]:
            raise self._refuse(action, "InvalidParameterCombination", "The engine does not match the cluster's.")
        instance = self._new_instance(identifier, cluster, params["DBInstanceClass"], self._request_tags(params))
        instance["PromotionTier"] = params.get("PromotionTier", 1)
        settled = self.settles_as.get("instance", "available")
        settle = lambda: self._set(instance, settled, "DBInstanceStatus")  # noqa: E731
        self._settle_later("instance", identifier, self.ticks_for("instance"), settle)
        return copy.deepcopy(instance)

    def delete_instance(self, identifier: str) -> None:
        action = "delete_instance"
        self._enter(action, identifier=identifier)
        key = identifier.lower()
        instance = self.instances.get(key)
        if instance is None:
            return
        if instance["DBInstanceStatus"] == "deleting":
            raise self._refuse(action, "InvalidDBInstanceState", "Instance is already being deleted.")
        instance["DBInstanceStatus"] = "deleting"
        self._settle_later("instance", key, self.ticks_for("instance-delete"), lambda: self._forget_instance(key))

    # --- internals -----------------------------------------------------------------------------------------------

    def _enter(self, action: str, **params) -> None:
        """Log the call, then raise the first error queued for it."""
        call = self.cloud.record(self.region, action, params)
        for position, (queued_action, error) in enumerate(self._queued_errors):
            if queued_action in (action, "*"):
                del self._queued_errors[position]
                call.error = error.reason
                raise error

    def _refuse(self, action: str, code: str, message: str) -> RetryableError | TerminalError:
        error = aws_error(code, message, action=action, region=self.region)
        error.aws_code = code  # what RDS answered, also where `reason` is the operator's (AwsResourceBusy)
        self.cloud.calls[-1].error = error.reason
        return error

    def _rule(self, action: str, check: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Run a check of the simulator's rulebook; a violation is refused as AWS refuses it."""
        try:
            check(*args, **kwargs)
        except rulebook.RuleViolation as violation:
            raise self._refuse(action, violation.code, violation.message) from None

    def _check_owner_key_access(self, action: str, snapshot_arn: str, key_id: str | None) -> None:
        """Rulebook `shared-encrypted-needs-key-access`: the owner's key must be open to this account. A key the
        owner's FakeKms does not know is taken as open (the fake models only the keys a test adds)."""
        owner_account, region = snapshot_arn.split(":")[4], snapshot_arn.split(":")[3]
        owner_kms = self.cloud.account(owner_account).kms(region)
        if owner_kms.find(key_id or "") is None:
            return
        self._rule(
            action,
            rulebook.check_key_access,
            key_id=key_id,
            key_account=owner_account,
            caller_account=self.cloud.account_id,
            allowed_accounts=owner_kms.key_users(key_id),
        )

    def _check_kms_key(self, action: str, kms_key_id: str | None) -> None:
        """Rulebook `key-in-request-region`: a key of another region, a disabled key of this account or one outside
        `usable_kms_keys` (when set) is refused; another key of this region is taken as usable (the fake models
        only the keys a test adds)."""
        if not kms_key_id:
            return
        region = rulebook.key_region(kms_key_id)
        known = self.cloud.kms(self.region).find(kms_key_id)
        usable = (
            (region is None or region == self.region)
            and (known is None or known.get("KeyState") == "Enabled")
            and (self.usable_kms_keys is None or kms_key_id in self.usable_kms_keys)
        )
        self._rule(action, rulebook.check_kms_key_usable, kms_key_id, usable)

    @staticmethod
    def _request_tags(params: dict[str, Any]) -> dict[str, str]:
        """The Tags parameter of a create call (a TagList, like a described resource's)."""
        return {tag["Key"]: tag["Value"] for tag in params.get("Tags") or []}

    def _snapshot_key(self, identifier_or_arn: str) -> str | None:
        if identifier_or_arn in self.snapshots:  # shared snapshots are known by ARN only
            return identifier_or_arn
        lowered = identifier_or_arn.lower()
        if lowered in self.snapshots:
            return lowered
        for key, snapshot in self.snapshots.items():
            if snapshot["DBClusterSnapshotArn"] == identifier_or_arn:
                return key
        return None

    def _settle_later(self, kind: str, key: str, ticks: int, settle: Callable[[], None]) -> None:
        self._settling[(kind, key)] = _Settling(remaining=ticks, total=ticks, settle=settle)

    def _observe(self, kind: str, key: str, table: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """One look at a resource: it settles once its transitional looks are used up."""
        settling = self._settling.get((kind, key))
        if settling is not None:
            if settling.remaining <= 0:
                del self._settling[(kind, key)]
                settling.settle()
            else:
                settling.remaining -= 1
                resource = table.get(key)
                if resource is not None and "PercentProgress" in resource:
                    done = settling.total - settling.remaining
                    resource["PercentProgress"] = int(100 * done / (settling.total + 1))
        resource = table.get(key)
        if resource is None:
            return None
        return self._view(resource) if kind == "cluster" else copy.deepcopy(resource)

    def _set(self, resource: dict[str, Any], status: str, key: str = "Status") -> None:
        resource[key] = status
        if "PercentProgress" in resource:
            resource["PercentProgress"] = 100

    def _new_cluster(
        self, identifier: str, engine: str, engine_version: str, tags: dict[str, str], status: str
    ) -> dict[str, Any]:
        cluster = {
            "DBClusterIdentifier": identifier,
            "DBClusterArn": self.arn("cluster", identifier),
            "DbClusterResourceId": f"cluster-{next(RESOURCE_IDS):06d}",
            "Status": status,
            "Engine": engine,
            "EngineVersion": engine_version,
            "MasterUsername": default_master_username(engine),
            "Endpoint": self.endpoint_host or f"{identifier}.cluster-c0ffee.{self.region}.rds.amazonaws.com",
            "ReaderEndpoint": self.endpoint_host or f"{identifier}.cluster-ro-c0ffee.{self.region}.rds.amazonaws.com",
            "Port": 5432 if "postgres" in engine else 3306,
            "StorageEncrypted": False,
            "DeletionProtection": False,
            "TagList": as_tag_list(tags),
        }
        self.clusters[identifier] = cluster
        return cluster

    def _new_instance(
        self, identifier: str, cluster: dict[str, Any], instance_class: str, tags: dict[str, str]
    ) -> dict[str, Any]:
        members = self._instances_of(cluster["DBClusterIdentifier"])
        instance = {
            "DBInstanceIdentifier": identifier,
            "DBInstanceArn": self.arn("db", identifier),
            "DBClusterIdentifier": cluster["DBClusterIdentifier"],
            "DBInstanceClass": instance_class,
            "DBInstanceStatus": "creating",
            "Engine": cluster["Engine"],
            "TagList": as_tag_list(tags),
        }
        if not members:  # the first instance of an Aurora cluster becomes its writer
            self._writers.add(identifier)
        self.instances[identifier] = instance
        return instance

    def _members_of(self, cluster: dict[str, Any]) -> list[dict[str, Any]]:
        """The instances of a cluster of any account (the FakeRds of its ARN's account and region)."""
        owner, region = cluster["DBClusterArn"].split(":")[4], cluster["DBClusterArn"].split(":")[3]
        return self.cloud.account(owner).rds(region)._instances_of(cluster["DBClusterIdentifier"])

    def _instances_of(self, cluster_identifier: str) -> list[dict[str, Any]]:
        # dicts keep insertion order: instances come back in the order they were created
        return [i for i in self.instances.values() if i["DBClusterIdentifier"] == cluster_identifier]

    def _view(self, cluster: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(cluster)
        created = self._restorable_since.get(cluster["DBClusterIdentifier"])
        if created is not None:
            view["EarliestRestorableTime"], view["LatestRestorableTime"] = rulebook.restorable_window(
                created, self.clock(), self.restorable_lag
            )
        view["DBClusterMembers"] = [
            {
                "DBInstanceIdentifier": i["DBInstanceIdentifier"],
                "IsClusterWriter": i["DBInstanceIdentifier"] in self._writers,
                "PromotionTier": i.get("PromotionTier", 1),
            }
            for i in self._instances_of(cluster["DBClusterIdentifier"])
        ]
        return view

    def _forget_cluster(self, key: str) -> None:
        self.clusters.pop(key, None)
        self._restorable_since.pop(key, None)

    def _forget_instance(self, key: str) -> None:
        self.instances.pop(key, None)
        self._writers.discard(key)


class FakeLock:
    """RestoreContext.target_lock over a shared dict {target: holder}, as the per-target Lease behaves."""

    def __init__(self, holders: dict[str, str], target: str, holder: str):
        self.holders = holders
        self.target = target
        self.holder = holder

    def acquire(self) -> str | None:
        current = self.holders.setdefault(self.target, self.holder)
        return None if current == self.holder else current

    def release(self) -> None:
        if self.holders.get(self.target) == self.holder:
            del self.holders[self.target]


class InMemoryShareGrant(ShareGrant):
    """The real counting rules of k8s/share_leases.py over a dict shared by every restore of a test."""

    def __init__(self, store: dict[str, dict[str, str]], snapshot_arn: str, account_id: str,
                 alive=lambda holder: True):
        self._store = store
        self.holder_alive = alive
        self.key = f"{snapshot_arn}|{account_id}"
        self.snapshot_arn = snapshot_arn

    def load(self) -> dict[str, str]:
        return dict(self._store.get(self.key, {}))

    def store(self, annotations: dict[str, str]) -> None:
        self._store[self.key] = dict(annotations)
