"""What must hold after a chaos run, read from AWS (the simulator, as the test's own admin) and from Kubernetes (the
apiserver), never from the operator's own records of what it did."""

from collections import Counter
from typing import Any

from aurora_restore.api.phase import Phase

UID_TAG = "dbrestore.io/restore-uid"

# The phase graph of machine.py's docstring (it has no edge list of its own), edge by edge.
_FORWARD = {
    Phase.PENDING: {Phase.RESOLVING_SNAPSHOT},
    Phase.RESOLVING_SNAPSHOT: {Phase.PREFLIGHT},
    Phase.PREFLIGHT: {Phase.SHARING_SNAPSHOT, Phase.COPYING_SNAPSHOT, Phase.RESTORING_CLUSTER, Phase.PLANNED},
    Phase.SHARING_SNAPSHOT: {Phase.COPYING_SNAPSHOT},
    Phase.COPYING_SNAPSHOT: {Phase.RESTORING_CLUSTER},
    Phase.RESTORING_CLUSTER: {Phase.CREATING_INSTANCES},
    Phase.CREATING_INSTANCES: {Phase.CONFIGURING_ACCESS},
    Phase.CONFIGURING_ACCESS: {Phase.VERIFYING},
    Phase.VERIFYING: {Phase.SWAPPING_TARGET, Phase.PUBLISHING},
    Phase.SWAPPING_TARGET: {Phase.RETIRING_PREVIOUS, Phase.PUBLISHING},
    Phase.RETIRING_PREVIOUS: {Phase.PUBLISHING},
    Phase.PUBLISHING: {Phase.CLEANING_UP},
    Phase.CLEANING_UP: {Phase.SUCCEEDED},
    Phase.CLEANING_UP_AFTER_FAILURE: {Phase.FAILED},
    Phase.CANCELLING: {Phase.CANCELLED},
}
# "Any phase ──► CleaningUpAfterFailure" and "Deletion before the end ──► Cancelling": from every phase that has
# not ended, except the ways out themselves (a TerminalError in CleaningUpAfterFailure ends Failed; Cancelling keeps
# trying; a deletion during CleaningUpAfterFailure finishes that first).
_WAYS_OUT = {Phase.CLEANING_UP_AFTER_FAILURE, Phase.CANCELLING}
EDGES: frozenset[tuple[Phase, Phase]] = frozenset(
    {(a, b) for a, targets in _FORWARD.items() for b in targets}
    | {(a, way) for a in Phase if not a.is_terminal and a not in _WAYS_OUT for way in _WAYS_OUT}
)


def history_problems(history: list[dict[str, Any]], history_limit: int) -> list[str]:
    phases = [entry["phase"] for entry in history]
    problems = []
    if len(phases) < history_limit and phases[:1] != [Phase.PENDING]:
        problems.append(f"history does not start in Pending: {phases}")
    for a, b in zip(phases, phases[1:]):
        if (Phase(a), Phase(b)) not in EDGES:
            problems.append(f"{a} -> {b} is not an edge of the phase graph (history {phases})")
    return problems


def expected_event_reasons(status: dict[str, Any]) -> Counter:
    """The Event reason each transition of the history posts (driver._record): Accepted for Pending, the failure's
    reason for CleaningUpAfterFailure and Failed, the phase otherwise."""
    reasons: Counter = Counter()
    failure = (status.get("failure") or {}).get("reason")
    for entry in status.get("history") or []:
        phase = entry["phase"]
        if phase == Phase.PENDING:
            reasons["Accepted"] += 1
        elif phase in (Phase.CLEANING_UP_AFTER_FAILURE, Phase.FAILED) and failure:
            reasons[failure] += 1
        else:
            reasons[phase] += 1
    return reasons


def event_problems(status: dict[str, Any], events: list) -> tuple[list[str], int]:
    """No two Events claim the same transition: no reason more often than the history has that transition. Returns
    the problems and how many transitions have no Event (a kill between the status write and the Event's post)."""
    expected = expected_event_reasons(status)
    posted = Counter(event.reason for event in events)
    problems = [f"{count} Events claim the transition {reason!r}, the history has {expected.get(reason, 0)}"
                for reason, count in posted.items() if count > expected.get(reason, 0)]
    missing = sum(max(0, count - posted.get(reason, 0)) for reason, count in expected.items())
    return problems, missing


def effective(call: dict[str, Any]) -> bool:
    """Whether a logged call took effect: answered with success, or applied with its answer lost."""
    fault = call.get("fault") or ""
    if fault.endswith(":applied"):
        return True
    return 0 < call["status"] < 400 and fault in ("", "Slow")


def mutation_duplicates(calls: list[dict[str, Any]]) -> list[str]:
    """Mutating calls of the operator whose effect happened more than once, from the simulator's request log."""
    keys = {
        "RestoreDBClusterFromSnapshot": ("DBClusterIdentifier",),
        "RestoreDBClusterToPointInTime": ("DBClusterIdentifier",),
        "CreateDBInstance": ("DBInstanceIdentifier",),
        "CopyDBClusterSnapshot": ("TargetDBClusterSnapshotIdentifier",),
        "DeleteDBCluster": ("DBClusterIdentifier",),
        "DeleteDBInstance": ("DBInstanceIdentifier",),
        "DeleteDBClusterSnapshot": ("DBClusterSnapshotIdentifier",),
    }
    counted: Counter = Counter()
    for call in calls:
        if "aurora-restore-operator" not in call.get("user_agent", "") or not effective(call):
            continue
        parameters = call.get("parameters") or {}
        if call["action"] in keys:
            key = (call["action"], call["region"], call["account"],
                   *(parameters.get(name) for name in keys[call["action"]]))
            counted[key] += 1
        elif call["action"] == "ModifyDBCluster" and parameters.get("NewDBClusterIdentifier"):
            counted[("rename", call["region"], call["account"], parameters.get("DBClusterIdentifier"),
                     parameters["NewDBClusterIdentifier"])] += 1
    return [f"{' '.join(str(part) for part in key)}: took effect {count} times"
            for key, count in sorted(counted.items(), key=str) if count > 1]


def tagged_with_uid(rds, uid: str) -> dict[str, list[str]]:
    """Every cluster, instance and manual snapshot of one account and region carrying the UID tag (objects being
    deleted count as gone)."""
    found: dict[str, list[str]] = {"clusters": [], "instances": [], "snapshots": []}
    for cluster in rds.describe_db_clusters()["DBClusters"]:
        if cluster["Status"] != "deleting" and _tags(rds, cluster["DBClusterArn"]).get(UID_TAG) == uid:
            found["clusters"].append(cluster["DBClusterIdentifier"])
    for instance in rds.describe_db_instances()["DBInstances"]:
        if instance["DBInstanceStatus"] != "deleting" and _tags(rds, instance["DBInstanceArn"]).get(UID_TAG) == uid:
            found["instances"].append(instance["DBInstanceIdentifier"])
    for snapshot in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]:
        if snapshot["Status"] != "deleting" and _tags(rds, snapshot["DBClusterSnapshotArn"]).get(UID_TAG) == uid:
            found["snapshots"].append(snapshot["DBClusterSnapshotIdentifier"])
    return found


def _tags(rds, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}


def restore_accounts(rds, identifier: str) -> list[str]:
    """Who the snapshot's `restore` attribute shares it with."""
    attributes = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=identifier)
    for attribute in attributes["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]:
        if attribute["AttributeName"] == "restore":
            return sorted(attribute.get("AttributeValues", []))
    return []
