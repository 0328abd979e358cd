"""MaxRecords/Marker paging for the RDS describe calls the operator lists with.

moto returns every item and ignores MaxRecords and Marker. AWS returns at most MaxRecords
(20-100, default 100) items and a Marker while more remain. The server-wide page size
(`settings.page_size`) caps pages further, below AWS's minimum, so that tests can force many
pages with few objects.

The Marker is opaque to clients; here it encodes the offset of the next item. Objects created
or deleted between two pages can shift the offsets, as with any offset-based paging.
"""

from __future__ import annotations

import base64
import json

from moto.core.responses import ActionResult
from moto.rds.exceptions import InvalidParameterValue

from . import rulebook
from .rds_hooks import Proceed, RdsHooks, RdsRequest
from .settings import SimulatorSettings

# Action -> the key of the result list it pages.
PAGINATED_ACTIONS = {
    "describe_db_cluster_automated_backups": "DBClusterAutomatedBackups",
    "describe_db_cluster_snapshots": "DBClusterSnapshots",
    "describe_db_clusters": "DBClusters",
    "describe_db_instances": "DBInstances",
}

MAX_RECORDS = rulebook.MAX_RECORDS


def register(hooks: RdsHooks, settings: SimulatorSettings) -> None:
    for action, result_key in PAGINATED_ACTIONS.items():
        hooks.around(action, _pager(settings, result_key))


def page_limit(max_records: int | None, page_size: int | None) -> int:
    """Items per page: MaxRecords (rulebook `describe-max-records`) capped by the server-wide page size."""
    try:
        rulebook.check_max_records(max_records)
    except rulebook.RuleViolation as violation:
        raise InvalidParameterValue(violation.message) from None
    limit = MAX_RECORDS if max_records is None else max_records
    return limit if page_size is None else min(limit, page_size)


def encode_marker(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_marker(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(marker.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise InvalidParameterValue(f"Invalid Marker: {marker}") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue(f"Invalid Marker: {marker}")
    return offset


def _pager(settings: SimulatorSettings, result_key: str):
    def paginate(request: RdsRequest, proceed: Proceed) -> ActionResult:
        limit = page_limit(request.params.get("MaxRecords"), settings.page_size)
        offset = decode_marker(request.params.get("Marker"))
        # The unpaged result: moto's own pager (PaginatedResult) only runs at serialization.
        result = dict(proceed().result)
        items = list(result.get(result_key) or [])
        result[result_key] = items[offset : offset + limit]
        result["Marker"] = encode_marker(offset + limit) if offset + limit < len(items) else None
        return ActionResult(result)

    return paginate
