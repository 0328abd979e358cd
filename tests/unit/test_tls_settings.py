"""Database TLS settings: verified by default against the image's RDS CA bundle, a bundle that cannot be loaded
stops start-up naming the variable, and turning verification off is possible but warned about at start."""

import asyncio
import logging
import os

import pytest
from pydantic import ValidationError

from aurora_restore import main
from aurora_restore.settings import IMAGE_CA_BUNDLE, Settings
from aurora_restore_devenv.simulator.databases.tls import ensure_certificates

WARNING = "AURORA_RESTORE_DB_TLS_VERIFY is false"


@pytest.fixture(autouse=True)
def no_tls_environment(monkeypatch):
    """Only what each test sets: the machine running the tests may have either variable set."""
    monkeypatch.delenv("AURORA_RESTORE_DB_CA_BUNDLE", raising=False)
    monkeypatch.delenv("AURORA_RESTORE_DB_TLS_VERIFY", raising=False)


@pytest.fixture
def ca_bundle(tmp_path) -> str:
    """A real PEM CA certificate, standing in for the RDS CA bundle."""
    return str(ensure_certificates(tmp_path / "ca").ca_certificate)


def test_verification_is_on_by_default_against_the_bundle_the_image_carries():
    fields = Settings.model_fields
    assert fields["db_tls_verify"].default is True
    assert fields["db_ca_bundle"].default == IMAGE_CA_BUNDLE == "/etc/aurora-restore/rds-ca-bundle.pem"


def test_a_readable_bundle_is_used_with_verification_on(monkeypatch, ca_bundle):
    monkeypatch.setenv("AURORA_RESTORE_DB_CA_BUNDLE", ca_bundle)
    settings = Settings()
    assert (settings.db_ca_bundle, settings.db_tls_verify) == (ca_bundle, True)


@pytest.mark.parametrize("bundle, problem", [
    ("absent.pem", "No such file or directory"),
    ("not-pem.pem", "NO_CERTIFICATE_OR_CRL_FOUND"),  # e.g. an error page saved instead of the bundle
    ("", "it is empty"),  # Python would trust the system's CAs instead
])
def test_a_bundle_that_cannot_be_loaded_stops_start_up_naming_the_variable(monkeypatch, tmp_path, bundle, problem):
    (tmp_path / "not-pem.pem").write_text("<html>Access Denied</html>\n")
    path = str(tmp_path / bundle) if bundle else ""
    monkeypatch.setenv("AURORA_RESTORE_DB_CA_BUNDLE", path)
    with pytest.raises(ValidationError) as raised:
        Settings()
    message = str(raised.value)
    assert f"AURORA_RESTORE_DB_CA_BUNDLE {path!r} is not a readable PEM file of CA certificates" in message
    assert problem in message and "AURORA_RESTORE_DB_TLS_VERIFY=false" in message


@pytest.mark.skipif(os.path.exists(IMAGE_CA_BUNDLE), reason="inside the image: the bundle is there")
def test_without_the_image_bundle_and_no_setting_start_up_is_refused():
    with pytest.raises(ValidationError, match=f"AURORA_RESTORE_DB_CA_BUNDLE '{IMAGE_CA_BUNDLE}' is not a readable"):
        Settings()


@pytest.mark.parametrize("value", ["false", "0", "off"])
def test_verification_turned_off_needs_no_bundle(monkeypatch, tmp_path, value):
    monkeypatch.setenv("AURORA_RESTORE_DB_TLS_VERIFY", value)
    monkeypatch.setenv("AURORA_RESTORE_DB_CA_BUNDLE", str(tmp_path / "absent.pem"))
    assert Settings().db_tls_verify is False


def test_a_value_that_is_not_a_boolean_is_refused(monkeypatch, ca_bundle):
    monkeypatch.setenv("AURORA_RESTORE_DB_CA_BUNDLE", ca_bundle)
    monkeypatch.setenv("AURORA_RESTORE_DB_TLS_VERIFY", "sometimes")
    with pytest.raises(ValidationError, match="db_tls_verify"):
        Settings()


def start(monkeypatch, caplog) -> list[logging.LogRecord]:
    """main.configure as kopf runs it at start-up (no Kubernetes or AWS behind it); its log records."""
    import kopf

    monkeypatch.setattr(main, "load_kubernetes_config", lambda pool, timeout, replica: None)
    monkeypatch.setattr(main.Runtime, "create", classmethod(lambda cls, settings, api, leading=None, accepting=None: "runtime"))
    logger = logging.getLogger("test-tls-settings")

    async def configure():
        await main.configure(settings=kopf.OperatorSettings(), memo=kopf.Memo(), logger=logger)

    with caplog.at_level(logging.INFO, logger=logger.name):
        asyncio.run(configure())
    return [record for record in caplog.records if record.name == logger.name]


def test_turning_verification_off_logs_a_warning_at_start(monkeypatch, caplog):
    monkeypatch.setenv("AURORA_RESTORE_DB_TLS_VERIFY", "false")
    records = start(monkeypatch, caplog)
    warnings = [record.getMessage() for record in records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(WARNING)
    assert "unverified" in warnings[0] and "impersonating" in warnings[0]
    assert records[-1].getMessage() == "aurora-restore-operator started"


def test_verification_on_starts_without_a_warning(monkeypatch, caplog, ca_bundle):
    monkeypatch.setenv("AURORA_RESTORE_DB_CA_BUNDLE", ca_bundle)
    records = start(monkeypatch, caplog)
    assert [record.levelno for record in records] == [logging.INFO]
    assert records[0].getMessage() == "aurora-restore-operator started"
