"""The notification payload (docs/notifications.md documents it field by field), its SNS subject and Slack body.

The payload is versioned by `version`: fields are only ever added within one version; renaming, removing or
changing the meaning of a field makes a new version. It never carries a secret: no password, no webhook URL, no
Secret data.
"""

from datetime import datetime
from typing import Any

from ..api.models import AuroraRestoreSpec, AuroraRestoreStatus
from ..api.phase import Phase
from ..steps.context import restored_identifier

PAYLOAD_VERSION = "aurora-restore.dbrestore.io/v1"
SUBJECT_LIMIT = 99  # SNS: "less than 100 characters", no line breaks or control characters


def notification_id(uid: str, phase: Phase | str) -> str:
    """Stable per restore and phase: what receivers de-duplicate on (delivery is at-least-once)."""
    return f"{uid}/{phase}"


def build_payload(
    name: str, namespace: str, uid: str, spec: AuroraRestoreSpec, status: AuroraRestoreStatus, phase: Phase,
    now: datetime, endpoint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload reporting `phase` of the restore, from its spec and status as they are now. `endpoint`:
    the cluster as Publishing last described it (writer, reader, port), else status.cluster's. The target is the
    cluster actually restored: for a drill its own cluster, with `drill` naming the target it stands in for."""
    snapshot = status.snapshot
    cluster = status.cluster
    if endpoint is None and cluster is not None and cluster.endpoint:
        endpoint = {"writer": cluster.endpoint, "reader": cluster.reader_endpoint, "port": cluster.port}
    started = status.started_at
    drill = status.drill
    failure = status.failure
    output = status.output_snapshot if phase == Phase.SUCCEEDED else None  # the product, once there is one
    return {
        "version": PAYLOAD_VERSION,
        "id": notification_id(uid, phase),
        "time": now.isoformat().replace("+00:00", "Z"),
        "restore": {"name": name, "namespace": namespace, "uid": uid},
        "phase": str(phase),
        "dryRun": spec.dry_run,
        "source": {
            "region": spec.source.region,
            "snapshotIdentifier": snapshot.identifier if snapshot else spec.source.snapshot_identifier,
            "snapshotArn": snapshot.arn if snapshot else None,
        },
        "target": {"region": spec.target_region, "clusterIdentifier": restored_identifier(spec, uid)},
        "endpoint": endpoint,
        "durationSeconds": (now - started).total_seconds() if started else None,
        "drill": None if spec.drill is None else {
            "clusterIdentifier": restored_identifier(spec, uid),
            "targetClusterIdentifier": spec.target.cluster_identifier,
            "rtoSeconds": drill.rto_seconds if drill else None, "rpoSeconds": drill.rpo_seconds if drill else None,
            "rtoObjectiveSeconds": drill.rto_objective_seconds if drill else None,
            "rpoObjectiveSeconds": drill.rpo_objective_seconds if drill else None,
            "objectiveMet": drill.objective_met if drill else None,
        },
        "outputSnapshot": None if output is None else {
            "identifier": output.identifier, "arn": output.arn, "sharedWith": list(output.shared_with)},
        "failure": None if failure is None or phase not in (Phase.FAILED, Phase.CLEANING_UP_AFTER_FAILURE) else {
            "phase": str(failure.phase), "reason": failure.reason, "message": failure.message},
    }


def subject(payload: dict[str, Any]) -> str:
    """One ASCII line under 100 characters: `AuroraRestore ns/name Succeeded`, shortened when too long."""
    restore = payload["restore"]
    text = f"AuroraRestore {restore['namespace']}/{restore['name']} {payload['phase']}"
    text = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)
    if len(text) > SUBJECT_LIMIT:
        tail = f" {payload['phase']}"
        text = text[: SUBJECT_LIMIT - len(tail) - 3] + "..." + tail
    return text


def summary(payload: dict[str, Any]) -> str:
    """One sentence for people (Slack's text)."""
    restore, target = payload["restore"], payload["target"]
    drill = payload.get("drill")
    where = (f"drill cluster {target['clusterIdentifier']} of target {drill['targetClusterIdentifier']}" if drill
             else f"target {target['clusterIdentifier']}")
    text = f"AuroraRestore {restore['namespace']}/{restore['name']} is {payload['phase']} ({where} in {target['region']})"
    if payload.get("failure"):
        text += f": {payload['failure']['reason']}: {payload['failure']['message']}"
    return text


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (the fallback and notification line) and Block Kit blocks."""
    fields = [f"*Phase*\n{payload['phase']}", f"*Target*\n{payload['target']['clusterIdentifier']}"]
    source = payload["source"]
    if source.get("snapshotIdentifier"):
        fields.append(f"*Snapshot*\n{source['snapshotIdentifier']}")
    if payload.get("endpoint"):
        fields.append(f"*Endpoint*\n{payload['endpoint']['writer']}:{payload['endpoint']['port']}")
    if payload.get("durationSeconds") is not None:
        fields.append(f"*Duration*\n{round(payload['durationSeconds'])} s")
    drill = payload.get("drill")
    if drill and drill.get("objectiveMet") is not None:
        fields.append(f"*Objectives met*\n{'yes' if drill['objectiveMet'] else 'no'}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(summary(payload))}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _slack_escape(f)} for f in fields[:10]]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(f"id {payload['id']}")}]},
    ]
    return {"text": _slack_escape(summary(payload))[:3000], "blocks": blocks}


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as Slack asks (&, <, >), so a value cannot mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")[:3000]
