"""RdsGateway: the narrow boundary between the steps and Amazon RDS, for one region.

Describes return None for "not found" instead of raising, because steps observe before they act.
Every other failure is classified (aws/errors.py) into RetryableError or TerminalError.

With an observer (aws/observer.py), the describes by identifier the steps repeat while they wait (cluster,
instance, cluster snapshot, a cluster's instances) are batched with those of other restores; the answers are the
same as the direct calls'.
"""

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from . import transitions
from .arn import name_of
from .errors import TRANSPORT_ERRORS, classify, error_code, is_not_found
from .observer import CLUSTER_INSTANCES, CLUSTER_SNAPSHOTS, CLUSTERS, INSTANCES, Kind, RdsObserver

# Cluster and instance statuses (AWS documents these as strings, not an enum).
AVAILABLE = "available"
# Statuses from which a cluster or instance will not come back to available by waiting (the cluster and
# instance status tables of the Aurora user guide); steps/rds_statuses.py says what each means and what to do.
FAILED_STATUSES = frozenset(
    {
        "failed",
        "cloning-failed",
        "migration-failed",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "incompatible-parameters",
        "incompatible-restore",
        "incompatible-network",
        "incompatible-option-group",
        "insufficient-capacity",
        "restore-error",
        "storage-full",
    }
)
SNAPSHOT_FAILED_STATUSES = frozenset({"failed", "error"})
EXISTENCE_CHECKS = {
    "subnet group": ("describe_db_subnet_groups", "DBSubnetGroupName"),
    "cluster parameter group": ("describe_db_cluster_parameter_groups", "DBClusterParameterGroupName"),
    "parameter group": ("describe_db_parameter_groups", "DBParameterGroupName"),
}


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    """The TagList of a described RDS resource as a dict."""
    return {tag["Key"]: tag["Value"] for tag in resource.get("TagList") or []}


def as_tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


class RdsGateway:
    """The RDS calls the operator makes in one region, through an injectable boto3 client."""

    def __init__(self, client, region: str, observer: RdsObserver | None = None):
        self.client = client
        self.region = region
        self.observer = observer

    def _call(self, action: str, **params):
        try:
            return getattr(self.client, action)(**params)
        except (ClientError, *TRANSPORT_ERRORS) as error:
            raise classify(error, f"{action} in {self.region}") from None

    def _described(self, action: str, describe: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The items `describe()` returns, noted for the turn (aws/transitions.py); none when RDS says the resource
        does not exist; any other failure classified."""
        try:
            items = describe()
        except ClientError as error:
            if is_not_found(error):
                return []
            raise classify(error, f"{action} in {self.region}") from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, f"{action} in {self.region}") from None
        for item in items:
            transitions.note(item)
        return items

    def _describe_one(self, action: str, key: str, **params) -> dict[str, Any] | None:
        items = self._described(action, lambda: getattr(self.client, action)(**params)[key][:1])
        return items[0] if items else None

    def _observed(self, kind: Kind, identifier: str) -> list[dict[str, Any]] | None:
        """The items of a batched describe (empty: not found), or None when this one must go direct."""
        if self.observer is None or not self.observer.batches(kind, identifier):
            return None
        return self._described(kind.action, lambda: self.observer.describe(kind, identifier))

    def _observed_one(self, kind: Kind, identifier: str, action: str, key: str, **params) -> dict[str, Any] | None:
        """One resource by identifier: batched when the observer takes it, else the direct describe."""
        items = self._observed(kind, identifier)
        if items is None:
            return self._describe_one(action, key, **params)
        return items[0] if items else None

    def _describe_all(self, action: str, key: str, **params) -> list[dict[str, Any]]:
        """Every page of a describe call: AWS returns at most 100 items per page."""
        return self._described(action, lambda: [
            item for page in self.client.get_paginator(action).paginate(**params) for item in page[key]])

    # --- snapshots ---------------------------------------------------------------------------------------------

    def describe_snapshot(self, identifier: str) -> dict[str, Any] | None:
        """A cluster snapshot by identifier or ARN.

        AWS only finds an automated snapshot ("rds:..." names) when SnapshotType says so.
        """
        params: dict[str, Any] = {"DBClusterSnapshotIdentifier": identifier}
        if name_of(identifier).startswith("rds:"):
            params["SnapshotType"] = "automated"
        return self._observed_one(
            CLUSTER_SNAPSHOTS, identifier, "describe_db_cluster_snapshots", "DBClusterSnapshots", **params
        )

    def list_cluster_snapshots(self, cluster_identifier: str, snapshot_type: str) -> list[dict[str, Any]]:
        """All snapshots of a cluster of one type ("any": automated, manual and shared), across all pages.

        By the `db-cluster-id` filter, not DBClusterIdentifier: AWS refuses DBClusterIdentifier for a cluster that
        no longer exists ("If supplied, must match the identifier of an existing DBCluster"), and a deleted
        cluster's retained snapshots are exactly what a restore may need."""
        # Filter values are case-sensitive (the Filter type); identifiers are stored in lower case.
        params: dict[str, Any] = {"Filters": [{"Name": "db-cluster-id", "Values": [cluster_identifier.lower()]}]}
        if snapshot_type == "any":
            params["IncludeShared"] = True
        else:
            params["SnapshotType"] = snapshot_type
            params["IncludeShared"] = snapshot_type == "shared"
        return self._describe_all("describe_db_cluster_snapshots", "DBClusterSnapshots", **params)

    def copy_snapshot(
        self,
        source_arn: str,
        source_region: str,
        identifier: str,
        kms_key_id: str | None,
        copy_tags: bool,
        tags: dict[str, str],
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "SourceDBClusterSnapshotIdentifier": source_arn,
            "TargetDBClusterSnapshotIdentifier": identifier,
            "CopyTags": copy_tags,
            "Tags": as_tag_list(tags),
        }
        if source_region != self.region:
            params["SourceRegion"] = source_region
        if kms_key_id:
            params["KmsKeyId"] = kms_key_id
        return self._call("copy_db_cluster_snapshot", **params)["DBClusterSnapshot"]

    def create_cluster_snapshot(self, identifier: str, cluster_identifier: str, tags: dict[str, str]) -> dict[str, Any]:
        """CreateDBClusterSnapshot: a manual snapshot of the cluster as it is now, tagged at creation."""
        return self._call(
            "create_db_cluster_snapshot",
            DBClusterSnapshotIdentifier=identifier,
            DBClusterIdentifier=cluster_identifier,
            Tags=as_tag_list(tags),
        )["DBClusterSnapshot"]

    def delete_snapshot(self, identifier: str) -> None:
        try:
            self.client.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=identifier)
        except ClientError as error:
            if not is_not_found(error):
                raise classify(error, f"delete_db_cluster_snapshot in {self.region}") from None

    def restore_accounts(self, identifier: str) -> list[str]:
        """Accounts a manual snapshot is shared with (its "restore" attribute)."""
        result = self._call("describe_db_cluster_snapshot_attributes", DBClusterSnapshotIdentifier=identifier)
        for attribute in result["DBClusterSnapshotAttributesResult"].get("DBClusterSnapshotAttributes", []):
            if attribute["AttributeName"] == "restore":
                return list(attribute.get("AttributeValues") or [])
        return []

    def share_snapshot(self, identifier: str, account_id: str) -> None:
        self._call(
            "modify_db_cluster_snapshot_attribute",
            DBClusterSnapshotIdentifier=identifier,
            AttributeName="restore",
            ValuesToAdd=[account_id],
        )

    def unshare_snapshot(self, identifier: str, account_id: str) -> None:
        try:
            self.client.modify_db_cluster_snapshot_attribute(
                DBClusterSnapshotIdentifier=identifier, AttributeName="restore", ValuesToRemove=[account_id]
            )
        except ClientError as error:
            if not is_not_found(error):
                raise classify(error, f"modify_db_cluster_snapshot_attribute in {self.region}") from None

    # --- what preflight looks up ----------------------------------------------------------------------------

    def valid_upgrade_targets(self, engine: str, version: str) -> list[str] | None:
        """Engine versions a snapshot of `version` can be restored to; None when AWS does not know `version`."""
        versions = self._call("describe_db_engine_versions", Engine=engine, EngineVersion=version)["DBEngineVersions"]
        if not versions:
            return None
        return [target["EngineVersion"] for target in versions[0].get("ValidUpgradeTarget", [])]

    def exists(self, kind: str, name: str) -> bool:
        """Whether a DB subnet group, cluster parameter group or parameter group of that name exists."""
        action, parameter = EXISTENCE_CHECKS[kind]
        try:
            getattr(self.client, action)(**{parameter: name})
            return True
        except ClientError as error:
            if error_code(error).endswith(("NotFound", "NotFoundFault")):
                return False
            raise classify(error, f"{action} in {self.region}") from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, f"{action} in {self.region}") from None

    def cluster_quota(self) -> tuple[int, int] | None:
        """(used, max) of the account's DBClusters quota in the region (DescribeAccountAttributes); None when
        AWS does not report it."""
        quotas = self._call("describe_account_attributes").get("AccountQuotas") or []
        for quota in quotas:
            if quota.get("AccountQuotaName") == "DBClusters":
                return int(quota.get("Used", 0)), int(quota.get("Max", 0))
        return None

    def restore_cluster_to_point_in_time(self, **params) -> dict[str, Any]:
        return self._call("restore_db_cluster_to_point_in_time", **params)["DBCluster"]

    # --- clusters ----------------------------------------------------------------------------------------------

    def describe_cluster(self, identifier: str) -> dict[str, Any] | None:
        return self._observed_one(
            CLUSTERS, identifier, "describe_db_clusters", "DBClusters", DBClusterIdentifier=identifier
        )

    def list_clusters(self) -> list[dict[str, Any]]:
        """Every DB cluster of the account in the region, across all pages."""
        return self._describe_all("describe_db_clusters", "DBClusters")

    def restore_cluster_from_snapshot(self, **params) -> dict[str, Any]:
        return self._call("restore_db_cluster_from_snapshot", **params)["DBCluster"]

    def modify_cluster(self, identifier: str, **params) -> dict[str, Any]:
        """ModifyDBCluster, applied immediately (the master password must work before verification)."""
        return self._call(
            "modify_db_cluster", DBClusterIdentifier=identifier, ApplyImmediately=True, **params
        )["DBCluster"]

    def rename_cluster(self, identifier: str, new_identifier: str) -> dict[str, Any]:
        """ModifyDBCluster NewDBClusterIdentifier, applied now: the cluster goes through `renaming`, its
        endpoints change with the name, its instances keep theirs."""
        return self._call(
            "modify_db_cluster",
            DBClusterIdentifier=identifier,
            NewDBClusterIdentifier=new_identifier,
            ApplyImmediately=True,
        )["DBCluster"]

    def delete_cluster(
        self, identifier: str, final_snapshot_identifier: str | None, keep_automated_backups: bool = False
    ) -> None:
        """DeleteDBCluster; DeleteAutomatedBackups is sent either way: false when `keep_automated_backups` (a
        cluster the user owned keeps its backups), else true (AWS's default is to remove them, except when an AWS
        Backup plan has a point-in-time rule for the cluster: the operator's own clusters leave nothing)."""
        params: dict[str, Any] = {"DBClusterIdentifier": identifier}
        if final_snapshot_identifier:
            params["FinalDBSnapshotIdentifier"] = final_snapshot_identifier
        else:
            params["SkipFinalSnapshot"] = True
        params["DeleteAutomatedBackups"] = not keep_automated_backups
        try:
            self.client.delete_db_cluster(**params)
        except ClientError as error:
            if not is_not_found(error):
                raise classify(error, f"delete_db_cluster in {self.region}") from None

    def add_tags(self, arn: str, tags: dict[str, str]) -> None:
        """AddTagsToResource: how a final snapshot (which DeleteDBCluster cannot tag) gets the restore's UID."""
        self._call("add_tags_to_resource", ResourceName=arn, Tags=as_tag_list(tags))

    # --- instances ---------------------------------------------------------------------------------------------

    def describe_instance(self, identifier: str) -> dict[str, Any] | None:
        return self._observed_one(
            INSTANCES, identifier, "describe_db_instances", "DBInstances", DBInstanceIdentifier=identifier
        )

    def list_cluster_instances(self, cluster_identifier: str) -> list[dict[str, Any]]:
        observed = self._observed(CLUSTER_INSTANCES, cluster_identifier)
        if observed is not None:
            return observed
        return self._describe_all(
            "describe_db_instances",
            "DBInstances",
            Filters=[{"Name": "db-cluster-id", "Values": [cluster_identifier.lower()]}],
        )

    def create_instance(self, **params) -> dict[str, Any]:
        return self._call("create_db_instance", **params)["DBInstance"]

    def delete_instance(self, identifier: str) -> None:
        try:
            self.client.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
        except ClientError as error:
            if not is_not_found(error):
                raise classify(error, f"delete_db_instance in {self.region}") from None
