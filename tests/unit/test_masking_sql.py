"""spec.masking's SQL: quoted identifiers, values only as parameters, the HMAC construction, and the rule checks."""

import hashlib
import hmac

import pytest
from psycopg import sql

from aurora_restore.api.models import Masking, MaskingRule
from aurora_restore.db import masking
from aurora_restore.db.masking import (
    FAKE_NAMES,
    Column,
    MysqlMasking,
    PostgresMasking,
    TableInfo,
    TableRef,
    hmac_pads,
    reference_email,
    reference_fake_name,
    reference_hash,
    rule_problems,
    tables_of,
)

KEY = b"0123456789abcdef-key"


def rendered(query) -> str:
    return query.as_string() if isinstance(query, sql.Composable) else query


@pytest.mark.parametrize("key", [KEY, b"k" * 64, b"long" * 40])
def test_pads_give_hmac_sha256(key):
    inner, outer = hmac_pads(key)
    message = "Ada Lovelace <ada@example.com>".encode()
    constructed = hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).hexdigest()
    assert constructed == hmac.new(key, message, hashlib.sha256).hexdigest() == reference_hash(key, message.decode())


def test_email_and_fake_name_derive_from_the_hash():
    digest = reference_hash(KEY, "ada")
    assert reference_email(KEY, "ada") == digest[:16] + "@example.invalid"
    assert reference_fake_name(KEY, "ada") == FAKE_NAMES[int(digest[:8], 16) % len(FAKE_NAMES)]
    assert reference_hash(KEY, "ada") == reference_hash(KEY, "ada") != reference_hash(b"another-key-0123", "ada")


@pytest.mark.parametrize("engine", [PostgresMasking, MysqlMasking])
def test_constant_and_where_are_parameters_and_quoted(engine):
    rule = MaskingRule(table="crm.people", column="name", strategy="constant",
                       value="x'); DROP TABLE people; --", where="note LIKE 'a%'")
    query, params = engine.statement(TableRef("crm", "people"), rule)
    text = rendered(query)
    assert params == ["x'); DROP TABLE people; --"]
    assert "DROP" not in text
    assert text.endswith("WHERE (note LIKE 'a%%')")  # both drivers read %% as %
    assert ('"crm"."people"' if engine is PostgresMasking else "`crm`.`people`") in text


def test_identifiers_are_quoted_with_their_quotes_doubled():
    assert masking.mysql_identifier("a`b", "c") == "`a``b`.`c`"
    rule = MaskingRule(table="people", column="name", strategy="nullify")
    query, params = PostgresMasking.statement(TableRef('we"ird', "people"), rule)
    assert rendered(query) == 'UPDATE "we""ird"."people" SET "name" = NULL' and params == []


def test_keyed_statements_hold_no_key_and_fixed_values_as_parameters():
    for strategy in ("hash", "email", "fakeName"):
        rule = MaskingRule(table="people", column="name", strategy=strategy)
        for engine in (PostgresMasking, MysqlMasking):
            query, params = engine.statement(TableRef("s", "people"), rule)
            text = rendered(query)
            assert KEY.hex() not in text and all(pad.hex() not in text for pad in hmac_pads(KEY))
            if strategy == "email":
                assert params == ["@example.invalid"]
            if strategy == "fakeName":
                assert set(FAKE_NAMES) <= set(params[0] if engine is PostgresMasking else params)
    query, _ = PostgresMasking.statement(TableRef("s", "t"), MaskingRule(table="t", column="c", strategy="hash"))
    assert "sha256(" in rendered(query) and "pg_temp.aurora_restore_masking_key" in rendered(query)
    query, _ = MysqlMasking.statement(TableRef("s", "t"), MaskingRule(table="t", column="c", strategy="hash"))
    assert "@aurora_restore_outer_pad" in query and "SHA2(" in query


def test_truncate_deletes_every_row():
    rule = MaskingRule(table="audit", strategy="truncate")
    assert rendered(PostgresMasking.statement(TableRef("public", "audit"), rule)[0]) == 'DELETE FROM "public"."audit"'
    assert MysqlMasking.statement(TableRef("db", "audit"), rule)[0] == "DELETE FROM `db`.`audit`"


def test_rules_grouped_by_table_in_order():
    rules = [MaskingRule(table="b", column="x", strategy="nullify"),
             MaskingRule(table="crm.a", column="y", strategy="nullify"),
             MaskingRule(table="public.b", column="z", strategy="nullify")]
    assert [(str(ref), len(group)) for ref, group in tables_of(rules, "public")] == [("public.b", 2), ("crm.a", 1)]


def test_every_problem_is_reported():
    tables = {
        TableRef("public", "people"): TableInfo({"name": Column("character varying", 40), "age": Column("integer", None),
                                                 "bio": Column("text", None)}),
        TableRef("public", "legacy"): TableInfo({"name": Column("text", None)}, transactional=False),
    }
    rules = [
        MaskingRule(table="people", column="missing", strategy="nullify"),
        MaskingRule(table="nowhere", column="name", strategy="nullify"),
        MaskingRule(table="people", column="age", strategy="hash"),
        MaskingRule(table="people", column="name", strategy="hash"),  # 64 characters into varchar(40)
        MaskingRule(table="people", column="name", strategy="email"),  # 33 fit
        MaskingRule(table="people", column="bio", strategy="fakeName"),
        MaskingRule(table="legacy", column="name", strategy="nullify"),
        MaskingRule(table="aurora_restore_masking", strategy="truncate"),
    ]
    Masking(rules=rules, hashKeySecretRef={"name": "k", "key": "k"})
    problems = rule_problems(rules, "public", tables, masking.POSTGRES_TEXT_TYPES, fold_columns=False)
    assert [problem.split(":")[0] for problem in problems] == [
        "spec.masking.rules[0]", "spec.masking.rules[1]", "spec.masking.rules[2]", "spec.masking.rules[3]",
        "spec.masking.rules[6]", "spec.masking.rules[7]"]
    assert "column 'missing' does not exist in table public.people" in problems[0]
    assert "table public.nowhere does not exist" in problems[1]
    assert "needs a text column" in problems[2] and "holds 40" in problems[3]


def test_mysql_columns_are_case_insensitive():
    tables = {TableRef("db", "people"): TableInfo({"email": Column("varchar", 255)})}
    rules = [MaskingRule(table="people", column="Email", strategy="nullify")]
    assert rule_problems(rules, "db", tables, masking.MYSQL_TEXT_TYPES, fold_columns=True) == []


def test_short_keys_are_refused():
    assert masking.key_problem(b"short") and masking.key_problem(b"x" * 16) is None


def test_tables_the_master_may_not_rewrite_are_refused_before_any_change():
    """PostgreSQL skips VACUUM of a table the user does not own with a mere warning: checked up front."""
    tables = {TableRef("public", "people"): TableInfo({"name": Column("text", None)}, maintainable=False)}
    rules = [MaskingRule(table="people", column="name", strategy="nullify")]
    problems = rule_problems(rules, "public", tables, masking.POSTGRES_TEXT_TYPES, fold_columns=False)
    assert problems == ["spec.masking.rules[0]: the master user may not update and rewrite table public.people "
                        "(VACUUM FULL needs its owner or the database's)"]


def test_the_key_fingerprint_tells_keys_apart_and_reveals_neither_key_nor_pads():
    fingerprint = masking.key_fingerprint(KEY)
    assert fingerprint == hmac.new(KEY, masking.KEY_FINGERPRINT_LABEL, hashlib.sha256).hexdigest()
    assert fingerprint == masking.key_fingerprint(KEY) != masking.key_fingerprint(b"another-key-0123")
    assert KEY.hex() not in fingerprint and all(pad.hex()[:16] not in fingerprint for pad in hmac_pads(KEY))


@pytest.mark.parametrize(("settings", "log_off", "logged"), [
    ({"general_log": "OFF", "slow_query_log": "OFF", "long_query_time": "10.000000"}, False, None),  # Aurora's default
    ({"general_log": "ON"}, True, None),  # sql_log_off keeps the session out of the general log
    ({"general_log": "ON"}, False, "general_log is on"),  # ... and without it the key is not sent
    ({"slow_query_log": "ON", "long_query_time": "2.000000"}, True, None),
    ({"slow_query_log": "ON", "long_query_time": "0.000000"}, True, "long_query_time 0"),
    ({"server_audit_logging": "ON", "server_audit_events": "CONNECT,QUERY"}, True, "server_audit_logging"),
    ({"server_audit_logging": "ON", "server_audit_events": ""}, True, "server_audit_logging"),  # empty: every event
    ({"server_audit_logging": "ON", "server_audit_events": "CONNECT"}, True, None),
    ({"server_audit_logging": "OFF", "server_audit_events": "QUERY"}, True, None),
    ({"log_bin": "ON", "binlog_format": "STATEMENT"}, True, "binary log is on in STATEMENT format"),
    ({"log_bin": "ON", "binlog_format": "MIXED"}, True, "binary log is on in MIXED format"),
    ({"log_bin": "ON", "binlog_format": "ROW"}, True, None),  # row images: hashes, never the pads
    ({"log_bin": "OFF", "binlog_format": "STATEMENT"}, True, None),
])
def test_the_mysql_key_is_sent_only_where_no_log_records_it(settings, log_off, logged):
    problem = masking.mysql_key_logging_problem(settings, log_off)
    assert problem is None if logged is None else logged in problem


@pytest.mark.parametrize("engine", [PostgresMasking, MysqlMasking])
def test_a_where_is_planned_not_run_before_any_change(engine):
    rule = MaskingRule(table="people", column="name", strategy="nullify", where="note LIKE 'a%'")
    query, params = engine.where_check(TableRef("crm", "people"), rule)
    quoted = '"crm"."people"' if engine is PostgresMasking else "`crm`.`people`"
    assert rendered(query) == f"EXPLAIN SELECT 1 FROM {quoted} WHERE (note LIKE 'a%%')" and params == []
