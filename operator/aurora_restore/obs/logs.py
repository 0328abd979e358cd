"""The operator's JSON log lines: one object per line, the restore each line is about as its correlation id.

kopf's own JSON formatter gives `message`, `timestamp`, `severity` and, for lines of a handler's logger, the
object reference (`object`). This formatter writes a fixed set of fields instead, the same for every line:

    timestamp  ISO 8601, UTC          level      debug, info, warning, error, critical
    logger     the Python logger      message    the line (with the traceback, if any)
    namespace, name, uid              the AuroraRestore (uid: the correlation id across lines, CloudTrail's
                                      dbrestore.io/restore-uid tag and status.audit)
    phase      the phase whose turn logged the line
    audit      audit lines only (obs/audit.py): action, resource, result, uid, region, invocationId, attempts

The restore comes from obs.audit.CURRENT_TURN (lines logged during a turn) or else from kopf's object reference
(the daemon's own lines between turns); lines about no restore have neither.
"""

import json
import logging
from datetime import datetime, timezone

from .audit import current_turn


class JsonFormatter(logging.Formatter):
    """One JSON object per record; see the module docstring for the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(restore_fields(record))
        audit = getattr(record, "audit", None)
        if audit is not None:
            line["audit"] = audit
        if record.exc_info:
            line["message"] = f"{line['message']}\n{self.formatException(record.exc_info)}"
        return json.dumps(line, default=str)


def restore_fields(record: logging.LogRecord) -> dict[str, object]:
    """namespace, name, uid and phase of the restore a line is about (only those known)."""
    turn = current_turn()
    if turn is not None:
        fields = {"namespace": turn.namespace, "name": turn.name, "uid": turn.uid, "phase": turn.phase}
    else:
        ref = getattr(record, "k8s_ref", None) or {}
        fields = {key: ref.get(key) for key in ("namespace", "name", "uid")}
    return {key: value for key, value in fields.items() if value}


def use_json_lines() -> None:
    """Put the JSON formatter on the handler kopf.configure installed on the root logger (the one whose formatter
    is kopf's; kopf has no public name for that class), leaving any other handler alone."""
    for handler in logging.getLogger().handlers:
        if type(handler.formatter).__module__.startswith("kopf."):
            handler.setFormatter(JsonFormatter())


# Libraries whose debug lines carry what the operator must never log: botocore the parameters of every call
# (ModifyDBCluster's MasterUserPassword) and every answer (GetSecretValue's SecretString, AssumeRole's keys) and
# the signed headers (the session token), the kubernetes client the bodies of the Secrets it read.
WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "kubernetes")


def quiet_wire_loggers() -> None:
    """Keep the WIRE_LOGGERS at INFO or above whatever --verbose or --debug set on the root logger: those flags
    are for the operator's and kopf's own lines, not for request bodies."""
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:  # NOTSET (0) too: it would inherit the root's DEBUG
            logger.setLevel(logging.INFO)
