"""Passwords reach the databases only as hashes computed here: PostgreSQL SCRAM-SHA-256 verifiers (by libpq) and
MySQL mysql_native_password hashes. The math is checked by deriving the verifier again (RFC 5802/7677)."""

import base64
import hashlib
import hmac
import unicodedata
from types import SimpleNamespace

import pytest
from psycopg import pq

from aurora_restore.db import mysql, postgres


def unconnected():
    """A libpq connection object that never reached a server: PQencryptPasswordConn needs none for an explicit
    algorithm."""
    return SimpleNamespace(pgconn=pq.PGconn.connect_start(b"host=/nonexistent-directory port=1"))


def derive(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """StoredKey and ServerKey as PostgreSQL derives them (RFC 5802: SaltedPassword = Hi(password, salt, i))."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def parse(verifier: str) -> tuple[int, bytes, bytes, bytes]:
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    parameters, keys = rest.split("$")
    iterations, salt = parameters.split(":")
    stored_key, server_key = keys.split(":")
    return int(iterations), base64.b64decode(salt), base64.b64decode(stored_key), base64.b64decode(server_key)


@pytest.mark.parametrize("password", ["app-Rw-secret-3", "with 'quotes' and \\ backslash", "pässwörd-ünïcode"])
def test_a_scram_verifier_is_what_postgresql_derives_from_the_password(password):
    verifier = postgres.scram_verifier(unconnected(), "app_rw", password)
    iterations, salt, stored_key, server_key = parse(verifier)
    assert iterations == 4096 and len(salt) == 16
    assert (stored_key, server_key) == derive(password, salt, iterations)
    assert password not in verifier


def test_scram_verifiers_are_salted_afresh_every_time():
    first, second = (postgres.scram_verifier(unconnected(), "app", "same-password") for _ in range(2))
    assert parse(first)[1] != parse(second)[1]


def test_a_non_ascii_password_is_saslprepped_as_the_server_does():
    """libpq applies SASLprep (NFKC, mapping to nothing): the ligature "ﬁ" becomes "fi", as the server would
    derive it from what a client sends at login."""
    password = "ﬁne-Pa55word\u00ad"  # LATIN SMALL LIGATURE FI, then SOFT HYPHEN (mapped to nothing)
    iterations, salt, stored_key, server_key = parse(postgres.scram_verifier(unconnected(), "app", password))
    prepared = unicodedata.normalize("NFKC", password.replace("\u00ad", ""))
    assert prepared == "fine-Pa55word"
    assert (stored_key, server_key) == derive(prepared, salt, iterations)


def test_the_mysql_native_password_hash_is_what_password_gave():
    # SELECT PASSWORD('password') on MySQL 5.7 and MariaDB.
    assert mysql.native_password_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
    hashed = mysql.native_password_hash("pässwörd")
    assert hashed == "*" + hashlib.sha1(hashlib.sha1("pässwörd".encode()).digest()).hexdigest().upper()


class RecordingCursor:
    def __init__(self, statements, rows=()):
        self.statements, self.rows = statements, list(rows)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def execute(self, statement, params=()):
        self.statements.append((statement, params))

    def fetchone(self):
        return self.rows.pop(0) if self.rows else None


def test_mysql_users_are_sent_the_hash_never_the_password():
    statements = []
    conn = SimpleNamespace(cursor=lambda: RecordingCursor(statements))
    mysql.upsert_user(conn, "app_rw", "app-Rw-secret-3")
    assert [params for _, params in statements] == [("app_rw", mysql.native_password_hash("app-Rw-secret-3"))] * 2
    assert all("IDENTIFIED WITH mysql_native_password AS %s" in statement for statement, _ in statements)
    assert "app-Rw-secret-3" not in repr(statements)


def test_postgresql_roles_are_sent_the_verifier_never_the_password():
    statements = []
    conn = unconnected()
    conn.cursor = lambda: RecordingCursor(statements)
    postgres.upsert_user(conn, "app_rw", "app-Rw-secret-3")
    create = statements[1][0]
    text = create.as_string(None) if hasattr(create, "as_string") else str(create)
    assert text.startswith('CREATE ROLE "app_rw" WITH LOGIN PASSWORD \'SCRAM-SHA-256$4096:')
    assert "app-Rw-secret-3" not in text
