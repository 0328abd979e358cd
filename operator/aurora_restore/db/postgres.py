"""PostgreSQL (aurora-postgresql): users, grants with default privileges, read-only verification queries."""

from contextlib import closing

import psycopg
from psycopg import sql

from ..errors import TerminalError
from .connection import AuthenticationFailed, Credentials, Endpoint, redact, unreachable

DEFAULT_DATABASE = "postgres"
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
# PostgreSQL silently truncates longer identifiers (NAMEDATALEN - 1 bytes), so a longer role name is refused first.
NAME_LIMIT_BYTES = 63
# SQLSTATE classes of errors that the same statement gives every time: retrying cannot help. 22 data exception,
# 42 syntax error or access rule violation (42622 name too long, 42939 reserved name, 42501 insufficient
# privilege), 0L invalid grantor, 0P invalid role specification, 2B dependent objects still exist (a role that
# cannot be dropped while it holds privileges or owns objects).
DETERMINISTIC_SQLSTATE_CLASSES = frozenset({"22", "42", "0L", "0P", "2B"})

TABLE_PRIVILEGES = {"readOnly": "SELECT", "readWrite": "SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES"}
SEQUENCE_PRIVILEGES = {"readOnly": "SELECT", "readWrite": "USAGE, SELECT, UPDATE"}
# Passwords are sent as verifiers of this algorithm (what password_encryption means in the server).
SCRAM_ALGORITHM = b"scram-sha-256"


def connect(endpoint: Endpoint, credentials: Credentials, database: str | None = None) -> psycopg.Connection:
    """A TLS connection (verify-full against the CA when one is configured, else encrypted only)."""
    params = {
        "host": endpoint.host,
        "port": endpoint.port,
        "dbname": database or endpoint.database or DEFAULT_DATABASE,
        "user": credentials.username,
        "password": credentials.password,
        "connect_timeout": endpoint.timeouts.connect,
        # Server side: no statement runs longer; client side: a peer that stops answering is given up on.
        "options": f"-c statement_timeout={endpoint.timeouts.statement * 1000}",
        "tcp_user_timeout": (endpoint.timeouts.statement + endpoint.timeouts.connect) * 1000,
        "sslmode": "verify-full" if endpoint.tls.verify else "require",
        "application_name": "aurora-restore-operator",
    }
    if endpoint.tls.ca_file:
        params["sslrootcert"] = endpoint.tls.ca_file
    try:
        return psycopg.connect(**params, autocommit=True)
    except psycopg.OperationalError as error:
        text = str(error)
        if "password authentication failed" in text or "authentication failed" in text:
            raise AuthenticationFailed(
                "DatabaseAuthenticationFailed",
                f"{endpoint.describe()} refused the password of user {credentials.username!r}",
            ) from None
        if "does not exist" in text and "database" in text:
            raise TerminalError("DatabaseNotFound", redact(text.strip(), credentials.password)) from None
        raise unreachable(endpoint, error, credentials) from None


def upsert_user(conn: psycopg.Connection, name: str, password: str) -> None:
    """CREATE ROLE or ALTER ROLE ... LOGIN PASSWORD: re-running sets the (possibly changed) password again.

    The server is sent the password's SCRAM-SHA-256 verifier, never the password: a statement that fails, or
    one logged by log_statement, shows no password in the server's log (nor in CloudWatch Logs)."""
    verifier = scram_verifier(conn, name, password)
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        verb = "ALTER" if cursor.fetchone() else "CREATE"
        # Utility statements take no bind parameters: the verifier is quoted by the driver (sql.Literal).
        cursor.execute(
            sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(verifier))
        )


def scram_verifier(conn: psycopg.Connection, name: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of `password`, computed here by libpq (PQencryptPasswordConn, what psql's
    \\password uses): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` with a random salt and
    SASLprep applied to the password as the server does. The server stores it as it is."""
    encrypted = conn.pgconn.encrypt_password(password.encode(), name.encode(), SCRAM_ALGORITHM)
    return encrypted.decode("ascii")


def grant(conn: psycopg.Connection, name: str, access: str, database: str, owner: str | None) -> None:
    """Privileges on every user schema of the connected database, including tables `owner` creates later
    (owner None: the present ones only, for a user that lives no longer than one step)."""
    role = sql.Identifier(name)
    tables = sql.SQL(TABLE_PRIVILEGES[access])
    sequences = sql.SQL(SEQUENCE_PRIVILEGES[access])
    with conn.cursor() as cursor:
        cursor.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role))
        for schema_name in user_schemas(cursor):
            schema = sql.Identifier(schema_name)
            usage = "USAGE, CREATE" if access == "readWrite" else "USAGE"
            cursor.execute(sql.SQL("GRANT " + usage + " ON SCHEMA {} TO {}").format(schema, role))
            if access == "readOnly":
                cursor.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema, role))
            cursor.execute(sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(tables, schema, role))
            cursor.execute(sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sequences, schema, role))
            if owner is None:
                continue
            cursor.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}").format(
                    sql.Identifier(owner), schema, tables, role
                )
            )
            cursor.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON SEQUENCES TO {}").format(
                    sql.Identifier(owner), schema, sequences, role
                )
            )


def user_schemas(cursor: psycopg.Cursor) -> list[str]:
    """The schemas of the connected database that are not PostgreSQL's own."""
    cursor.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname <> ALL(%s) AND nspname NOT LIKE 'pg\\_%%'",
        (list(SYSTEM_SCHEMAS),),
    )
    return [schema_name for (schema_name,) in cursor.fetchall()]


def create_verifier(conn: psycopg.Connection, name: str, password: str, database: str) -> None:
    """A fresh role for one verification attempt, made by the master user (CREATEROLE, not a superuser).

    A role of that name left by an earlier attempt is dropped first (drop_verifier), so the queries never run
    with privileges someone added to it since. Then LOGIN with `password` (sent as its SCRAM verifier), CONNECT
    on `database`, USAGE on its user schemas and SELECT on their present tables and sequences: what a readOnly
    user gets, without default privileges, which would outlive the role. On PostgreSQL 16 and later the creator
    holds ADMIN on the role it created, which ALTER and DROP ROLE need."""
    drop_verifier(conn, name, database)
    upsert_user(conn, name, password)
    grant(conn, name, "readOnly", database, owner=None)


def drop_verifier(conn: psycopg.Connection, name: str, database: str) -> None:
    """Revoke what create_verifier granted in the connected database `database`, then DROP ROLE IF EXISTS.

    Any statement may be the last before a kill: each is harmless to repeat, and the next attempt starts here.
    The explicit REVOKEs are needed because a role that holds privileges cannot be dropped (2BP01); DROP OWNED
    BY would need the master to be a member of the role."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        if cursor.fetchone() is None:
            return
        role = sql.Identifier(name)
        for schema_name in user_schemas(cursor):
            schema = sql.Identifier(schema_name)
            cursor.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, role))
            cursor.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema, role))
            cursor.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, role))
        cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(database), role))
        cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def count_rows_read_only(
    conn: psycopg.Connection, query: str, *, timeout: int | None = None, max_rows: int | None = None
) -> int:
    """Run a user's verification query in a read-only transaction, always rolled back, and count its rows.

    One statement only, enforced by the server: cursor.stream() sends the query with the extended protocol, which
    refuses several commands ("cannot insert multiple commands into a prepared statement"), so no `; COMMIT; ...`
    can leave the read-only transaction. Rows come one at a time; after `max_rows` the query is cancelled.
    `timeout` (seconds) is the transaction's statement_timeout.
    """
    with conn.transaction(force_rollback=True), conn.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        if timeout is not None:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout * 1000)}ms",))
        rows = 0
        with closing(cursor.stream(query)) as stream:
            for _ in stream:
                rows += 1
                if max_rows is not None and rows >= max_rows:
                    break
        return rows


QUERY_ERRORS = (psycopg.Error,)
READ_ONLY_VIOLATION = "25006"  # read_only_sql_transaction
QUERY_CANCELED = "57014"  # statement_timeout (or a cancel)
INSUFFICIENT_PRIVILEGE = "42501"


def verification_problem(error: Exception) -> str | None:
    """"refused" (several statements, or a write in the read-only transaction), "privilege" (the verification
    user may not: e.g. LOCK TABLE, which a read-only transaction allows), "timeout", or None (another error) for an
    error of count_rows_read_only."""
    sqlstate = getattr(error, "sqlstate", None) or ""
    if sqlstate == READ_ONLY_VIOLATION or (sqlstate == "42601" and "multiple commands" in str(error)):
        return "refused"
    if sqlstate == INSUFFICIENT_PRIVILEGE:
        return "privilege"
    if sqlstate == QUERY_CANCELED:
        return "timeout"
    return None


def is_deterministic(error: Exception) -> bool:
    """Whether the server would refuse the same statement again (bad name, syntax, privileges): no retry helps."""
    sqlstate = getattr(error, "sqlstate", None) or ""
    return sqlstate[:2] in DETERMINISTIC_SQLSTATE_CLASSES


def user_name_problem(name: str) -> str | None:
    """Why PostgreSQL cannot have a role of this name exactly (None: it can)."""
    size = len(name.encode())
    if size > NAME_LIMIT_BYTES:
        return (f"PostgreSQL role names are at most {NAME_LIMIT_BYTES} bytes (longer ones are cut short); "
                f"{name!r} has {size}")
    return None
