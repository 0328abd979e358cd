"""Splitting a SQL hook into its statements, so each one runs (and is reported) on its own.

A semicolon ends a statement only outside quotes and comments: '...' strings ('' and, for MySQL, backslash
escapes inside), "..." identifiers, `...` identifiers (MySQL), $tag$...$tag$ dollar quoting (PostgreSQL), -- and
# (MySQL) line comments and /* ... */ block comments (nested on PostgreSQL). The splitter only finds boundaries;
the database parses each statement, so a statement it cuts wrongly fails there, never runs as something else.
"""

import re

# $$ or $tag$ (a tag is an identifier without $); a $ inside an identifier (a$1) does not open one.
DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
# What begins a statement that ends or opens a transaction: a hook runs in the operator's one transaction.
TRANSACTION_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "ROLLBACK", "END", "ABORT"})
# Words between CREATE/ALTER/DROP and the kind of object (CREATE OR REPLACE FUNCTION, CREATE UNIQUE INDEX).
MODIFIERS = frozenset({"OR", "REPLACE", "UNIQUE", "TEMPORARY", "TEMP", "GLOBAL", "LOCAL", "UNLOGGED"})


class UnterminatedSql(ValueError):
    """A quote, identifier, dollar-quoted string or comment that never ends."""


def split(sql: str, engine: str) -> list[str]:
    """The statements of `sql` in order, each without its terminating semicolon or surrounding blanks; statements
    that are only comments or blanks are left out. `engine`: aurora-postgresql or aurora-mysql."""
    mysql = engine == "aurora-mysql"
    statements, start, i, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"" or (c == "`" and mysql):
            i = _end_of_quoted(sql, i, backslash=mysql and c != "`")
        elif c == "-" and sql.startswith("--", i) or (c == "#" and mysql):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif c == "/" and sql.startswith("/*", i):
            i = _end_of_block_comment(sql, i, nested=not mysql)
        elif c == "$" and not mysql and not _in_word(sql, i):
            match = DOLLAR_TAG.match(sql, i)
            if match:
                close = sql.find(match.group(0), match.end())
                if close < 0:
                    raise UnterminatedSql(f"dollar-quoted string {match.group(0)} opened at offset {i} never ends")
                i = close + len(match.group(0))
            else:
                i += 1
        elif c == ";":
            statements.append(sql[start:i])
            start = i = i + 1
        else:
            i += 1
    statements.append(sql[start:])
    return [text.strip() for text in statements if not is_blank(text, mysql)]


def _end_of_quoted(sql: str, i: int, backslash: bool) -> int:
    quote, j, n = sql[i], i + 1, len(sql)
    while j < n:
        if backslash and sql[j] == "\\":
            j += 2
            continue
        if sql[j] == quote:
            if j + 1 < n and sql[j + 1] == quote:  # a doubled quote stands for itself
                j += 2
                continue
            return j + 1
        j += 1
    raise UnterminatedSql(f"{quote} opened at offset {i} never ends")


def _end_of_block_comment(sql: str, i: int, nested: bool) -> int:
    depth, j, n = 1, i + 2, len(sql)
    while j < n:
        if sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        elif nested and sql.startswith("/*", j):
            depth += 1
            j += 2
        else:
            j += 1
    raise UnterminatedSql(f"/* opened at offset {i} never ends")


def _in_word(sql: str, i: int) -> bool:
    """A $ right after an identifier character is part of the identifier (PostgreSQL allows $ in names)."""
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")


def is_blank(text: str, mysql: bool) -> bool:
    """Nothing but blanks and comments."""
    return not strip_comments(text, mysql).strip()


def strip_comments(text: str, mysql: bool) -> str:
    """`text` without its leading comments and blanks (enough to read a statement's first words)."""
    while True:
        text = text.lstrip()
        if text.startswith("--") or (mysql and text.startswith("#")):
            newline = text.find("\n")
            text = "" if newline < 0 else text[newline + 1:]
        elif text.startswith("/*"):
            text = text[_end_of_block_comment(text, 0, nested=not mysql):]
        else:
            return text


def command_of(statement: str, mysql: bool = False) -> str:
    """The statement's command as a database reports it: its first word, two for CREATE/ALTER/DROP (CREATE
    TABLE), upper-case. Only keywords: never a name or a value of the statement."""
    words = re.findall(r"[A-Za-z]+", strip_comments(statement, mysql)[:200])
    if not words:
        return ""
    first = words[0].upper()
    if first in ("CREATE", "ALTER", "DROP"):
        kind = next((word.upper() for word in words[1:] if word.upper() not in MODIFIERS), None)
        return f"{first} {kind}" if kind else first
    return first


def is_transaction_control(statement: str, mysql: bool = False) -> bool:
    """Whether the statement ends or opens a transaction (COMMIT, BEGIN, START TRANSACTION, ROLLBACK, ...);
    savepoints (SAVEPOINT, ROLLBACK TO) stay inside it and are allowed."""
    words = re.findall(r"[A-Za-z]+", strip_comments(statement, mysql)[:200])
    if not words or words[0].upper() not in TRANSACTION_CONTROL:
        return False
    return not (words[0].upper() == "ROLLBACK" and len(words) > 1 and words[1].upper() in ("TO", "WORK")
                and (words[1].upper() == "TO" or (len(words) > 2 and words[2].upper() == "TO")))
