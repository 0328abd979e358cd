"""How the operator reaches a database, without one: URIs, redaction, and connections the kernel refuses."""

import socket
import ssl
from urllib.parse import unquote, urlsplit

import psycopg
import pymysql
import pytest
from psycopg.conninfo import conninfo_to_dict

from aurora_restore.db import mysql, postgres
from aurora_restore.db.connection import Credentials, Endpoint, Tls, redact, unreachable
from aurora_restore.db.engines import connection_uri, sql_module
from aurora_restore.errors import RestoreError, RetryableError, TerminalError
from aurora_restore_devenv.simulator.databases.tls import ensure_certificates

PASSWORD = "Xq7 m@ster:p/w%?#&é"
LOOPBACK = "127.0.0.1"
MODULES = {"aurora-postgresql": postgres, "aurora-mysql": mysql}


@pytest.fixture
def closed_port():
    """A loopback port bound but never listened on: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


# --- connection_uri -----------------------------------------------------------------------------------------------


def test_connection_uri_of_plain_values():
    assert (
        connection_uri("aurora-postgresql", "db.example", 5432, "orders", "app", "secret")
        == "postgresql://app:secret@db.example:5432/orders?sslmode=require"
    )
    assert connection_uri("aurora-mysql", "db.example", 3306, "orders", "app", "secret") == (
        "mysql://app:secret@db.example:3306/orders?ssl=true"
    )


@pytest.mark.parametrize("database", [None, ""])
def test_connection_uri_without_a_database_has_no_path(database):
    assert connection_uri("aurora-mysql", "db.example", 3306, database, "app", "secret") == (
        "mysql://app:secret@db.example:3306?ssl=true"
    )


@pytest.mark.parametrize(
    "engine, scheme, query",
    [("aurora-postgresql", "postgresql", "sslmode=require"), ("aurora-mysql", "mysql", "ssl=true")],
)
def test_connection_uri_percent_encodes_user_password_and_database(engine, scheme, query):
    user, database = "app:ro@team/1", "orders/2025?#% x"
    uri = connection_uri(engine, "db.example", 5432, database, user, PASSWORD)
    assert PASSWORD not in uri and user not in uri and database not in uri
    parts = urlsplit(uri)
    assert (parts.scheme, parts.hostname, parts.port, parts.query) == (scheme, "db.example", 5432, query)
    assert unquote(parts.username) == user
    assert unquote(parts.password) == PASSWORD
    assert unquote(parts.path) == "/" + database
    assert "%40" in uri and "%2F" in uri and "%3A" in uri and "%25" in uri  # @ / : % encoded, not left raw


def test_libpq_reads_back_exactly_what_the_postgresql_uri_encodes():
    uri = connection_uri("aurora-postgresql", "db.example", 5432, "orders/2025?#% x", "app:ro@team/1", PASSWORD)
    params = conninfo_to_dict(uri)
    assert params["user"] == "app:ro@team/1"
    assert params["password"] == PASSWORD
    assert params["dbname"] == "orders/2025?#% x"
    assert (params["host"], params["port"], params["sslmode"]) == ("db.example", "5432", "require")


# --- redact -------------------------------------------------------------------------------------------------------


def test_redact_replaces_every_occurrence_of_every_secret():
    message = f"user 'app' password '{PASSWORD}' (again: {PASSWORD}); other: hunter2"
    redacted = redact(message, PASSWORD, "hunter2")
    assert PASSWORD not in redacted and "hunter2" not in redacted
    assert redacted == "user 'app' password '********' (again: ********); other: ********"


@pytest.mark.parametrize("secrets", [(), ("",), (None,), ("absent",)])
def test_redact_leaves_a_message_alone_when_nothing_is_to_hide(secrets):
    assert redact("connection refused", *secrets) == "connection refused"


def test_redact_hides_a_secret_that_contains_another_one_entirely():
    user_password, master_password = "hunter2", "hunter2-Master-Tail"
    redacted = redact(f"failed: {master_password}", user_password, master_password)
    assert "Master-Tail" not in redacted


def test_credentials_never_show_the_password():
    credentials = Credentials("postgres", PASSWORD)
    assert PASSWORD not in repr(credentials) and PASSWORD not in str(credentials)


# --- engines ------------------------------------------------------------------------------------------------------


def test_unsupported_engine_is_terminal():
    with pytest.raises(TerminalError) as raised:
        sql_module("aurora")
    assert raised.value.reason == "UnsupportedEngine" and "'aurora'" in raised.value.message


@pytest.mark.parametrize("engine", MODULES)
def test_each_aurora_engine_has_its_module(engine):
    assert sql_module(engine) is MODULES[engine]


# --- a refused connection -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("database", [None, "orders"])
@pytest.mark.parametrize("engine", MODULES)
def test_refused_connection_is_retryable_names_host_and_port_and_hides_the_password(closed_port, engine, database):
    endpoint = Endpoint(engine=engine, host=LOOPBACK, port=closed_port, database="postgres")
    with pytest.raises(RetryableError) as raised:
        MODULES[engine].connect(endpoint, Credentials("postgres", PASSWORD), database)
    error = raised.value
    assert error.reason == "DatabaseUnreachable"
    assert error.message.startswith(f"cannot connect to {LOOPBACK}:{closed_port}: ")
    assert "refused" in error.message.lower()
    assert "\n" not in error.message
    assert PASSWORD not in error.message and PASSWORD not in str(error)
    assert error.__cause__ is None and error.__suppress_context__, "the driver's error (and its parameters) is dropped"


@pytest.mark.parametrize(
    "engine",
    [
        "aurora-postgresql",
        "aurora-mysql",
    ],
)
def test_an_unreadable_ca_bundle_is_an_operator_error_not_a_crash(closed_port, tmp_path, engine):
    endpoint = Endpoint(engine, LOOPBACK, closed_port, "postgres", Tls(ca_file=str(tmp_path / "absent.pem")))
    with pytest.raises(RestoreError):
        MODULES[engine].connect(endpoint, Credentials("postgres", PASSWORD))


# --- TLS: verified with a CA bundle, encrypted only without one ----------------------------------------------------


@pytest.fixture
def ca_file(tmp_path) -> str:
    return str(ensure_certificates(tmp_path / "ca").ca_certificate)


@pytest.fixture
def driver_parameters(monkeypatch):
    """What each module hands its driver: psycopg's connect parameters, and a real PyMySQL connection object
    built from its parameters without connecting (its SSL context is the one a connection would use)."""
    seen = {}
    monkeypatch.setattr(psycopg, "connect", lambda **params: seen.setdefault("postgres", params))
    monkeypatch.setattr(pymysql, "connect", lambda **params: seen.setdefault(
        "mysql", pymysql.connections.Connection(**params, defer_connect=True)))
    return seen


def test_with_a_ca_bundle_postgres_verifies_the_chain_and_the_host_name(driver_parameters, ca_file):
    postgres.connect(Endpoint("aurora-postgresql", "db.example", 5432, "postgres", Tls(ca_file)),
                     Credentials("master", PASSWORD))
    params = driver_parameters["postgres"]
    assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", ca_file)


def test_without_a_ca_bundle_postgres_is_encrypted_but_unverified(driver_parameters):
    postgres.connect(Endpoint("aurora-postgresql", "db.example", 5432, "postgres", Tls()),
                     Credentials("master", PASSWORD))
    params = driver_parameters["postgres"]
    assert params["sslmode"] == "require" and "sslrootcert" not in params


def test_with_a_ca_bundle_mysql_requires_tls_a_certificate_of_that_ca_and_the_host_name(driver_parameters, ca_file):
    mysql.connect(Endpoint("aurora-mysql", "db.example", 3306, None, Tls(ca_file)), Credentials("master", PASSWORD))
    connection = driver_parameters["mysql"]
    assert connection._ssl_required, "no fallback to a plain connection"
    assert connection.ctx.verify_mode == ssl.CERT_REQUIRED and connection.ctx.check_hostname
    [trusted] = connection.ctx.get_ca_certs()
    assert dict(entry[0] for entry in trusted["subject"])["commonName"] == "aurora-restore simulator CA"


def test_without_a_ca_bundle_mysql_is_encrypted_but_unverified(driver_parameters):
    mysql.connect(Endpoint("aurora-mysql", "db.example", 3306, None, Tls()), Credentials("master", PASSWORD))
    connection = driver_parameters["mysql"]
    assert connection._ssl_required, "no fallback to a plain connection"
    assert connection.ctx.verify_mode == ssl.CERT_NONE and not connection.ctx.check_hostname


# What the drivers raised when a simulated server's certificate chained to another CA (tests/e2e/test_database_tls.py
# meets them for real), and libpq's words for a certificate of another host.
CERTIFICATE_ERRORS = {
    "postgresql": psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: SSL error: certificate verify '
        "failed"),
    "postgresql-host": psycopg.OperationalError(
        'connection to server at "10.0.0.7", port 5432 failed: server certificate for "other.example" does not '
        'match host name "db.example"'),
    "mysql": pymysql.err.OperationalError(
        2003, "Can't connect to MySQL server on 'db.example' ([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        f"failed: self-signed certificate in certificate chain (_ssl.c:1006)) {PASSWORD}"),
}


@pytest.mark.parametrize("error", CERTIFICATE_ERRORS.values(), ids=CERTIFICATE_ERRORS.keys())
def test_a_certificate_that_does_not_verify_is_told_apart_naming_the_bundle(ca_file, error):
    endpoint = Endpoint("aurora-postgresql", "db.example", 5432, "postgres", Tls(ca_file))
    unverified = unreachable(endpoint, error, Credentials("master", PASSWORD))
    assert isinstance(unverified, RetryableError), "a fixed bundle and a restarted operator let the restore go on"
    assert unverified.reason == "DatabaseCertificateUnverified"
    assert unverified.message.startswith(
        f"the TLS certificate of db.example:5432 does not verify against the CA bundle {ca_file} "
        "(AURORA_RESTORE_DB_CA_BUNDLE): ")
    assert PASSWORD not in unverified.message


def test_other_connection_failures_stay_unreachable(ca_file):
    endpoint = Endpoint("aurora-postgresql", "db.example", 5432, "postgres", Tls(ca_file))
    error = psycopg.OperationalError('connection to server at "10.0.0.7", port 5432 failed: Connection refused')
    assert unreachable(endpoint, error, Credentials("master", PASSWORD)).reason == "DatabaseUnreachable"
