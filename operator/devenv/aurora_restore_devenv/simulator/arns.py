"""Accept RDS ARNs where AWS accepts them and moto only takes plain identifiers.

moto compares DBClusterSnapshotIdentifier, SnapshotIdentifier and friends with the stored
identifier, so an ARN is "not found". AWS takes the ARN of a resource in the caller's own
account and region as a synonym of its identifier; these hooks rewrite such an ARN into the
identifier before moto sees it. ARNs of other regions or accounts are left alone: where AWS
accepts those (the source of a cross-region copy), moto already resolves them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rds_hooks import RdsHooks, RdsRequest

# Action -> (parameter, RDS resource type that its ARN must name).
ARN_PARAMETERS: dict[str, list[tuple[str, str]]] = {
    "describe_db_cluster_snapshots": [
        ("DBClusterSnapshotIdentifier", "cluster-snapshot"),
        ("DBClusterIdentifier", "cluster"),
    ],
    "restore_db_cluster_from_snapshot": [("SnapshotIdentifier", "cluster-snapshot")],
    "copy_db_cluster_snapshot": [("SourceDBClusterSnapshotIdentifier", "cluster-snapshot")],
    "delete_db_cluster_snapshot": [("DBClusterSnapshotIdentifier", "cluster-snapshot")],
    "describe_db_cluster_snapshot_attributes": [
        ("DBClusterSnapshotIdentifier", "cluster-snapshot")
    ],
    "modify_db_cluster_snapshot_attribute": [("DBClusterSnapshotIdentifier", "cluster-snapshot")],
    "describe_db_clusters": [("DBClusterIdentifier", "cluster")],
    "restore_db_cluster_to_point_in_time": [("SourceDBClusterIdentifier", "cluster")],
}


@dataclass(frozen=True)
class RdsArn:
    """`arn:PARTITION:rds:REGION:ACCOUNT:RESOURCE_TYPE:NAME`"""

    partition: str
    region: str
    account: str
    resource_type: str
    name: str

    @classmethod
    def parse(cls, value: str) -> RdsArn | None:
        """The parts of an RDS ARN, or None when `value` is not one."""
        parts = value.split(":", 6)
        if len(parts) != 7 or parts[0] != "arn" or parts[2] != "rds":
            return None
        _, partition, _, region, account, resource_type, name = parts
        return cls(partition, region, account, resource_type, name)


def identifier_for(value: str, resource_type: str, region: str, account: str) -> str:
    """The plain identifier when `value` is an ARN of this account and region, else `value`."""
    arn = RdsArn.parse(value)
    if (
        arn is None
        or arn.resource_type != resource_type
        or arn.region != region
        or arn.account != account
    ):
        return value
    return arn.name


def register(hooks: RdsHooks) -> None:
    """Rewrite same-account, same-region ARNs into identifiers for every action above."""
    for action, parameters in ARN_PARAMETERS.items():
        hooks.before(action, _rewriter(parameters))


def _rewriter(parameters: list[tuple[str, str]]):
    def rewrite_arns(request: RdsRequest) -> None:
        for parameter, resource_type in parameters:
            value = request.params.get(parameter)
            if isinstance(value, str):
                request.params[parameter] = identifier_for(
                    value, resource_type, request.region, request.account
                )

    return rewrite_arns
