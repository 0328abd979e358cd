"""DescribeAccountAttributes, which moto lacks: the account's RDS quotas in the region (rulebook `cluster-quota`).

Only the DBClusters quota is reported, with AWS's default maximum (40 clusters per region); Used counts the
account's clusters in the request's region, as AWS counts them. Preflight of a clone reads it.
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse

DEFAULT_MAX_DB_CLUSTERS = 40


def install() -> None:
    RDSResponse.describe_account_attributes = describe_account_attributes


def describe_account_attributes(self: RDSResponse) -> ActionResult:
    """DescribeAccountAttributes: AccountQuotas with DBClusters (Used, Max)."""
    used = len(self.backend.clusters)
    return ActionResult({"AccountQuotas": [{"AccountQuotaName": "DBClusters", "Used": used,
                                            "Max": DEFAULT_MAX_DB_CLUSTERS}]})
