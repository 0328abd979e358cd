"""The JSON log lines (--log-format json, the chart's default): fixed fields, the restore as correlation id from the
turn or from kopf's object reference, audit lines with their `audit` object; and the simulator's reading of
botocore's invocation headers, which the e2e audit test matches the operator's lines with."""

import io
import json
import logging

import kopf
import pytest

from aurora_restore.obs import audit
from aurora_restore.obs.logs import JsonFormatter, use_json_lines
from aurora_restore_devenv.simulator.calls import SdkInvocation


@pytest.fixture
def json_lines():
    """Log records formatted as the operator formats them with --log-format json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_line_logged_in_a_turn_names_the_restore_and_its_phase(json_lines):
    with audit.turn({"namespace": "team-a", "name": "orders", "uid": "uid-1"}, "RestoringCluster"):
        logging.getLogger("aurora_restore.driver").warning("RestoringCluster -> CreatingInstances: %s", "ok")
    [line] = json_lines()
    assert set(line) == {"timestamp", "level", "logger", "message", "namespace", "name", "uid", "phase"}
    assert (line["level"], line["namespace"], line["name"], line["uid"], line["phase"]) == (
        "warning", "team-a", "orders", "uid-1", "RestoringCluster")
    assert line["message"] == "RestoringCluster -> CreatingInstances: ok"
    assert line["timestamp"].endswith("+00:00")


def test_an_audit_line_carries_its_audit_object(json_lines):
    with audit.turn({"namespace": "team-a", "name": "orders", "uid": "uid-1"}, "CreatingInstances"):
        audit.record("rds", "CreateDBInstance", "eu-west-1", "arn:aws:rds:eu-west-1:1:db:orders-1", "Throttling",
                     "inv-1", 4)
    [line] = [line for line in json_lines() if line["logger"] == "aurora_restore.audit"]
    assert line["audit"] == {"action": "rds:CreateDBInstance", "resource": "arn:aws:rds:eu-west-1:1:db:orders-1",
                             "result": "Throttling", "uid": "uid-1", "region": "eu-west-1", "invocationId": "inv-1",
                             "attempts": 4}
    assert line["uid"] == "uid-1" and "invocationId=inv-1" in line["message"]


def test_a_kopf_object_logger_line_outside_a_turn_names_the_restore_from_its_reference(json_lines):
    body = {"apiVersion": "dbrestore.io/v1alpha1", "kind": "AuroraRestore",
            "metadata": {"namespace": "team-a", "name": "orders", "uid": "uid-2"}}
    logger = kopf.LocalObjectLogger(body=body, settings=kopf.OperatorSettings())
    logger.info("the AuroraRestore changed since it was read: reading it again")
    [line] = json_lines()
    assert (line["namespace"], line["name"], line["uid"]) == ("team-a", "orders", "uid-2")
    assert "phase" not in line


def test_json_lines_replace_kopfs_formatter():
    root = logging.getLogger()
    others, level = list(root.handlers), root.level
    kopf.configure(log_format=kopf.LogFormat.JSON)
    try:
        [kopfs] = [handler for handler in logging.getLogger().handlers if handler not in others]
        use_json_lines()
        assert isinstance(kopfs.formatter, JsonFormatter)
        assert not any(isinstance(handler.formatter, JsonFormatter) for handler in others)  # pytest's own
    finally:  # as before: kopf.configure changed the root logger
        root.handlers[:] = others
        root.setLevel(level)


def test_the_simulator_reads_the_invocation_id_and_attempt_botocore_sends():
    invocation = SdkInvocation.from_environ({"HTTP_AMZ_SDK_INVOCATION_ID": "3f1c-id",
                                             "HTTP_AMZ_SDK_REQUEST": "ttl=20260101T000000Z; attempt=3; max=4"})
    assert (invocation.invocation_id, invocation.attempt) == ("3f1c-id", 3)
    assert SdkInvocation.from_environ({}) == SdkInvocation(None, None)
