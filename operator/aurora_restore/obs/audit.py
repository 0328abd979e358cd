"""The audit trail: one log line per mutating AWS call, and the newest of them in the restore's status.

The botocore hooks in aws/clients.py call `record` once per invocation (after botocore's retries, so a call
throttled twice and then answered is one line). Which restore a call belongs to comes from `CURRENT_TURN`, set by
the driver around each turn; asyncio.to_thread copies the context into the step's worker thread, so the hooks,
which run in that thread, see it. A line names identifiers and ARNs only, never a parameter's value: no password,
tag value or message body can reach it.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..api.models import AuditEntry, AuroraRestoreStatus

log = logging.getLogger("aurora_restore.audit")

# How many audit entries status.audit keeps, newest last (the log keeps them all).
STATUS_AUDIT_LIMIT = 50

# The mutating operations the operator calls, by signing name, with the request parameter naming the resource and
# the RDS ARN resource type to build its ARN from (None: the parameter is an ARN already). Every other operation it
# calls is a Describe*/List*/Get* (or STS's AssumeRole and GetCallerIdentity, which change nothing): counted in the
# metrics, not audited. tests/unit/test_audit_operations.py checks this table against botocore's service models and
# against the calls the operator's code makes.
AUDITED_OPERATIONS: dict[tuple[str, str], tuple[str, str | None]] = {
    ("rds", "CopyDBClusterSnapshot"): ("TargetDBClusterSnapshotIdentifier", "cluster-snapshot"),
    ("rds", "CreateDBClusterSnapshot"): ("DBClusterSnapshotIdentifier", "cluster-snapshot"),
    ("rds", "DeleteDBClusterSnapshot"): ("DBClusterSnapshotIdentifier", "cluster-snapshot"),
    ("rds", "ModifyDBClusterSnapshotAttribute"): ("DBClusterSnapshotIdentifier", "cluster-snapshot"),
    ("rds", "RestoreDBClusterFromSnapshot"): ("DBClusterIdentifier", "cluster"),
    ("rds", "RestoreDBClusterToPointInTime"): ("DBClusterIdentifier", "cluster"),
    ("rds", "ModifyDBCluster"): ("DBClusterIdentifier", "cluster"),
    ("rds", "DeleteDBCluster"): ("DBClusterIdentifier", "cluster"),
    ("rds", "CreateDBInstance"): ("DBInstanceIdentifier", "db"),
    ("rds", "DeleteDBInstance"): ("DBInstanceIdentifier", "db"),
    ("rds", "AddTagsToResource"): ("ResourceName", None),
    ("sns", "Publish"): ("TopicArn", None),
    # A cross-account clone's RAM share of the source cluster (steps/clone.py): named by the share's name when it
    # is created (it has no ARN yet), by ARN afterwards.
    ("ram", "CreateResourceShare"): ("name", None),
    ("ram", "DeleteResourceShare"): ("resourceShareArn", None),
    ("ram", "AcceptResourceShareInvitation"): ("resourceShareInvitationArn", None),
}


def is_audited(service: str, operation: str) -> bool:
    return (service, operation) in AUDITED_OPERATIONS


@dataclass
class Turn:
    """One turn of one restore: who it is (for the audit lines and the JSON log fields) and what it audited."""

    namespace: str
    name: str
    uid: str
    phase: str | None
    entries: list[AuditEntry] = field(default_factory=list)  # not yet written to status


CURRENT_TURN: ContextVar[Turn | None] = ContextVar("aurora_restore_turn", default=None)


@contextmanager
def turn(metadata: dict[str, Any], phase: object | None) -> Iterator[Turn]:
    """Make the restore of `metadata` the one the AWS calls and log lines of this context belong to."""
    current = Turn(metadata.get("namespace", ""), metadata.get("name", ""), metadata.get("uid", ""),
                   str(phase) if phase is not None else None)
    token = CURRENT_TURN.set(current)
    try:
        yield current
    finally:
        CURRENT_TURN.reset(token)


def current_turn() -> Turn | None:
    return CURRENT_TURN.get()


def resource_of(
    service: str, operation: str, params: dict[str, Any], region: str, account: str | None
) -> str | None:
    """The ARN of the resource a call acts on, built from its identifier when the account is known (a resource
    still to be created has no ARN to read yet); else the identifier as given."""
    parameter, kind = AUDITED_OPERATIONS[(service, operation)]
    identifier = params.get(parameter)
    if not isinstance(identifier, str) or not identifier:
        return None
    if kind is None or identifier.startswith("arn:") or not account:
        return identifier
    return f"arn:{partition_of(region)}:{service}:{region}:{account}:{kind}:{identifier}"


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def record(
    service: str, operation: str, region: str, resource: str | None, result: str, invocation_id: str | None,
    attempts: int | None,
) -> AuditEntry:
    """Log one audit line and keep its entry for the status of the current turn (if any)."""
    entry = AuditEntry(time=datetime.now(timezone.utc).replace(microsecond=0), action=f"{service}:{operation}",
                       resource=resource, result=result)
    current = current_turn()
    fields = {
        "action": entry.action,
        "resource": resource,
        "result": result,
        "uid": current.uid if current else None,
        "region": region,
        "invocationId": invocation_id,
        "attempts": attempts,
    }
    text = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    log.info("audit %s", text, extra={"audit": fields})
    if current is not None:
        current.entries.append(entry)
    return entry


def with_entries(status: AuroraRestoreStatus, entries: list[AuditEntry],
                 limit: int = STATUS_AUDIT_LIMIT) -> AuroraRestoreStatus:
    """The status with `entries` appended to status.audit, keeping the newest `limit`."""
    if not entries:
        return status
    return status.model_copy(update={"audit": (list(status.audit) + list(entries))[-limit:]})
