"""MySQL (aurora-mysql): users, grants, read-only verification queries; values always as query parameters."""

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
    """CREATE USER IF NOT EXISTS, then ALTER USER so a changed password is applied on every run."""
    with conn.cursor() as cursor:
        cursor.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (name, password))
        cursor.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (name, password))


def grant(conn: pymysql.Connection, name: str, access: str, database: str, owner: str) -> None:
    """Exactly `access` on `database`.* (MySQL grants on db.* cover tables created later too)."""
    quoted_database = "`" + database.replace("`", "``") + "`"
    with conn.cursor() as cursor:
        try:  # start from nothing, so a user moved from readWrite to readOnly loses its write privileges
            cursor.execute("REVOKE ALL PRIVILEGES ON " + quoted_database + ".* FROM %s@'%%'", (name,))
        except pymysql.MySQLError as error:
            if error.args[0] != NO_SUCH_GRANT:
                raise
        cursor.execute("GRANT " + PRIVILEGES[access] + " ON " + quoted_database + ".* TO %s@'%%'", (name,))


def count_rows_read_only(conn: pymysql.Connection, query: str) -> int:
    with conn.cursor() as cursor:
        cursor.execute("START TRANSACTION READ ONLY")
        try:
            cursor.execute(query)
            return len(cursor.fetchall()) if cursor.description else 0
        finally:
            cursor.execute("ROLLBACK")


QUERY_ERRORS = (pymysql.Error,)


def is_deterministic(error: Exception) -> bool:
    """Whether the server would refuse the same statement again (bad name, syntax, privileges): no retry helps."""
    return bool(error.args) and error.args[0] in DETERMINISTIC_ERRORS


def user_name_problem(name: str) -> str | None:
    """Why MySQL cannot have a user of this name (None: it can)."""
    if len(name) > USER_NAME_LIMIT:
        return f"MySQL user names are at most {USER_NAME_LIMIT} characters; {name!r} has {len(name)}"
    return None
