"""Running a SQL hook once: its statements and a journal row in one transaction, on PostgreSQL and MySQL.

The journal is a table in the hook's database, JOURNAL_TABLE, with one row per (restore UID, hook name) that
committed. The row is inserted in the transaction of the hook's statements, so either both are committed or
neither is: a hook run again after a crash (or after a commit whose answer was lost) finds its row and is not
run twice. The row holds what status reports (command and rows of each statement, never their text). The
table is named with its schema (PostgreSQL) or database (MySQL) as they are when the hook starts, so a hook that
changes search_path or runs USE still finds it; on PostgreSQL an existing table is found in whichever schema it
is, so a hook that changed the default search_path of new sessions (ALTER DATABASE/ROLE ... SET) does not run again
after a crash either. A hook that drops or alters the table cannot commit (JournalFailed).
Once every hook has ended and status.hooks says so, RunningHooks drops the table (drop_journal): it is not left
in the cluster handed out, nor in an output snapshot of it.

Exactly once holds for transactional statements only. MySQL commits implicitly before and after DDL (CREATE,
ALTER, DROP, TRUNCATE, ...): a hook with DDL that is killed before the journal row commits runs again, so it
is at-least-once and its statements should be safe to repeat (CREATE TABLE IF NOT EXISTS). On PostgreSQL
statements that cannot run in a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, CREATE DATABASE) are
refused by the server and fail the hook.
"""

import json
import time
from dataclasses import dataclass

import psycopg
import pymysql
from psycopg import sql

JOURNAL_TABLE = "aurora_restore_hooks"


@dataclass(frozen=True)
class StatementResult:
    command: str
    rows: int | None


class JournalFailed(Exception):
    """The journal row could not be written after the hook's statements (they dropped or changed the table, say);
    the transaction was rolled back. `error` is the driver's."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class StatementFailed(Exception):
    """Statement `index` of the hook failed; the transaction was rolled back. `error` is the driver's."""

    def __init__(self, index: int, error: Exception, done: list[StatementResult]):
        super().__init__(str(error))
        self.index, self.error, self.done = index, error, done


def _journal_json(results: list[StatementResult]) -> str:
    return json.dumps([{"command": r.command, "rows": r.rows} for r in results])


def _from_json(text: str) -> list[StatementResult]:
    return [StatementResult(item.get("command") or "", item.get("rows")) for item in json.loads(text)]


# --- PostgreSQL -------------------------------------------------------------------------------------------------

def run_postgres(conn: psycopg.Connection, uid: str, hook: str, statements: list[str], commands: list[str],
                 timeout: int) -> tuple[list[StatementResult], bool]:
    """Run `statements` and insert the journal row in one transaction, all of them within `timeout` seconds: each
    statement gets what is left of it (statement_timeout, local to the transaction). Returns (results, ran): ran
    is False when the journal already had the row (results are then the recorded ones). Raises StatementFailed,
    or JournalFailed when the row cannot be written."""
    with conn.cursor() as cursor:
        schemas = _postgres_journal_schemas(cursor)
        if not schemas:
            cursor.execute("SELECT current_schema()")
            schemas = [cursor.fetchone()[0]]
        schema = schemas[0]
        journal = sql.Identifier(schema, JOURNAL_TABLE) if schema else sql.Identifier(JOURNAL_TABLE)
        cursor.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (restore_uid text NOT NULL, hook text NOT NULL, "
                               "finished_at timestamptz NOT NULL DEFAULT now(), statements text NOT NULL, "
                               "PRIMARY KEY (restore_uid, hook))").format(journal))
    with conn.transaction():
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("SELECT statements FROM {} WHERE restore_uid = %s AND hook = %s").format(journal),
                           (uid, hook))
            row = cursor.fetchone()
            if row is not None:
                return _from_json(row[0]), False
            deadline = time.monotonic() + timeout
            results: list[StatementResult] = []
            for index, statement in enumerate(statements):
                try:
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", (str(_left_ms(deadline)),))
                    cursor.execute(statement.encode())  # bytes: run as written, no placeholder is looked for
                except psycopg.Error as error:
                    raise StatementFailed(index, error, results) from None
                results.append(StatementResult(_postgres_command(cursor.statusmessage, commands[index]),
                                               cursor.rowcount if cursor.rowcount >= 0 else None))
            # A second runner of the same hook (there is none: one leader) would wait here, then fail on the key.
            try:  # the journal's write is not the hook's: it gets the whole timeout, not what is left of it
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", (str(timeout * 1000),))
                cursor.execute(sql.SQL("INSERT INTO {} (restore_uid, hook, statements) VALUES (%s, %s, %s)")
                               .format(journal), (uid, hook, _journal_json(results)))
            except psycopg.Error as error:
                raise JournalFailed(error) from None
    return results, True


def _left_ms(deadline: float) -> int:
    """Milliseconds left until `deadline`, at least 1 (0 would mean no limit)."""
    return max(1, int((deadline - time.monotonic()) * 1000))


def _postgres_command(tag: str | None, fallback: str) -> str:
    """The command tag without its counts: "INSERT 0 3" -> INSERT, "CREATE TABLE" stays."""
    if not tag:
        return fallback
    return " ".join(word for word in tag.split() if not word.isdigit())


def postgres_timed_out(error: Exception) -> bool:
    return isinstance(error, psycopg.errors.QueryCanceled)


def postgres_connection_lost(error: Exception) -> bool:
    return isinstance(error, psycopg.OperationalError) and not postgres_timed_out(error)


# --- MySQL ------------------------------------------------------------------------------------------------------

# MariaDB ER_STATEMENT_TIMEOUT, MySQL ER_QUERY_TIMEOUT, CR_SERVER_LOST (no answer within the read timeout)
MYSQL_TIMEOUTS = frozenset({1969, 3024, 2013})
MYSQL_CLIENT_ERRORS_FROM = 2000  # CR_* codes: the connection, not the statement


def run_mysql(conn: pymysql.Connection, uid: str, hook: str, statements: list[str], commands: list[str],
              timeout: int) -> tuple[list[StatementResult], bool]:
    """As run_postgres. What is left of `timeout`: MariaDB max_statement_time (every statement); MySQL
    max_execution_time, which limits SELECT only (the connection's read timeout ends the others)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT DATABASE()")
        database = cursor.fetchone()[0]
        journal = ("`" + database.replace("`", "``") + "`." if database else "") + JOURNAL_TABLE
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {journal} (restore_uid varchar(64) NOT NULL, "
                       "hook varchar(64) NOT NULL, finished_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                       "statements text NOT NULL, PRIMARY KEY (restore_uid, hook)) ENGINE=InnoDB")
        mariadb = "mariadb" in (conn.get_server_info() or "").lower()
        deadline = time.monotonic() + timeout
        cursor.execute("START TRANSACTION")
        try:
            cursor.execute(f"SELECT statements FROM {journal} WHERE restore_uid = %s AND hook = %s "
                           "FOR UPDATE", (uid, hook))
            row = cursor.fetchone()
            if row is not None:
                cursor.execute("ROLLBACK")
                return _from_json(row[0]), False
            results: list[StatementResult] = []
            for index, statement in enumerate(statements):
                try:
                    left = _left_ms(deadline)  # SET does not commit the transaction
                    if mariadb:
                        cursor.execute("SET SESSION max_statement_time = %s", (left / 1000,))
                    else:
                        cursor.execute("SET SESSION max_execution_time = %s", (left,))
                    cursor.execute(statement)  # no arguments: PyMySQL sends it as written
                    if cursor.description:
                        cursor.fetchall()
                except pymysql.Error as error:
                    raise StatementFailed(index, error, results) from None
                results.append(StatementResult(commands[index], cursor.rowcount if cursor.rowcount >= 0 else None))
            try:  # the journal's write is not the hook's: it gets the whole timeout, not what is left of it
                cursor.execute("SET SESSION max_statement_time = %s" if mariadb else
                               "SET SESSION max_execution_time = %s", (timeout if mariadb else timeout * 1000,))
                cursor.execute(f"INSERT INTO {journal} (restore_uid, hook, statements) VALUES (%s, %s, %s)",
                               (uid, hook, _journal_json(results)))
            except pymysql.Error as error:
                raise JournalFailed(error) from None
            cursor.execute("COMMIT")
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except pymysql.Error:  # the connection is lost: the server rolls back by itself
                pass
            raise
    return results, True


def mysql_timed_out(error: Exception) -> bool:
    return bool(getattr(error, "args", None)) and error.args[0] in MYSQL_TIMEOUTS


def mysql_connection_lost(error: Exception) -> bool:
    code = error.args[0] if getattr(error, "args", None) else None
    return isinstance(code, int) and code >= MYSQL_CLIENT_ERRORS_FROM and not mysql_timed_out(error)


def _postgres_journal_schemas(cursor) -> list[str]:
    """The schemas holding a JOURNAL_TABLE already, in name order."""
    cursor.execute("SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
                   "c.relnamespace WHERE c.relname = %s AND c.relkind = 'r' ORDER BY n.nspname", (JOURNAL_TABLE,))
    return [row[0] for row in cursor.fetchall()]


def drop_journal(conn, engine: str) -> None:
    """Drop JOURNAL_TABLE from every schema it is in (PostgreSQL) or the database (MySQL) of `conn`."""
    with conn.cursor() as cursor:
        if engine == "aurora-postgresql":
            for schema in _postgres_journal_schemas(cursor):
                cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, JOURNAL_TABLE)))
        else:
            cursor.execute(f"DROP TABLE IF EXISTS {JOURNAL_TABLE}")
    if engine == "aurora-postgresql":
        conn.commit()


RUNNERS = {"aurora-postgresql": (run_postgres, postgres_timed_out, postgres_connection_lost),
           "aurora-mysql": (run_mysql, mysql_timed_out, mysql_connection_lost)}
