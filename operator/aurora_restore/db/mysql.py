"""MySQL (aurora-mysql): users, grants, read-only verification queries; values always as query parameters."""

import hashlib
import ssl

import pymysql

from ..errors import TerminalError
from .connection import AuthenticationFailed, Credentials, Endpoint, redact, unreachable

DEFAULT_DATABASE = None
ACCESS_DENIED = 1045
UNKNOWN_DATABASE = 1049
NO_SUCH_GRANT = 1141
USER_NAME_LIMIT = 32  # MySQL 5.7.8 and later, so every Aurora MySQL version (MariaDB allows 80)
NOT_VALID_PASSWORD = 1819
# Error codes the same statement gives every time: retrying cannot help.
DETERMINISTIC_ERRORS = frozenset(
    {
        1044,  # ER_DBACCESS_DENIED_ERROR: the master user may not do this
        1059,  # ER_TOO_LONG_IDENT
        1064,  # ER_PARSE_ERROR
        1102,  # ER_WRONG_DB_NAME
        1103,  # ER_WRONG_TABLE_NAME
        1142,  # ER_TABLEACCESS_DENIED_ERROR
        1227,  # ER_SPECIFIC_ACCESS_DENIED_ERROR
        1406,  # ER_DATA_TOO_LONG
        1470,  # ER_WRONG_STRING_LENGTH: e.g. a user name longer than 32 characters
        NOT_VALID_PASSWORD,  # ER_NOT_VALID_PASSWORD: the password policy refuses the password
    }
)

PRIVILEGES = {"readOnly": "SELECT, SHOW VIEW", "readWrite": "SELECT, INSERT, UPDATE, DELETE, SHOW VIEW"}


def connect(endpoint: Endpoint, credentials: Credentials, database: str | None = None) -> pymysql.Connection:
    """A TLS connection (certificate and host name verified when a CA is configured)."""
    tls = (
        {"ssl_ca": endpoint.tls.ca_file, "ssl_verify_cert": True, "ssl_verify_identity": True}
        if endpoint.tls.verify
        else {"ssl": {"check_hostname": False}, "ssl_verify_cert": False}
    )
    try:
        return pymysql.connect(
            host=endpoint.host,
            port=endpoint.port,
            user=credentials.username,
            password=credentials.password,
            database=database or endpoint.database or DEFAULT_DATABASE,
            connect_timeout=endpoint.timeouts.connect,
            read_timeout=endpoint.timeouts.statement,
            write_timeout=endpoint.timeouts.statement,
            autocommit=True,
            **tls,
        )
    except (OSError, ssl.SSLError) as error:  # e.g. an unreadable CA bundle: no retry will fix it
        raise TerminalError("DatabaseTlsError", f"TLS set-up for {endpoint.describe()} failed: {error}") from None
    except pymysql.err.OperationalError as error:
        code = error.args[0] if error.args else None
        if code == ACCESS_DENIED:
            raise AuthenticationFailed(
                "DatabaseAuthenticationFailed",
                f"{endpoint.describe()} refused the password of user {credentials.username!r}",
            ) from None
        if code == UNKNOWN_DATABASE:
            raise TerminalError("DatabaseNotFound", redact(str(error.args[-1]), credentials.password)) from None
        raise unreachable(endpoint, error, credentials) from None


def upsert_user(conn: pymysql.Connection, name: str, password: str) -> None:
    """CREATE USER IF NOT EXISTS, then ALTER USER so a changed password is applied on every run.

    The server is sent the password's mysql_native_password hash, never the password, in the one form that both
    MySQL 8 (Aurora MySQL 3) and MariaDB take: `IDENTIFIED WITH mysql_native_password AS '<hash>'`. A statement
    that fails, or one in the general log or the audit log, shows no password."""
    hashed = native_password_hash(password)
    with conn.cursor() as cursor:
        cursor.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED WITH mysql_native_password AS %s", (name, hashed))
        cursor.execute("ALTER USER %s@'%%' IDENTIFIED WITH mysql_native_password AS %s", (name, hashed))


def native_password_hash(password: str) -> str:
    """What MySQL's PASSWORD() gave for mysql_native_password: '*' and the upper-case hex SHA1(SHA1(password))
    of the password's UTF-8 bytes (the connection's character set, utf8mb4, which PyMySQL sends it in)."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def grant(conn: pymysql.Connection, name: str, access: str, database: str, owner: str | None) -> None:
    """Exactly `access` on `database`.* (MySQL grants on db.* cover tables created later too)."""
    quoted_database = "`" + database.replace("`", "``") + "`"
    with conn.cursor() as cursor:
        try:  # start from nothing, so a user moved from readWrite to readOnly loses its write privileges
            cursor.execute("REVOKE ALL PRIVILEGES ON " + quoted_database + ".* FROM %s@'%%'", (name,))
        except pymysql.MySQLError as error:
            if error.args[0] != NO_SUCH_GRANT:
                raise
        cursor.execute("GRANT " + PRIVILEGES[access] + " ON " + quoted_database + ".* TO %s@'%%'", (name,))


def create_verifier(conn: pymysql.Connection, name: str, password: str, database: str | None) -> None:
    """A fresh user for one verification attempt: a user of that name left by an earlier attempt is dropped first,
    so the queries never run with privileges someone added to it since. Then `password` (sent as its hash) and
    what a readOnly user gets on `database`.* (SELECT, SHOW VIEW); nothing without a database."""
    drop_verifier(conn, name, database)
    upsert_user(conn, name, password)
    if database:
        grant(conn, name, "readOnly", database, owner=None)


def drop_verifier(conn: pymysql.Connection, name: str, database: str | None) -> None:
    """DROP USER IF EXISTS, which takes the user's privileges with it: harmless to repeat after a kill."""
    with conn.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@'%%'", (name,))


def is_mariadb(conn: pymysql.Connection) -> bool:
    """MariaDB (the local environment) rather than MySQL (Aurora MySQL): their statement timeouts differ."""
    return "mariadb" in (conn.get_server_info() or "").lower()


def count_rows_read_only(
    conn: pymysql.Connection, query: str, *, timeout: int | None = None, max_rows: int | None = None
) -> int:
    """Run a user's verification query in a read-only transaction, always rolled back, and count its rows.

    One statement only, enforced by the server: the connection has no CLIENT.MULTI_STATEMENTS flag (PyMySQL's
    default), so `SELECT 1; DROP ...` is a syntax error (1064). The session too is read-only (SET SESSION
    TRANSACTION READ ONLY), so a DDL statement, which commits the transaction implicitly, is refused (1792) as
    well. Rows are read unbuffered, at most `max_rows`. `timeout` (seconds): MariaDB max_statement_time, MySQL
    max_execution_time (which limits SELECT only).
    """
    with conn.cursor(pymysql.cursors.SSCursor) as cursor:
        if timeout is not None:
            if is_mariadb(conn):
                cursor.execute("SET SESSION max_statement_time = %s", (float(timeout),))
            else:
                cursor.execute("SET SESSION max_execution_time = %s", (int(timeout * 1000),))
        cursor.execute("SET SESSION TRANSACTION READ ONLY")
        cursor.execute("START TRANSACTION READ ONLY")
        try:
            cursor.execute(query)
            if not cursor.description:
                return 0
            return len(cursor.fetchmany(max_rows)) if max_rows is not None else len(cursor.fetchall())
        finally:
            try:
                cursor.execute("ROLLBACK")
            except pymysql.Error:  # the connection is lost (e.g. read timeout): the error raised already says so
                pass


QUERY_ERRORS = (pymysql.Error,)
PARSE_ERROR = 1064  # also what several statements give without CLIENT.MULTI_STATEMENTS
READ_ONLY_TRANSACTION = 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
PRIVILEGE_ERRORS = frozenset(
    {
        ACCESS_DENIED,  # 1045 from a statement: e.g. SELECT ... INTO OUTFILE without the FILE privilege
        1044,  # ER_DBACCESS_DENIED_ERROR
        1095,  # ER_KILL_DENIED_ERROR: KILL of another user's session
        1142,  # ER_TABLEACCESS_DENIED_ERROR: e.g. LOCK TABLES ... WRITE, or a table outside the database
        1143,  # ER_COLUMNACCESS_DENIED_ERROR
        1227,  # ER_SPECIFIC_ACCESS_DENIED_ERROR: e.g. SET GLOBAL, which a read-only transaction allows
        1370,  # ER_PROCACCESS_DENIED_ERROR
    }
)
STATEMENT_TIMEOUT_ERRORS = frozenset(
    {
        1969,  # MariaDB ER_STATEMENT_TIMEOUT: max_statement_time exceeded
        3024,  # MySQL ER_QUERY_TIMEOUT: max_execution_time exceeded
        2013,  # CR_SERVER_LOST: no answer within the read timeout
    }
)


def verification_problem(error: Exception) -> str | None:
    """"refused" (several statements, a syntax error, or a write in the read-only transaction), "privilege" (the
    verification user may not), "timeout", or None (another error) for an error of count_rows_read_only."""
    code = error.args[0] if getattr(error, "args", None) else None
    if code in (PARSE_ERROR, READ_ONLY_TRANSACTION):
        return "refused"
    if code in PRIVILEGE_ERRORS:
        return "privilege"
    if code in STATEMENT_TIMEOUT_ERRORS:
        return "timeout"
    return None


def is_deterministic(error: Exception) -> bool:
    """Whether the server would refuse the same statement again (bad name, syntax, privileges): no retry helps."""
    return bool(error.args) and error.args[0] in DETERMINISTIC_ERRORS


def user_name_problem(name: str) -> str | None:
    """Why MySQL cannot have a user of this name (None: it can)."""
    if len(name) > USER_NAME_LIMIT:
        return f"MySQL user names are at most {USER_NAME_LIMIT} characters; {name!r} has {len(name)}"
    return None
