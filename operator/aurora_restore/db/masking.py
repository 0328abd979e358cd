"""The SQL of spec.masking on PostgreSQL and MySQL: rule checks against information_schema, one UPDATE (or DELETE)
per rule from quoted identifiers, the keyed hash, the journal that makes masking resumable, and the rewrite that
leaves no old row version in a table's pages.

Values never become SQL text: a constant, the e-mail domain and the fake names are query parameters; the HMAC key
reaches the server only as its two derived pads, by a path that keeps it out of statement text (PostgreSQL:
COPY data into a temporary table; MySQL: session variables set with the general log switched off for the
session where the server allows it). docs/masking.md specifies the construction.
"""

import hashlib
import hmac
from dataclasses import dataclass

import psycopg
import pymysql
from psycopg import sql

# The table, in the masked database, recording which tables a restore has masked: written in the same transaction
# as the table's masking, read on resume (so nothing is hashed twice), dropped once status records completion.
JOURNAL_TABLE = "aurora_restore_masking"
JOURNAL_SCHEMA = "public"  # PostgreSQL; on MySQL it is in the masked database
KEY_TABLE = "aurora_restore_masking_key"  # PostgreSQL: the session's temporary table of the pads
MYSQL_INNER_PAD = "@aurora_restore_inner_pad"
MYSQL_OUTER_PAD = "@aurora_restore_outer_pad"
KEYED_STRATEGIES = frozenset({"hash", "email", "fakeName"})
MIN_KEY_BYTES = 16
BLOCK_BYTES = 64  # SHA-256's block size: HMAC's K0 is the key padded (or first hashed) to it
INNER_XOR, OUTER_XOR = 0x36, 0x5C
EMAIL_HEX_CHARS = 16
# status.masking.keyFingerprint is HMAC-SHA256(key, this label): it tells whether the key changed between tables
# (their hashes would no longer join) without revealing the key.
KEY_FINGERPRINT_LABEL = b"aurora-restore masking key fingerprint"
EMAIL_DOMAIN = "@example.invalid"  # RFC 2606: never a real mailbox
NAME_INDEX_HEX_CHARS = 8  # the fake name is FAKE_NAMES[int(first 8 hex chars, 16) mod len(FAKE_NAMES)]
FAKE_NAMES = (
    "Alex Morgan", "Blake Carter", "Casey Jordan", "Dana Ellis", "Drew Parker", "Emery Quinn", "Finley Hayes",
    "Gray Bennett", "Harper Lane", "Jamie Brooks", "Jesse Reed", "Kai Foster", "Kendall Price", "Logan Hart",
    "Morgan Blake", "Noel Rivers", "Oakley Grant", "Parker Stone", "Quinn Avery", "Reese Walker", "Riley Shaw",
    "Rowan Cole", "Sage Turner", "Sawyer Fox", "Skyler James", "Taylor Wells", "Tatum Gray", "Val Morris",
    "Wren Hughes", "Yael Cooper", "Zion Ford", "Ari Lowe",
)
# The shortest column each keyed strategy can write into (characters).
OUTPUT_LENGTH = {
    "hash": 64,
    "email": EMAIL_HEX_CHARS + len(EMAIL_DOMAIN),
    "fakeName": max(len(name) for name in FAKE_NAMES),
}
POSTGRES_TEXT_TYPES = frozenset({"text", "character varying", "character"})
MYSQL_TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})


# --- the keyed hash (the reference the SQL of both engines matches) ----------------------------------------------


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """(K0 xor ipad, K0 xor opad) of HMAC-SHA256 (RFC 2104): K0 is the key, first hashed when longer than a
    block, zero-padded to 64 bytes. With them, HMAC(K, m) = SHA256(outer || SHA256(inner || m))."""
    k0 = hashlib.sha256(key).digest() if len(key) > BLOCK_BYTES else key
    k0 = k0.ljust(BLOCK_BYTES, b"\0")
    return bytes(b ^ INNER_XOR for b in k0), bytes(b ^ OUTER_XOR for b in k0)


def reference_hash(key: bytes, value: str) -> str:
    """What strategy hash writes for `value`: lower-case hex HMAC-SHA256 of its UTF-8 bytes."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def key_fingerprint(key: bytes) -> str:
    return hmac.new(key, KEY_FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def reference_email(key: bytes, value: str) -> str:
    return reference_hash(key, value)[:EMAIL_HEX_CHARS] + EMAIL_DOMAIN


def reference_fake_name(key: bytes, value: str) -> str:
    return FAKE_NAMES[int(reference_hash(key, value)[:NAME_INDEX_HEX_CHARS], 16) % len(FAKE_NAMES)]


# --- rules and their checks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Column:
    data_type: str  # information_schema.columns.data_type, lower case
    max_length: int | None  # character_maximum_length (None: unlimited)


@dataclass(frozen=True)
class TableInfo:
    columns: dict[str, Column]  # by column name (MySQL: lower case, its column names are case-insensitive)
    transactional: bool = True  # MySQL: InnoDB (a MyISAM table cannot be masked in a transaction)
    maintainable: bool = True  # PostgreSQL: the master user may UPDATE and DELETE in it and VACUUM FULL it


def table_ref(table: str, default_schema: str) -> TableRef:
    """`table` or `schema.table` (MySQL: the schema is the database)."""
    schema, _, name = table.rpartition(".")
    return TableRef(schema or default_schema, name)


def tables_of(rules, default_schema: str) -> list[tuple[TableRef, list]]:
    """The rules grouped by table, tables in the order they first appear, rules in their order."""
    grouped: dict[TableRef, list] = {}
    for rule in rules:
        grouped.setdefault(table_ref(rule.table, default_schema), []).append(rule)
    return list(grouped.items())


def rule_problems(rules, default_schema: str, tables: dict[TableRef, TableInfo], text_types: frozenset,
                  fold_columns: bool) -> list[str]:
    """Every problem of every rule, each naming spec.masking.rules[i]: a table or column that does not exist, a
    keyed strategy on a column that is not text or too short for what it writes, a table that cannot be masked
    in a transaction."""
    problems = []
    for index, rule in enumerate(rules):
        ref = table_ref(rule.table, default_schema)
        field = f"spec.masking.rules[{index}]"
        if ref.name == JOURNAL_TABLE:
            problems.append(f"{field}: table {ref} is the operator's masking journal")
            continue
        info = tables.get(ref)
        if info is None:
            problems.append(f"{field}: table {ref} does not exist")
            continue
        if not info.transactional:
            problems.append(f"{field}: table {ref} is not InnoDB, so it cannot be masked in one transaction")
        if not info.maintainable:
            problems.append(f"{field}: the master user may not update and rewrite table {ref} (VACUUM FULL needs "
                            "its owner or the database's)")
        if rule.column is None:
            continue
        column = info.columns.get(rule.column.lower() if fold_columns else rule.column)
        if column is None:
            problems.append(f"{field}: column {rule.column!r} does not exist in table {ref}")
        elif rule.strategy in KEYED_STRATEGIES:
            if column.data_type not in text_types:
                problems.append(f"{field}: strategy {rule.strategy} needs a text column; {ref}.{rule.column} is "
                                f"{column.data_type}")
            elif column.max_length is not None and column.max_length < OUTPUT_LENGTH[rule.strategy]:
                problems.append(f"{field}: strategy {rule.strategy} writes up to {OUTPUT_LENGTH[rule.strategy]} "
                                f"characters; {ref}.{rule.column} holds {column.max_length}")
    return problems


def key_problem(key: bytes) -> str | None:
    if len(key) < MIN_KEY_BYTES:
        return f"the hash key must be at least {MIN_KEY_BYTES} bytes; this one is shorter"  # not its length
    return None


def escape_percent(condition: str) -> str:
    """A `where` condition as text for a query with parameters, where both drivers read `%%` as `%`."""
    return condition.replace("%", "%%")


class RewriteSkipped(Exception):
    """The server ran the rewrite but left the table as it was."""


class KeyWouldBeLogged(Exception):
    """A server log would record the statement that carries the key's pads: the key is not sent."""


def mysql_key_logging_problem(settings: dict[str, str], log_off: bool) -> str | None:
    """Why a MySQL server would log the statement setting the pads (None: it would not), from its variables
    (names lower case, values as SHOW VARIABLES gives them) and whether `SET SESSION sql_log_off = 1` was accepted.
    sql_log_off only silences the general log; the slow log (with long_query_time 0 every statement is slow) and
    Advanced Auditing / the audit plugin (QUERY events; an empty event list means every event) log regardless, and
    a binary log in STATEMENT or MIXED format (the session's, which SHOW VARIABLES gives) writes the value of every
    user variable a logged statement reads."""
    def on(name: str) -> bool:
        return settings.get(name, "").upper() in ("ON", "1")

    if on("general_log") and not log_off:
        return ("general_log is on and the master user may not set sql_log_off (it needs SUPER or "
                "SESSION_VARIABLES_ADMIN)")
    if on("slow_query_log") and float(settings.get("long_query_time") or 10) == 0:
        return "slow_query_log is on with long_query_time 0, so every statement is logged"
    events = settings.get("server_audit_events", "").upper()
    if on("server_audit_logging") and (not events.strip() or "QUERY" in events):
        return "server_audit_logging is on with QUERY events"
    binlog_format = settings.get("binlog_format", "").upper()
    if on("log_bin") and binlog_format in ("STATEMENT", "MIXED"):
        return (f"the binary log is on in {binlog_format} format, which records the user variables the masking "
                f"statements read, and the master user may not set binlog_format ROW for its session")
    return None


# --- PostgreSQL ----------------------------------------------------------------------------------------------------


class PostgresMasking:
    """Masking on aurora-postgresql (psycopg, autocommit connections: transactions are explicit)."""

    default_schema = "public"
    text_types = POSTGRES_TEXT_TYPES
    fold_columns = False

    @staticmethod
    def tables(conn: psycopg.Connection, schemas: list[str]) -> dict[TableRef, TableInfo]:
        """The base tables of `schemas` with their columns, from information_schema."""
        result: dict[TableRef, TableInfo] = {}
        with conn.cursor() as cursor:
            # VACUUM of a table the user does not own (nor the database) is skipped with a mere warning.
            cursor.execute(
                "SELECT t.table_schema, t.table_name, has_table_privilege(c.oid, 'UPDATE, DELETE') AND ("
                "pg_has_role(c.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE')) "
                "FROM information_schema.tables t "
                "JOIN pg_namespace n ON n.nspname = t.table_schema "
                "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name "
                "JOIN pg_database d ON d.datname = current_database() "
                "WHERE t.table_type = 'BASE TABLE' AND t.table_schema = ANY(%s)", (schemas,))
            for schema, name, maintainable in cursor.fetchall():
                result[TableRef(schema, name)] = TableInfo(columns={}, maintainable=bool(maintainable))
            cursor.execute("SELECT table_schema, table_name, column_name, data_type, character_maximum_length "
                           "FROM information_schema.columns WHERE table_schema = ANY(%s)", (schemas,))
            for schema, name, column, data_type, max_length in cursor.fetchall():
                info = result.get(TableRef(schema, name))
                if info is not None:
                    info.columns[column] = Column(data_type.lower(), max_length)
        return result

    @staticmethod
    def load_key(conn: psycopg.Connection, inner: bytes, outer: bytes) -> None:
        """The pads into a temporary table of this session through COPY: COPY's data is not statement text, so
        neither log_statement=all nor an error's logged statement shows them."""
        key_table = sql.Identifier(KEY_TABLE)
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} (inner_pad bytea NOT NULL, "
                                   "outer_pad bytea NOT NULL)").format(key_table))
            cursor.execute(sql.SQL("TRUNCATE {}").format(key_table))
            with cursor.copy(sql.SQL("COPY {} (inner_pad, outer_pad) FROM STDIN").format(key_table)) as copy:
                copy.write_row((inner, outer))

    @staticmethod
    def hash_expression(column: str) -> sql.Composable:
        pad = "(SELECT {pad} FROM pg_temp." + KEY_TABLE + ")"
        return sql.SQL(
            "encode(sha256(" + pad.format(pad="outer_pad") + " || sha256(" + pad.format(pad="inner_pad")
            + " || convert_to({}::text, 'UTF8'))), 'hex')"
        ).format(sql.Identifier(column))

    @classmethod
    def statement(cls, ref: TableRef, rule) -> tuple[sql.Composable, list]:
        """The rule's UPDATE (DELETE for truncate) and its parameters."""
        table = sql.Identifier(ref.schema, ref.name)
        if rule.strategy == "truncate":
            return sql.SQL("DELETE FROM {}").format(table), []
        params: list = []
        if rule.strategy == "nullify":
            value: sql.Composable = sql.SQL("NULL")
        elif rule.strategy == "constant":
            value, params = sql.SQL("%s"), [rule.value]
        elif rule.strategy == "hash":
            value = cls.hash_expression(rule.column)
        elif rule.strategy == "email":
            value, params = sql.SQL("left({}, {}) || %s").format(
                cls.hash_expression(rule.column), sql.Literal(EMAIL_HEX_CHARS)), [EMAIL_DOMAIN]
        else:  # fakeName
            index = sql.SQL("mod(('x' || left({}, {}))::bit(32)::bigint, %s) + 1").format(
                cls.hash_expression(rule.column), sql.Literal(NAME_INDEX_HEX_CHARS))
            value, params = sql.SQL("(%s::text[])[{}]").format(index), [list(FAKE_NAMES), len(FAKE_NAMES)]
        query = sql.SQL("UPDATE {} SET {} = {}").format(table, sql.Identifier(rule.column), value)
        if rule.where is not None:
            query = sql.SQL("{} WHERE ({})").format(query, sql.SQL(escape_percent(rule.where)))
        return query, params

    @staticmethod
    def where_check(ref: TableRef, rule) -> tuple[sql.Composable, list]:
        """The rule's `where` planned, not run: EXPLAIN refuses bad SQL and missing columns before any change."""
        query = sql.SQL("EXPLAIN SELECT 1 FROM {} WHERE ({})").format(
            sql.Identifier(ref.schema, ref.name), sql.SQL(escape_percent(rule.where)))
        return query, []

    @staticmethod
    def ensure_journal(conn: psycopg.Connection) -> None:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (restore_uid text NOT NULL, table_name text NOT NULL, "
                "rows_changed bigint NOT NULL, masked_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (restore_uid, table_name))").format(sql.Identifier(JOURNAL_SCHEMA, JOURNAL_TABLE)))

    @staticmethod
    def journal(conn: psycopg.Connection, uid: str) -> dict[str, int]:
        """table -> rows changed, of the tables this restore has masked (none without a journal)."""
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", (f"{JOURNAL_SCHEMA}.{JOURNAL_TABLE}",))
            if cursor.fetchone()[0] is None:
                return {}
            cursor.execute(sql.SQL("SELECT table_name, rows_changed FROM {} WHERE restore_uid = %s").format(
                sql.Identifier(JOURNAL_SCHEMA, JOURNAL_TABLE)), (uid,))
            return dict(cursor.fetchall())

    @classmethod
    def mask_table(cls, conn: psycopg.Connection, uid: str, ref: TableRef, rules) -> int:
        """Every rule of the table and its journal row in one transaction; the rows the statements changed."""
        rows = 0
        with conn.transaction(), conn.cursor() as cursor:
            for rule in rules:
                query, params = cls.statement(ref, rule)
                cursor.execute(query, params)
                rows += max(cursor.rowcount, 0)
            cursor.execute(sql.SQL("INSERT INTO {} (restore_uid, table_name, rows_changed) VALUES (%s, %s, %s)")
                           .format(sql.Identifier(JOURNAL_SCHEMA, JOURNAL_TABLE)), (uid, str(ref), rows))
        return rows

    @staticmethod
    def rewrite(conn: psycopg.Connection, ref: TableRef) -> None:
        """VACUUM FULL (outside a transaction): the table and its TOAST table are written anew and the old files
        removed, so no dead row version of the unmasked data is left in its pages."""
        table = sql.Identifier(ref.schema, ref.name)
        with conn.cursor() as cursor:
            filenode = ("SELECT pg_relation_filenode(%s::regclass)", (table.as_string(conn),))
            cursor.execute(*filenode)
            before = cursor.fetchone()[0]
            cursor.execute(sql.SQL("VACUUM FULL {}").format(table))
            cursor.execute(*filenode)
            if before is not None and cursor.fetchone()[0] == before:  # skipped with a warning, not an error
                raise RewriteSkipped(f"VACUUM FULL did not rewrite table {ref}: the master user may not vacuum it")

    @staticmethod
    def drop_journal(conn: psycopg.Connection) -> None:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(JOURNAL_SCHEMA, JOURNAL_TABLE)))


# --- MySQL ---------------------------------------------------------------------------------------------------------


def mysql_identifier(*names: str) -> str:
    """A quoted (schema-qualified) identifier: backticks, a backtick doubled."""
    return ".".join("`" + name.replace("`", "``") + "`" for name in names)


class MysqlMasking:
    """Masking on aurora-mysql (PyMySQL, which interpolates parameters into the statement client-side: values are
    escaped by the driver, never formatted by this module)."""

    default_schema = ""  # set per connection: the masked database
    text_types = MYSQL_TEXT_TYPES
    fold_columns = True

    @staticmethod
    def tables(conn: pymysql.Connection, schemas: list[str]) -> dict[TableRef, TableInfo]:
        result: dict[TableRef, TableInfo] = {}
        marks = ", ".join(["%s"] * len(schemas))
        with conn.cursor() as cursor:
            cursor.execute("SELECT table_schema, table_name, engine FROM information_schema.tables "
                           "WHERE table_type = 'BASE TABLE' AND table_schema IN (" + marks + ")", schemas)
            for schema, name, engine in cursor.fetchall():
                result[TableRef(schema, name)] = TableInfo(columns={},
                                                           transactional=(engine or "").lower() == "innodb")
            cursor.execute("SELECT table_schema, table_name, column_name, data_type, character_maximum_length "
                           "FROM information_schema.columns WHERE table_schema IN (" + marks + ")", schemas)
            for schema, name, column, data_type, max_length in cursor.fetchall():
                info = result.get(TableRef(schema, name))
                if info is not None:
                    info.columns[column.lower()] = Column(data_type.lower(), max_length)
        return result

    @staticmethod
    def load_key(conn: pymysql.Connection, inner: bytes, outer: bytes) -> None:
        """The pads into session variables. PyMySQL puts parameters into the statement text, so first the
        session's general-log entries are switched off (sql_log_off, which needs SUPER or
        SESSION_VARIABLES_ADMIN), then the server's log settings are read: where a log would still record the
        statement (mysql_key_logging_problem) the key is not sent and KeyWouldBeLogged is raised. The session's
        binary log format is asked to be ROW first: in STATEMENT or MIXED format each UPDATE reading the pads
        would be written with their values (User_var events). Aurora MySQL leaves the general log, the slow log,
        Advanced Auditing and the binary log off by default."""
        with conn.cursor() as cursor:
            try:
                cursor.execute("SET SESSION sql_log_off = 1")
                log_off = True
            except pymysql.MySQLError:
                log_off = False
            try:
                cursor.execute("SET SESSION binlog_format = 'ROW'")
            except pymysql.MySQLError:
                pass  # not allowed to: the check below sees the format that stays
            cursor.execute("SHOW VARIABLES WHERE Variable_name IN ('general_log', 'slow_query_log', "
                           "'long_query_time', 'server_audit_logging', 'server_audit_events', 'log_bin', "
                           "'binlog_format')")
            settings = {str(name).lower(): str(value) for name, value in cursor.fetchall()}
            problem = mysql_key_logging_problem(settings, log_off)
            if problem:
                raise KeyWouldBeLogged(f"the hash key was not sent: {problem}; see docs/masking.md")
            cursor.execute(f"SET {MYSQL_INNER_PAD} = UNHEX(%s), {MYSQL_OUTER_PAD} = UNHEX(%s)",
                           (inner.hex(), outer.hex()))
            try:
                cursor.execute("SET SESSION sql_log_off = 0")
            except pymysql.MySQLError:
                pass

    @staticmethod
    def hash_expression(column: str) -> str:
        return (f"SHA2(CONCAT({MYSQL_OUTER_PAD}, UNHEX(SHA2(CONCAT({MYSQL_INNER_PAD}, "
                f"CONVERT({mysql_identifier(column)} USING utf8mb4)), 256))), 256)")

    @classmethod
    def statement(cls, ref: TableRef, rule) -> tuple[str, list]:
        table = mysql_identifier(ref.schema, ref.name)
        if rule.strategy == "truncate":
            return f"DELETE FROM {table}", []
        params: list = []
        if rule.strategy == "nullify":
            value = "NULL"
        elif rule.strategy == "constant":
            value, params = "%s", [rule.value]
        elif rule.strategy == "hash":
            value = cls.hash_expression(rule.column)
        elif rule.strategy == "email":
            value, params = f"CONCAT(LEFT({cls.hash_expression(rule.column)}, {EMAIL_HEX_CHARS}), %s)", [EMAIL_DOMAIN]
        else:  # fakeName
            marks = ", ".join(["%s"] * len(FAKE_NAMES))
            value = (f"ELT(CONV(LEFT({cls.hash_expression(rule.column)}, {NAME_INDEX_HEX_CHARS}), 16, 10) "
                     f"MOD {len(FAKE_NAMES)} + 1, {marks})")
            params = list(FAKE_NAMES)
        query = f"UPDATE {table} SET {mysql_identifier(rule.column)} = {value}"
        if rule.where is not None:
            query += f" WHERE ({escape_percent(rule.where)})"
        return query, params

    @staticmethod
    def count_statement(ref: TableRef, rule) -> tuple[str, list]:
        """How many rows the rule's statement touches (MySQL's affected rows leave out rows already equal)."""
        query = f"SELECT COUNT(*) FROM {mysql_identifier(ref.schema, ref.name)}"
        if rule.where is not None:
            query += f" WHERE ({escape_percent(rule.where)})"
        return query, []

    @staticmethod
    def where_check(ref: TableRef, rule) -> tuple[str, list]:
        """The rule's `where` planned, not run: EXPLAIN refuses bad SQL and missing columns before any change."""
        return f"EXPLAIN SELECT 1 FROM {mysql_identifier(ref.schema, ref.name)} WHERE ({escape_percent(rule.where)})", []

    @staticmethod
    def ensure_journal(conn: pymysql.Connection) -> None:
        with conn.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {mysql_identifier(JOURNAL_TABLE)} (restore_uid VARCHAR(64) NOT NULL, "
                "table_name VARCHAR(200) NOT NULL, rows_changed BIGINT NOT NULL, "
                "masked_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (restore_uid, table_name)) "
                "ENGINE=InnoDB")

    @staticmethod
    def journal(conn: pymysql.Connection, uid: str) -> dict[str, int]:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() "
                           "AND table_name = %s", (JOURNAL_TABLE,))
            if cursor.fetchone() is None:
                return {}
            cursor.execute(f"SELECT table_name, rows_changed FROM {mysql_identifier(JOURNAL_TABLE)} "
                           "WHERE restore_uid = %s", (uid,))
            return {name: int(rows) for name, rows in cursor.fetchall()}

    @classmethod
    def mask_table(cls, conn: pymysql.Connection, uid: str, ref: TableRef, rules) -> int:
        rows = 0
        conn.begin()
        try:
            with conn.cursor() as cursor:
                for rule in rules:
                    query, params = cls.count_statement(ref, rule)
                    cursor.execute(query, params)
                    rows += int(cursor.fetchone()[0])
                    query, params = cls.statement(ref, rule)
                    cursor.execute(query, params)
                cursor.execute(f"INSERT INTO {mysql_identifier(JOURNAL_TABLE)} (restore_uid, table_name, "
                               "rows_changed) VALUES (%s, %s, %s)", (uid, str(ref), rows))
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except pymysql.MySQLError:  # the connection is gone: the server rolls back on its own
                pass
            raise
        return rows

    @staticmethod
    def rewrite(conn: pymysql.Connection, ref: TableRef) -> None:
        """ALTER TABLE ... FORCE (what OPTIMIZE TABLE does for InnoDB, but with errors raised rather than
        returned as rows): the table is rebuilt into a new tablespace file and the old one removed."""
        with conn.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {mysql_identifier(ref.schema, ref.name)} FORCE")

    @staticmethod
    def drop_journal(conn: pymysql.Connection) -> None:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {mysql_identifier(JOURNAL_TABLE)}")


MASKING_ENGINES = {"aurora-postgresql": PostgresMasking, "aurora-mysql": MysqlMasking}
