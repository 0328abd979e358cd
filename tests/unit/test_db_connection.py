"""How the operator reaches a database, without one: URIs, redaction, and connections the kernel refuses."""

import socket
from urllib.parse import unquote, urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict

from aurora_restore.db import mysql, postgres
from aurora_restore.db.connection import Credentials, Endpoint, Tls, redact
from aurora_restore.db.engines import connection_uri, sql_module
from aurora_restore.errors import RestoreError, RetryableError, TerminalError

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
