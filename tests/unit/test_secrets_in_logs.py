"""What start-up and `--verbose` log never carries a secret.

`aurora-restore run --verbose` (and `kopf run --verbose`) puts the root logger at DEBUG for the operator's and
kopf's own lines; botocore's debug lines would then carry every request's parameters (a MasterUserPassword) and
signed headers. A real botocore call, sent to a loopback port nobody listens on, must leave no secret in the log.
A refused setting's error (which kopf's start-up logs) names the variable, never the value."""

import logging
import socket

import boto3
import pytest
from botocore.config import Config

from pydantic import ValidationError

from aurora_restore.obs.logs import WIRE_LOGGERS
from aurora_restore.run import configure_logging
from aurora_restore.settings import Settings

PASSWORD = "Verbose-Pa55word-never-logged"
SESSION_TOKEN = "session-token-never-logged"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")


@pytest.fixture
def verbose_log():
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), {name: logging.getLogger(name).level for name in WIRE_LOGGERS})
    configure_logging(verbose=True, log_format="plain")
    collect = Collect()
    root.addHandler(collect)
    yield collect
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_verbose_logs_the_operators_debug_lines_but_no_request_bodies(verbose_log):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused at once
        port = sock.getsockname()[1]
        rds = boto3.session.Session(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="secret-never-logged",
                                    aws_session_token=SESSION_TOKEN, region_name="eu-west-1").client(
            "rds", endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(retries={"max_attempts": 1}, connect_timeout=1))
        with pytest.raises(Exception):
            rds.modify_db_cluster(DBClusterIdentifier="staging", MasterUserPassword=PASSWORD, ApplyImmediately=True)
    logging.getLogger("aurora_restore.driver").debug("the operator's own debug line")
    text = "\n".join(verbose_log.lines)
    assert "the operator's own debug line" in text  # verbose is on
    assert PASSWORD not in text and SESSION_TOKEN not in text and "secret-never-logged" not in text
    assert all(logging.getLogger(name).getEffectiveLevel() >= logging.INFO for name in WIRE_LOGGERS)


def test_a_refused_signing_key_is_not_echoed_by_the_settings_error(monkeypatch):
    monkeypatch.setenv("AURORA_RESTORE_NOTIFICATION_SIGNING_KEY", "short-Key-9")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "notification_signing_key" in str(refused.value)
    assert "short-Key-9" not in str(refused.value) and "short-Key-9" not in repr(refused.value)


def test_the_signing_key_and_a_webhook_path_stay_out_of_reprs():
    from aurora_restore.notify.notifier import NotificationSettings
    from aurora_restore.notify.url_guard import WebhookTarget

    assert "k3y-never-shown" not in repr(NotificationSettings(signing_key="k3y-never-shown" * 2))
    target = WebhookTarget(scheme="https", host="hooks.example", port=443, path="/in?token=t0ken-never-shown",
                           address="203.0.113.9")
    assert "t0ken-never-shown" not in repr(target) and "hooks.example" in repr(target)


def test_aurora_restore_run_names_the_refused_variable_and_not_its_value(monkeypatch, caplog, verbose_log):
    import argparse

    from aurora_restore.run import run

    monkeypatch.setenv("AURORA_RESTORE_NOTIFICATION_SIGNING_KEY", "short-Key-9")
    assert run(argparse.Namespace(verbose=False, log_format="plain", liveness=None)) == 2
    text = "\n".join(verbose_log.lines)
    assert "invalid settings, not starting: AURORA_RESTORE_NOTIFICATION_SIGNING_KEY: String should have at least" in text
    assert "short-Key-9" not in text
