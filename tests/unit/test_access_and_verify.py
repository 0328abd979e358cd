"""ConfiguringAccess and Verifying up to the first connection, and connections that are refused.

No database server takes part: the restored cluster's endpoint is a loopback port that is bound but not listening,
so every connection attempt is a real TCP connection that the kernel refuses at once. What is decided before a
connection (which password, from where, waiting for it or failing) is exercised fully; what follows a successful
login (users, grants, queries, connection Secrets) needs a database and is left to the tests that have one.

The master password is a distinctive string: no outcome, status or failure may ever contain it.
"""

import json
import socket
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.db import postgres
from aurora_restore.steps.context import RESTORE_UID_TAG
from aurora_restore.steps.outcomes import Advance, Fail, Wait

from .conftest import REPLACEABLE, SOURCE_REGION, TARGET, UID, RestoreRun

# Tricky but within what RDS takes for a master password (printable ASCII without /, ", @ or spaces).
PASSWORD = "Xq7'm4st3r:p-w%?#&!"
SECRET = "aurora-master"
SM_ID = "restores/staging-master"
LOOPBACK = "127.0.0.1"
SECRET_REF = {"masterPassword": {"secretRef": {"name": SECRET, "key": "password"}}}
FROM_SECRETS_MANAGER = {"masterPassword": {"secretsManagerSecretId": SM_ID}}
MANAGED = {"masterPassword": {"manageInSecretsManager": True}}
ENGINES = ["aurora-postgresql", "aurora-mysql"]
PHASES = [Phase.CONFIGURING_ACCESS, Phase.VERIFYING]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listened on: connections to it are refused, and no one else can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


@pytest.fixture
def at(restore, closed_port) -> Callable[..., RestoreRun]:
    """A restore whose cluster (made by it: its UID tag) exists and is available on the closed port, and whose
    status is in `phase`.

    As an earlier turn of the machine would have left it: Verifying means access was configured before.
    """

    def build(phase: Phase, changes: dict | None = None, *, engine: str = "aurora-postgresql", **fields) -> RestoreRun:
        run = restore(changes, **fields)
        run.target.endpoint_host = LOOPBACK
        run.target.add_cluster(TARGET, tags={**REPLACEABLE, RESTORE_UID_TAG: UID}, instances=2, engine=engine)
        run.target.clusters[TARGET]["Port"] = closed_port
        run.status = run.status.model_copy(update={"phase": phase})
        run.phases = [phase]
        return run

    return build


def unreachable(port: int) -> str:
    return f"cannot connect to {LOOPBACK}:{port}: "


def texts_of(run: RestoreRun) -> list[str]:
    """Everything the operator would publish about the run (status, events, logs) or send to AWS."""
    texts = [repr(outcome) for outcome in run.outcomes]
    texts.append(run.status.model_dump_json(by_alias=True))
    if run.status.failure is not None:
        texts.append(repr(run.status.failure))
    texts.extend(repr(call.params) for call in run.cloud.calls)
    return texts


def assert_password_never_shown(run: RestoreRun, password: str = PASSWORD) -> None:
    for text in texts_of(run):
        for form in (password, quote(password, safe=""), json.dumps(password)[1:-1], repr(password)[1:-1]):
            assert form not in text


def modify_calls(run: RestoreRun):
    return run.cloud.calls_to("modify_cluster")


LATER_PHASES = [
    (Phase.CONFIGURING_ACCESS, {}),
    (Phase.MASKING, {"masking": {"database": "crm", "hashKeySecretRef": {"name": SECRET, "key": "hash-key"},
                                 "rules": [{"table": "customers", "column": "email", "strategy": "hash"}]}}),
    (Phase.RUNNING_HOOKS, {"hooks": {"postRestore": [{"name": "sql", "sql": "SELECT 1"}]}}),
    (Phase.VERIFYING, {}),
    (Phase.SNAPSHOTTING_OUTPUT, {"output": {"snapshot": {"identifier": "orders-{date}"}}}),
    (Phase.PUBLISHING, {"connectionSecret": {"name": "staging-connection"}}),
]


@pytest.mark.parametrize(("phase", "changes"), LATER_PHASES, ids=[phase.value for phase, _ in LATER_PHASES])
def test_a_cluster_someone_else_made_under_the_restores_name_is_never_touched(at, phase, changes):
    """The restored cluster deleted and made again by someone else (no UID tag): no password is set on it, no
    connection is made to it, no snapshot or Secret is made of it; the restore fails TargetTaken and leaves it."""
    run = at(phase, {**SECRET_REF, **changes})
    run.secrets.add(SECRET, {"password": PASSWORD, "hash-key": "a-hash-key-of-32-bytes-at-least!"})
    run.target.clusters[TARGET]["TagList"] = [{"Key": "team", "Value": "other"}]
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "TargetTaken", outcome
    assert "lacks the tag dbrestore.io/restore-uid" in outcome.message
    assert modify_calls(run) == []
    status = run.run()
    assert (status.phase, status.failure.reason) == (Phase.FAILED, "TargetTaken")
    assert TARGET in run.target.clusters and not run.cloud.calls_to("delete_cluster")
    assert not run.cloud.calls_to("delete_instance") and not run.cloud.calls_to("create_cluster_snapshot")
    assert run.secrets.writes == []


# --- nothing asked: both phases pass straight on ------------------------------------------------------------------


def test_without_database_access_both_phases_pass_straight_through_without_reading_a_password(restore):
    run = restore()
    run.run()
    assert run.phase == Phase.SUCCEEDED
    assert [Phase.CONFIGURING_ACCESS, Phase.VERIFYING, Phase.PUBLISHING, Phase.CLEANING_UP] == run.phases[-5:-1]
    advances = {o.message for o in run.outcomes if isinstance(o, Advance)}
    assert {"no database access requested", "no database verification requested"} <= advances
    assert run.secrets.reads == [] and run.secrets_manager.reads == []
    assert modify_calls(run) == []
    assert run.status.users == [] and run.status.connection_secrets == [] and run.status.verification is None
    assert run.status.master_user_secret_arn is None


# --- no master password -------------------------------------------------------------------------------------------

ACCESS_WITHOUT_MASTER_PASSWORD = {
    "users": {"users": [{"name": "app", "passwordSecretRef": {"name": "app-db", "key": "password"}}]},
    "verification": {"verification": {"queries": [{"sql": "SELECT 1"}]}},
    "connectionSecret": {"connectionSecret": {"name": "staging-db"}},
}


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("asked", ACCESS_WITHOUT_MASTER_PASSWORD.values(), ids=ACCESS_WITHOUT_MASTER_PASSWORD)
def test_database_access_without_master_password_fails_naming_the_field(at, phase, asked):
    run = at(phase, {**SECRET_REF, **asked})
    # A spec that got past admission without masterPassword (model_copy does not validate): the step still refuses.
    run.spec = run.spec.model_copy(update={"master_password": None})
    run.secrets.add("app-db", {"password": PASSWORD})
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "MasterPasswordRequired"
    assert "spec.masterPassword" in outcome.message
    assert run.phase == Phase.CLEANING_UP_AFTER_FAILURE and run.status.failure.phase == phase
    assert modify_calls(run) == [] and run.secrets.reads == []
    assert_password_never_shown(run)


# --- masterPassword.secretRef -------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_absent_secret_is_waited_for_then_a_refused_connection_retries_with_backoff_until_timeout(
    restore, source, closed_port, engine
):
    source.add_snapshot("prod-mysql-2025-03-01", "prod-mysql", engine="aurora-mysql", engine_version="8.0")
    snapshot = {"aurora-postgresql": None, "aurora-mysql": "prod-mysql-2025-03-01"}[engine]
    changes = {"target": {"port": closed_port}, "timeout": "8m", **SECRET_REF}
    if snapshot:
        changes["source"] = {"snapshotIdentifier": snapshot}
    run = restore(changes)
    run.target.endpoint_host = LOOPBACK
    run.run_until(Phase.CONFIGURING_ACCESS)

    for _ in range(2):
        outcome = run.step()
        assert outcome == Wait(f"waiting for Secret team-a/{SECRET} (spec.masterPassword.secretRef)")
    assert run.phase == Phase.CONFIGURING_ACCESS
    assert run.status.message == f"waiting for Secret team-a/{SECRET} (spec.masterPassword.secretRef)"

    run.secrets.add(SECRET, {"password": PASSWORD})
    outcome = run.step()
    assert isinstance(outcome, Wait) and outcome.backoff
    assert outcome.message.startswith(unreachable(closed_port))
    assert run.phase == Phase.CONFIGURING_ACCESS

    run.run()
    assert run.phase == Phase.FAILED
    assert run.status.failure.reason == "Timeout" and run.status.failure.phase == Phase.CONFIGURING_ACCESS
    assert "spec.timeout (8m)" in run.status.failure.message
    retries = run.outcomes[run.outcomes.index(outcome) : -2]  # then Timeout, then the cleanup's Advance
    assert len(retries) > 3
    assert all(isinstance(o, Wait) and o.backoff and o.message.startswith(unreachable(closed_port)) for o in retries)
    assert modify_calls(run) == [], "no password is set on a database the operator cannot reach"
    assert_password_never_shown(run)


@pytest.mark.parametrize("engine", ENGINES)
def test_verifying_waits_for_the_secret_then_retries_a_refused_connection(at, closed_port, engine):
    run = at(Phase.VERIFYING, {**SECRET_REF, "verification": {"database": "orders", "queries": [{"sql": "SELECT 1"}]}},
             engine=engine)
    assert run.step() == Wait(f"waiting for Secret team-a/{SECRET} (spec.masterPassword.secretRef)")
    run.secrets.add(SECRET, {"password": PASSWORD})
    for _ in range(2):
        outcome = run.step()
        assert isinstance(outcome, Wait) and outcome.backoff
        assert outcome.message.startswith(unreachable(closed_port))
    assert run.phase == Phase.VERIFYING
    assert run.status.verification is None and run.status.connection_secrets == [] and run.secrets.writes == []
    assert_password_never_shown(run)


@pytest.mark.parametrize("phase", PHASES)
def test_secret_without_the_key_fails_naming_the_secret_and_the_key(at, phase):
    run = at(phase, SECRET_REF)
    run.secrets.add(SECRET, {"passwd": PASSWORD})
    outcome = run.step()
    assert outcome == Fail(
        "SecretKeyMissing", f"spec.masterPassword.secretRef: Secret team-a/{SECRET} has no key 'password'"
    )
    assert run.phase == Phase.CLEANING_UP_AFTER_FAILURE and run.status.failure.reason == "SecretKeyMissing"
    assert_password_never_shown(run)


def test_secret_with_an_empty_key_fails(at):
    run = at(Phase.CONFIGURING_ACCESS, SECRET_REF)
    run.secrets.add(SECRET, {"password": "", "old-password": PASSWORD})
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "SecretKeyEmpty"
    assert f"Secret team-a/{SECRET}" in outcome.message and "'password'" in outcome.message
    assert_password_never_shown(run)


# --- masterPassword.secretsManagerSecretId ------------------------------------------------------------------------


@pytest.mark.parametrize("phase", PHASES)
def test_absent_secrets_manager_secret_is_waited_for(at, phase):
    run = at(phase, FROM_SECRETS_MANAGER)
    for _ in range(2):
        assert run.step() == Wait(
            f"waiting for Secrets Manager secret {SM_ID!r} in {SOURCE_REGION} "
            f"(spec.masterPassword.secretsManagerSecretId)"
        )
    assert run.phase == phase and run.secrets_manager.reads == [SM_ID, SM_ID]


@pytest.mark.parametrize(
    "value",
    [
        '{"username": "postgres", "pass": "%s"}' % PASSWORD,
        '{"password": 12345}',
        '{"password": ""}',
        ' {"password": null, "note": "%s"}' % PASSWORD,
    ],
    ids=["no-password-key", "number", "empty", "null"],
)
def test_json_secret_without_a_password_string_fails_as_malformed(at, value):
    run = at(Phase.CONFIGURING_ACCESS, FROM_SECRETS_MANAGER)
    run.secrets_manager.put(SM_ID, value)
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "SecretMalformed"
    assert SM_ID in outcome.message and '"password"' in outcome.message
    assert_password_never_shown(run)


def test_empty_secrets_manager_secret_fails_as_malformed(at):
    run = at(Phase.CONFIGURING_ACCESS, FROM_SECRETS_MANAGER)
    run.secrets_manager.put(SM_ID, "")
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "SecretMalformed" and SM_ID in outcome.message


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize(
    "value", [PASSWORD, '{"username": "postgres", "password": "%s"}' % PASSWORD], ids=["plain", "json"]
)
def test_secrets_manager_password_plain_or_json_reaches_the_connection_attempt(at, closed_port, phase, value):
    run = at(phase, FROM_SECRETS_MANAGER)
    run.secrets_manager.put(SM_ID, value)
    outcome = run.step()
    assert isinstance(outcome, Wait) and outcome.backoff and outcome.message.startswith(unreachable(closed_port))
    assert run.phase == phase
    assert_password_never_shown(run)


def test_plain_password_starting_with_a_brace_is_a_plain_password(at, closed_port):
    run = at(Phase.CONFIGURING_ACCESS, FROM_SECRETS_MANAGER)
    run.secrets_manager.put(SM_ID, "{" + PASSWORD)
    outcome = run.step()
    assert isinstance(outcome, Wait) and outcome.message.startswith(unreachable(closed_port)), outcome


# --- masterPassword.manageInSecretsManager ------------------------------------------------------------------------


def test_rds_is_asked_once_to_manage_the_password_then_its_secret_is_read(at, closed_port):
    run = at(Phase.CONFIGURING_ACCESS, MANAGED)
    run.target.ticks_by_kind["modify"] = 2
    creating = Wait("waiting for RDS to create the master password in Secrets Manager")

    assert run.step() == creating
    [call] = modify_calls(run)
    assert call.params == {"identifier": TARGET, "ManageMasterUserPassword": True} and call.error is None
    for _ in range(2):  # the cluster is modifying: asking again would be refused
        assert run.step() == creating
    assert len(modify_calls(run)) == 1

    waiting = run.step()
    arn = run.target.clusters[TARGET]["MasterUserSecret"]["SecretArn"]
    assert waiting == Wait(
        f"waiting for Secrets Manager secret {arn!r} in {SOURCE_REGION} "
        f"(spec.masterPassword.manageInSecretsManager (the secret RDS manages))"
    )
    run.secrets_manager.put(arn, '{"username": "postgres", "password": "%s"}' % PASSWORD)
    outcome = run.step()
    assert isinstance(outcome, Wait) and outcome.backoff and outcome.message.startswith(unreachable(closed_port))
    assert len(modify_calls(run)) == 1 and run.secrets_manager.reads == [arn, arn]
    assert_password_never_shown(run)


@pytest.mark.parametrize("phase", PHASES)
def test_rds_is_asked_to_manage_the_password_only_while_the_cluster_is_available(at, phase):
    run = at(phase, MANAGED)
    run.target.ticks_by_kind["modify"] = 100  # no MasterUserSecret shows up during this test
    cluster = run.target.clusters[TARGET]
    creating = Wait("waiting for RDS to create the master password in Secrets Manager")
    for status in ("backing-up", "modifying", "upgrading"):
        cluster["Status"] = status
        assert run.step() == creating
    assert modify_calls(run) == []

    for turn in range(1, 4):  # RDS took the request but shows no secret yet: once per poll, never more
        cluster["Status"] = "available"
        assert run.step() == creating
        assert len(modify_calls(run)) == turn
    assert all(c.error is None for c in modify_calls(run))
    assert run.phase == phase and run.secrets_manager.reads == []


def test_malformed_rds_managed_secret_is_blamed_on_the_field_the_spec_sets(at):
    run = at(Phase.CONFIGURING_ACCESS, MANAGED)
    run.target.ticks_by_kind["modify"] = 0
    run.step()
    run.step()  # the cluster settles with its MasterUserSecret; the secret's value is not there yet
    run.secrets_manager.put(run.target.clusters[TARGET]["MasterUserSecret"]["SecretArn"], '{"pwd": "x"}')
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "SecretMalformed"
    assert "secretsManagerSecretId" not in outcome.message and "manageInSecretsManager" in outcome.message


# --- the cluster went away ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", PHASES)
def test_a_cluster_deleted_behind_the_operators_back_is_reported_not_a_crash(at, phase):
    run = at(phase, SECRET_REF)
    run.secrets.add(SECRET, {"password": PASSWORD})
    run.target.clusters.clear()
    outcome = run.step()
    assert isinstance(outcome, (Fail, Wait)) and TARGET in outcome.message


# --- the scan: no scenario ever shows the password ----------------------------------------------------------------


def secret_ref_then_refused(run: RestoreRun) -> None:
    run.step()
    run.secrets.add(SECRET, {"password": PASSWORD})
    run.step()
    run.step()


def secret_key_missing(run: RestoreRun) -> None:
    run.secrets.add(SECRET, {"Password": PASSWORD, "user": "postgres"})
    run.step()


def secrets_manager_malformed(run: RestoreRun) -> None:
    run.secrets_manager.put(SM_ID, '{"pwd": "%s"}' % PASSWORD)
    run.step()


def secrets_manager_plain_refused(run: RestoreRun) -> None:
    run.step()
    run.secrets_manager.put(SM_ID, PASSWORD)
    run.step()
    run.step()


def managed_refused(run: RestoreRun) -> None:
    run.target.ticks_by_kind["modify"] = 0
    run.step()
    run.step()
    arn = run.target.clusters[TARGET]["MasterUserSecret"]["SecretArn"]
    run.secrets_manager.put(arn, '{"password": "%s"}' % PASSWORD)
    run.step()


def refused_until_timeout(run: RestoreRun) -> None:
    run.secrets.add(SECRET, {"password": PASSWORD})
    while not run.phase.is_terminal:
        run.step()


SCENARIOS = {
    "secret-ref-then-refused": (SECRET_REF, secret_ref_then_refused),
    "secret-key-missing": (SECRET_REF, secret_key_missing),
    "secrets-manager-malformed": (FROM_SECRETS_MANAGER, secrets_manager_malformed),
    "secrets-manager-plain-refused": (FROM_SECRETS_MANAGER, secrets_manager_plain_refused),
    "managed-refused": (MANAGED, managed_refused),
    "refused-until-timeout": ({**SECRET_REF, "timeout": "3m"}, refused_until_timeout),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS)
def test_the_password_never_appears_in_outcomes_status_or_failure(at, scenario, phase, engine):
    changes, drive = scenario
    run = at(phase, {**changes, "users": [{"name": "app", "passwordSecretRef": {"name": SECRET, "key": "password"}}]},
             engine=engine)
    drive(run)
    assert run.outcomes, "the scenario ran no step"
    assert_password_never_shown(run)


def test_a_user_name_too_long_for_mysql_fails_configuring_access_before_any_connection(at, closed_port):
    """Preflight refuses it first; should a restore get here anyway (a pinned engine changed), no connection is
    tried and the password is not changed."""
    name = "u" * 33
    run = at(Phase.CONFIGURING_ACCESS, {**SECRET_REF, "users": [
        {"name": name, "passwordSecretRef": {"name": SECRET, "key": "password"}}]}, engine="aurora-mysql")
    run.secrets.add(SECRET, {"password": PASSWORD})
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "InvalidUserName"
    assert outcome.message == f"spec.users[0].name: MySQL user names are at most 32 characters; {name!r} has 33"
    assert run.cloud.mutations == []


# --- a master password RDS would refuse -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password, problem",
    [
        ("Short-1", "8 to 41 characters; this one is shorter"),
        ("L" * 42, "8 to 41 characters; this one is longer"),
        ("with space-Pass1", "printable ASCII characters except"),
        ("slash/in-Pass1", "printable ASCII characters except"),
        ('quote"in-Pass1', "printable ASCII characters except"),
        ("at@in-Pass1", "printable ASCII characters except"),
        ("ümlaut-Pass1", "printable ASCII characters except"),
    ],
)
def test_a_master_password_rds_refuses_fails_naming_the_field_never_the_value(at, password, problem):
    """RDS would answer ModifyDBCluster with InvalidParameterValue; the restore fails first, saying which rule."""
    run = at(Phase.CONFIGURING_ACCESS, SECRET_REF)
    run.secrets.add(SECRET, {"password": password})
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "InvalidMasterPassword"
    assert outcome.message.startswith("spec.masterPassword.secretRef: ") and problem in outcome.message
    assert modify_calls(run) == []
    assert_password_never_shown(run, password)


def test_a_secrets_manager_master_password_rds_refuses_fails_too(at):
    run = at(Phase.CONFIGURING_ACCESS, FROM_SECRETS_MANAGER)
    run.secrets_manager.put(SM_ID, json.dumps({"password": "no"}))
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "InvalidMasterPassword"
    assert outcome.message.startswith("spec.masterPassword.secretsManagerSecretId: ")


# Verification queries: one read-only statement each, with a timeout and a row cap. What the servers refuse is
# tested on real ones (tests/e2e/test_verification.py); here: how their errors are told apart and reported.

class _PgError(Exception):
    def __init__(self, message: str, sqlstate: str):
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "error, problem",
    [
        (_PgError("cannot insert multiple commands into a prepared statement", "42601"), "refused"),
        (_PgError("cannot execute INSERT in a read-only transaction", "25006"), "refused"),
        (_PgError("canceling statement due to statement timeout", "57014"), "timeout"),
        (_PgError('syntax error at or near "SELEC"', "42601"), None),
        (_PgError('relation "nope" does not exist', "42P01"), None),
    ],
)
def test_postgres_verification_problems(error, problem):
    assert postgres.verification_problem(error) == problem


@pytest.mark.parametrize(
    "code, problem",
    [(1064, "refused"), (1792, "refused"), (1969, "timeout"), (3024, "timeout"), (2013, "timeout"), (1146, None)],
)
def test_mysql_verification_problems(code, problem):
    import pymysql

    from aurora_restore.db import mysql

    assert mysql.verification_problem(pymysql.err.OperationalError(code, "server words")) == problem


def test_verification_timeout_is_a_positive_duration():
    from pydantic import ValidationError

    from aurora_restore.api.models import Verification

    assert Verification.model_validate({"timeout": "1m30s"}).timeout_seconds == 90
    assert Verification.model_validate({}).timeout_seconds is None
    for bad in ("0s", "soon", "5"):
        with pytest.raises(ValidationError):
            Verification.model_validate({"timeout": bad})


class _FakeSqlModule:
    """Stands in for db.postgres: records each query with its timeout and row cap, answers from `answers`."""

    QUERY_ERRORS = (_PgError,)

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list[tuple[str, int | None, int | None]] = []
        self.endpoints = []
        self.users = []
        self.verifier_calls = []

    def connect(self, endpoint, credentials, database=None):
        import contextlib

        self.endpoints.append(endpoint)
        self.users.append(credentials.username)
        return contextlib.nullcontext(object())

    def create_verifier(self, conn, name, password, database):
        self.verifier_calls.append(("create", name, database))

    def drop_verifier(self, conn, name, database):
        self.verifier_calls.append(("drop", name, database))

    def count_rows_read_only(self, conn, query, *, timeout=None, max_rows=None):
        self.calls.append((query, timeout, max_rows))
        answer = self.answers.get(query, 1)
        if isinstance(answer, Exception):
            raise answer
        return min(answer, max_rows) if max_rows is not None else answer

    verification_problem = staticmethod(postgres.verification_problem)
    is_deterministic = staticmethod(postgres.is_deterministic)


def _verify_with(at, monkeypatch, answers: dict, verification: dict):
    from aurora_restore.steps import verify

    fake = _FakeSqlModule(answers)
    monkeypatch.setattr(verify, "sql_module", lambda engine: fake)
    run = at(Phase.VERIFYING, {**SECRET_REF, "verification": verification})
    run.secrets.add(SECRET, {"password": PASSWORD})
    return run, fake, run.step()


def test_verification_passes_its_timeout_and_a_row_cap(at, monkeypatch):
    from aurora_restore.steps.verify import MAX_ROWS

    run, fake, outcome = _verify_with(at, monkeypatch, {"SELECT id FROM orders": 3}, {
        "timeout": "5s", "queries": [{"sql": "SELECT id FROM orders", "expectRows": 3}, {"sql": "SELECT 2"}]})
    assert isinstance(outcome, Advance), outcome
    assert fake.calls == [("SELECT 1", 5, None), ("SELECT id FROM orders", 5, 4), ("SELECT 2", 5, MAX_ROWS)]
    # the client waits longer than the server's statement timeout, so the server's words come first
    assert fake.endpoints[1].timeouts.statement > 5  # [0] is the master's connection that creates the verifier
    assert fake.users == ["postgres", "aurora_restore_verifier", "postgres"]
    assert [call[0] for call in fake.verifier_calls] == ["create", "drop"]


def test_verification_timeout_defaults_to_the_statement_timeout(at, monkeypatch):
    run, fake, outcome = _verify_with(at, monkeypatch, {}, {"queries": [{"sql": "SELECT 2"}]})
    assert isinstance(outcome, Advance), outcome
    assert fake.calls[1][1] == 60


@pytest.mark.parametrize(
    "answer, reason, words",
    [
        (_PgError("cannot insert multiple commands into a prepared statement", "42601"), "VerificationQueryRefused",
         "spec.verification.queries[1] was refused: verification runs one read-only statement per query: cannot "
         "insert multiple commands into a prepared statement"),
        (_PgError("cannot execute DROP TABLE in a read-only transaction", "25006"), "VerificationQueryRefused",
         "spec.verification.queries[1] was refused"),
        (_PgError("canceling statement due to statement timeout", "57014"), "VerificationTimedOut",
         "spec.verification.queries[1] ran longer than 2s: canceling statement due to statement timeout"),
        (_PgError(f"password {PASSWORD} wrong\nsecond line", "XX000"), "VerificationFailed",
         "spec.verification.queries[1] failed: password ******** wrong"),
        (7, "VerificationFailed", "spec.verification.queries[1] returned more than 5 row(s), expected 5"),
    ],
)
def test_a_refused_or_slow_verification_query_fails_naming_its_index(at, monkeypatch, answer, reason, words):
    run, fake, outcome = _verify_with(at, monkeypatch, {"bad": answer}, {
        "timeout": "2s", "queries": [{"sql": "SELECT 2"}, {"sql": "bad", "expectRows": 5}, {"sql": "never"}]})
    assert isinstance(outcome, Fail) and outcome.reason == reason, outcome
    assert outcome.message == words or outcome.message.startswith(words)
    assert [call[0] for call in fake.calls] == ["SELECT 1", "SELECT 2", "bad"]
    assert_password_never_shown(run)
