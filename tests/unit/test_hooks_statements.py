"""Splitting a SQL hook into statements (db/statements.py): a semicolon ends a statement only outside quotes,
identifiers, dollar quoting and comments, as each engine reads them."""

import pytest

from aurora_restore.db.statements import UnterminatedSql, command_of, is_transaction_control, split

PG, MY = "aurora-postgresql", "aurora-mysql"


@pytest.mark.parametrize("engine", [PG, MY])
def test_plain_statements_are_split_and_trimmed_and_blank_ones_left_out(engine):
    assert split("  UPDATE a SET x = 1;\n\nDELETE FROM b ; ;\n", engine) == ["UPDATE a SET x = 1", "DELETE FROM b"]


@pytest.mark.parametrize("engine", [PG, MY])
def test_semicolons_in_strings_identifiers_and_comments_do_not_split(engine):
    sql = ("INSERT INTO t VALUES ('a;b', 'it''s; fine');\n"
           '-- a comment; still a comment\n'
           'SELECT "odd;name" FROM t /* block; comment */ WHERE x = 1;\n'
           "SELECT 2")
    assert split(sql, engine) == [
        "INSERT INTO t VALUES ('a;b', 'it''s; fine')",
        '-- a comment; still a comment\nSELECT "odd;name" FROM t /* block; comment */ WHERE x = 1',
        "SELECT 2",
    ]


def test_postgres_dollar_quoting_keeps_a_function_body_whole():
    body = "CREATE FUNCTION f() RETURNS int AS $fn$ BEGIN RETURN 1; END; $fn$ LANGUAGE plpgsql"
    anonymous = "DO $$ BEGIN PERFORM 1; END $$"
    assert split(f"{body};\n{anonymous};\nSELECT f()", PG) == [body, anonymous, "SELECT f()"]


def test_postgres_dollar_inside_a_name_is_not_a_quote_and_nested_comments_nest():
    assert split("SELECT a$1 FROM t; SELECT /* x /* y; */ z; */ 1", PG) == ["SELECT a$1 FROM t",
                                                                           "SELECT /* x /* y; */ z; */ 1"]


def test_postgres_backslash_does_not_escape_a_quote_but_mysql_does():
    assert split(r"SELECT 'a\'; SELECT 2", PG) == [r"SELECT 'a\'", "SELECT 2"]
    assert split(r"SELECT 'a\'; b'; SELECT 2", MY) == [r"SELECT 'a\'; b'", "SELECT 2"]


def test_mysql_backticks_and_hash_comments():
    assert split("SELECT `a;b` FROM t; # note; here\nSELECT 2", MY) == ["SELECT `a;b` FROM t",
                                                                       "# note; here\nSELECT 2"]
    assert split("SELECT `a;b`", PG) == ["SELECT `a", "b`"]  # PostgreSQL has no backtick quoting


def test_only_comments_make_no_statement():
    assert split("-- nothing\n/* at all */", PG) == []


@pytest.mark.parametrize("sql", ["SELECT 'open", 'SELECT "open', "SELECT 1 /* open", "DO $x$ BEGIN"])
def test_unterminated_quotes_and_comments_are_refused(sql):
    with pytest.raises(UnterminatedSql):
        split(sql, PG)


@pytest.mark.parametrize(("statement", "command"), [
    ("update t set x = 1", "UPDATE"),
    ("-- why\nINSERT INTO t VALUES (1)", "INSERT"),
    ("CREATE TABLE t (id int)", "CREATE TABLE"),
    ("create or replace function f() returns int as $$ select 1 $$ language sql", "CREATE FUNCTION"),
    ("CREATE UNIQUE INDEX i ON t (x)", "CREATE INDEX"),
    ("/* c */ DROP TABLE IF EXISTS t", "DROP TABLE"),
])
def test_the_command_is_keywords_only(statement, command):
    assert command_of(statement) == command


@pytest.mark.parametrize(("statement", "controls"), [
    ("COMMIT", True), ("begin", True), ("START TRANSACTION", True), ("ROLLBACK", True), ("END", True),
    ("SAVEPOINT a", False), ("ROLLBACK TO SAVEPOINT a", False), ("ROLLBACK WORK TO a", False),
    ("UPDATE t SET x = 1", False),
])
def test_transaction_control_is_told_from_savepoints(statement, controls):
    assert is_transaction_control(statement) is controls
