"""What one turn saw in transition: the RDS resources (by ARN) whose next status change would end its wait.

The gateway notes every cluster, instance and snapshot it describes (aws/rds.py), and the clients the resource a
mutating RDS call answers with (aws/clients.py: RestoreDBClusterFromSnapshot's cluster, "creating"); the driver
collects them per turn. With an events queue (docs/scale.md), a restore that waits while something it looked at
is in transition is woken by that resource's next RDS event, and otherwise looks again only after the safety
interval. Only transitions whose end RDS announces with an event count (ANNOUNCED_ENDS): waiting on any other
(a snapshot copying, a cluster modifying) polls at the poll interval as without events.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .arn import Arn

_local = threading.local()
ARN_KEYS = ("DBClusterArn", "DBInstanceArn", "DBClusterSnapshotArn")
STATUS_KEYS = ("Status", "DBInstanceStatus")
# The keys under which a mutating RDS call answers with the resource it changed.
ANSWER_KEYS = ("DBCluster", "DBInstance", "DBClusterSnapshot")
# Statuses whose end RDS announces with an event, by the resource type of the ARN (Aurora User Guide, "Amazon RDS
# event categories and event messages for Aurora"): a cluster created (RDS-EVENT-0170), deleted (0171), renamed
# (0172) or whose master credentials were reset (0016); an instance created (0005) or deleted (0003); a cluster
# snapshot created (0075 manual, 0169 automated). A snapshot copy's end has no cluster snapshot event.
ANNOUNCED_ENDS = {
    "cluster": frozenset({"creating", "deleting", "renaming", "resetting-master-credentials"}),
    "db": frozenset({"creating", "deleting"}),
    "cluster-snapshot": frozenset({"creating"}),
}


@contextmanager
def collecting() -> Iterator[set[str]]:
    """Collect, for the block (one turn, in one thread), the ARNs of the described resources in transition."""
    previous = getattr(_local, "seen", None)
    _local.seen = seen = set()
    try:
        yield seen
    finally:
        _local.seen = previous


def note(item: dict[str, Any] | None) -> None:
    """Record a described resource when RDS announces the end of its status, a transition (outside
    `collecting`: nothing happens)."""
    seen = getattr(_local, "seen", None)
    if seen is None or not item or not isinstance(item, dict):
        return
    arn = next((item[key] for key in ARN_KEYS if item.get(key)), None)
    status = next((item[key] for key in STATUS_KEYS if item.get(key)), None)
    if arn and status and status in ANNOUNCED_ENDS.get(resource_type(arn), ()):
        seen.add(arn)


def note_answer(answer: dict[str, Any] | None) -> None:
    """Record the resource a mutating RDS call answered with (its DBCluster, DBInstance or DBClusterSnapshot)."""
    for key in ANSWER_KEYS:
        note((answer or {}).get(key))


def resource_type(arn: str) -> str:
    """`cluster`, `db` or `cluster-snapshot` of arn:aws:rds:<region>:<account>:<type>:<name>."""
    parsed = Arn.parse(arn)
    return parsed.resource_type if parsed is not None and parsed.service == "rds" else ""
