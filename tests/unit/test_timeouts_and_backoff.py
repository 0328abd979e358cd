"""Backoff with full jitter, the first turn after a restart, the timeouts of every client, and database errors
that no retry can fix."""

import random
from contextlib import contextmanager
from types import SimpleNamespace

import boto3
import psycopg
import pymysql
import pytest

from aurora_restore import driver
from aurora_restore.api.phase import Phase
from aurora_restore.aws.clients import AwsClients
from aurora_restore.db import mysql, postgres
from aurora_restore.db.connection import Credentials, Endpoint, Timeouts
from aurora_restore.errors import RetryableError, TerminalError
from aurora_restore.k8s.api_client import TimedApiClient
from aurora_restore.settings import Settings
from aurora_restore.steps.access import MasterAccess, Missing, configure_user
from aurora_restore.steps.publish import write_connection_secrets
from aurora_restore.wakeups import Wakeups

from .conftest import SNAPSHOT

USERS_SECRET = {"name": "app-db", "key": "password"}
APP_PASSWORD = "s3cret-app-Password!"
LONG_NAME = "a" * 40


# --- backoff -------------------------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_spread_between_zero_and_an_exponential_ceiling():
    settings = Settings(poll_interval_seconds=10, retry_backoff_max_seconds=300)
    rng = random.Random(7)
    for errors, ceiling in [(1, 20), (2, 40), (3, 80), (5, 300), (40, 300)]:
        delays = [driver.backoff(settings, errors, rng) for _ in range(500)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > 0.9 * ceiling and min(delays) < 0.1 * ceiling  # spread over the whole range
        assert len({round(delay, 6) for delay in delays}) > 450  # not in lock-step


def test_backoff_draws_from_the_injected_generator():
    settings = Settings(poll_interval_seconds=10, retry_backoff_max_seconds=300)
    assert [driver.backoff(settings, 3, random.Random(1)) for _ in range(2)] == [random.Random(1).uniform(0, 80)] * 2


def test_the_first_turn_after_a_restart_waits_a_random_part_of_the_poll_interval():
    settings = Settings(poll_interval_seconds=30)
    delays = [driver.first_turn_delay(settings, random.Random(seed)) for seed in range(200)]
    assert all(0 <= delay <= 30 for delay in delays) and max(delays) - min(delays) > 25


class Stopped:
    """kopf's stop flag: stops after the waits recorded reach `turns`."""

    def __init__(self, turns: int):
        self.waits: list[float] = []
        self.turns = turns

    def __bool__(self) -> bool:
        return len(self.waits) >= self.turns

    async def wait(self, timeout=None):
        self.waits.append(timeout)


@pytest.mark.parametrize(("status", "jittered"), [({"phase": "CopyingSnapshot"}, True), ({}, False)],
                         ids=["under-way", "new"])
def test_a_restore_under_way_waits_before_its_first_turn_a_new_one_does_not(monkeypatch, status, jittered):
    import asyncio
    import logging

    turns = []
    monkeypatch.setattr(driver, "step_once", lambda runtime, obj, logger, errors: turns.append(obj) or (5.0, 0))
    obj = {"metadata": {"name": "r", "namespace": "n"}, "status": status}
    runtime = SimpleNamespace(settings=Settings(poll_interval_seconds=30), rng=random.Random(3),
                              restores=SimpleNamespace(get=lambda namespace, name: obj), turn=_no_turn,
                              wakeups=Wakeups())
    stopped = Stopped(turns=2)
    asyncio.run(driver.drive(runtime, "n", "r", stopped, logging.getLogger("test")))
    if jittered:
        assert len(turns) == 1 and stopped.waits == [random.Random(3).uniform(0, 30), 5.0]
    else:
        assert len(turns) == 2 and stopped.waits == [5.0, 5.0]


@contextmanager
def _no_turn(namespace, name):
    yield True  # granted: this replica leads


# --- timeouts ------------------------------------------------------------------------------------------------------


def test_aws_clients_and_the_sts_clients_of_assumed_roles_get_the_timeouts(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    session = boto3.session.Session()
    clients = AwsClients(session, pool_size=4, connect_timeout=3, read_timeout=17)
    for client in (clients.client("rds", "eu-west-1"),
                   clients.client("kms", "eu-west-1", "arn:aws:iam::111122223333:role/r", "ext")):
        assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (3, 17)
        assert client.meta.config.retries["total_max_attempts"] == 4
    # what IRSA's own STS client (botocore's credential provider) is created with
    default = session._session.get_default_client_config()
    assert (default.connect_timeout, default.read_timeout) == (3, 17)
    sts = session._session.create_client("sts", region_name="eu-west-1")
    assert (sts.meta.config.connect_timeout, sts.meta.config.read_timeout) == (3, 17)


def test_the_runtime_builds_its_clients_from_the_settings(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(aws_connect_timeout_seconds=4, aws_read_timeout_seconds=21)
    runtime = driver.Runtime.create(settings, TimedApiClient(_configuration(), 7))
    rds = runtime.aws.client("rds", "eu-west-1")
    assert (rds.meta.config.connect_timeout, rds.meta.config.read_timeout) == (4, 21)


def _configuration():
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:1"
    return configuration


def test_every_kubernetes_request_without_its_own_timeout_gets_the_setting(monkeypatch):
    from kubernetes import client

    api_client = TimedApiClient(_configuration(), 7.5)
    seen = []
    monkeypatch.setattr(api_client.rest_client, "request", lambda *a, **kw: seen.append(kw["_request_timeout"]) or (
        _ for _ in ()).throw(RuntimeError("stop")))
    for call in (lambda: client.CoreV1Api(api_client).read_namespaced_secret("s", "n"),
                 lambda: client.CoordinationV1Api(api_client).read_namespaced_lease("l", "n"),
                 lambda: client.CoreV1Api(api_client).read_namespaced_secret("s", "n", _request_timeout=2)):
        with pytest.raises(RuntimeError):
            call()
    assert seen == [7.5, 7.5, 2]


def test_kopfs_own_requests_get_the_kubernetes_timeout(monkeypatch):
    import asyncio

    import kopf

    from aurora_restore import main

    monkeypatch.setenv("AURORA_RESTORE_KUBERNETES_TIMEOUT_SECONDS", "12")
    built = {}
    monkeypatch.setattr(main, "load_kubernetes_config",
                        lambda pool, timeout, replica: built.setdefault("timeout", timeout))
    monkeypatch.setattr(main.Runtime, "create", classmethod(lambda cls, settings, api, leading=None, accepting=None: "runtime"))
    settings = kopf.OperatorSettings()
    memo = kopf.Memo()

    async def start():
        await main.configure(settings=settings, memo=memo, logger=__import__("logging").getLogger("t"))

    asyncio.run(start())
    assert settings.networking.request_timeout == 12 and settings.networking.connect_timeout == 10
    assert built["timeout"] == 12


def test_database_connections_get_the_connect_and_statement_timeouts(monkeypatch):
    seen = {}
    monkeypatch.setattr(psycopg, "connect", lambda **params: seen.setdefault("postgres", params))
    monkeypatch.setattr(pymysql, "connect", lambda **params: seen.setdefault("mysql", params))
    endpoint = Endpoint("aurora-postgresql", "db.example", 5432, "postgres", timeouts=Timeouts(connect=4, statement=45))
    postgres.connect(endpoint, Credentials("master", "pw"))
    mysql.connect(endpoint, Credentials("master", "pw"))
    assert seen["postgres"]["connect_timeout"] == 4
    assert seen["postgres"]["options"] == "-c statement_timeout=45000"
    assert seen["postgres"]["tcp_user_timeout"] == 49000
    assert (seen["mysql"]["connect_timeout"], seen["mysql"]["read_timeout"], seen["mysql"]["write_timeout"]) == (
        4, 45, 45)


# --- database errors no retry can fix --------------------------------------------------------------------------------


def fake_module(real, error: Exception, fails_in: str = "upsert_user"):
    """The engine module with the connection faked and one statement failing as the server would answer."""

    @contextmanager
    def connect(endpoint, credentials, database=None):
        yield object()

    def fail(*args, **kwargs):
        raise error

    def ok(*args, **kwargs):
        return None

    return SimpleNamespace(
        connect=connect, QUERY_ERRORS=real.QUERY_ERRORS, is_deterministic=real.is_deterministic,
        NOT_VALID_PASSWORD=getattr(real, "NOT_VALID_PASSWORD", None),
        upsert_user=fail if fails_in == "upsert_user" else ok, grant=fail if fails_in == "grant" else ok,
    )


def user_run(restore, name: str = "app"):
    run = restore({"users": [{"name": "other", "passwordSecretRef": USERS_SECRET},
                             {"name": name, "passwordSecretRef": USERS_SECRET, "databases": ["orders"]}],
                   "masterPassword": {"secretRef": {"name": "master", "key": "password"}}})
    run.secrets.add("app-db", {"password": APP_PASSWORD})
    return run


ACCESS = MasterAccess(Endpoint("aurora-mysql", "db.example", 3306, "orders"), Credentials("admin", "master-pw"))


def mysql_error(code: int, text: str) -> pymysql.MySQLError:
    return pymysql.err.OperationalError(code, text)


def test_a_user_name_mysql_refuses_fails_naming_the_field_without_the_password(restore):
    run = user_run(restore, LONG_NAME)
    error = mysql_error(1470, f"String '{LONG_NAME}' is too long for user name (should be no longer than 32)")
    with pytest.raises(TerminalError) as raised:
        configure_user(run.context(), ACCESS, fake_module(mysql, error), run.spec.users[1], 1)
    assert raised.value.reason == "DatabaseRefused"
    assert raised.value.message.startswith(f"spec.users[1].name: the database refused user {LONG_NAME!r}: ")
    assert "should be no longer than 32" in raised.value.message and APP_PASSWORD not in raised.value.message


def test_a_password_the_policy_refuses_names_the_password_secret_and_never_the_password(restore):
    run = user_run(restore)
    error = mysql_error(1819, f"Your password does not satisfy the current policy requirements {APP_PASSWORD}")
    with pytest.raises(TerminalError) as raised:
        configure_user(run.context(), ACCESS, fake_module(mysql, error), run.spec.users[1], 1)
    assert raised.value.message.startswith("spec.users[1].passwordSecretRef: ")
    assert APP_PASSWORD not in raised.value.message and "********" in raised.value.message


def test_a_grant_postgresql_refuses_for_good_names_the_database(restore):
    run = user_run(restore)
    error = psycopg.errors.InsufficientPrivilege("permission denied for database orders")
    with pytest.raises(TerminalError) as raised:
        configure_user(run.context(), ACCESS, fake_module(postgres, error, "grant"), run.spec.users[1], 1)
    assert raised.value.message.startswith("spec.users[1].databases ('orders'): the database refused user 'app'")


def test_a_users_password_secret_not_there_yet_is_named_by_the_users_index(restore):
    run = user_run(restore)
    run.secrets = type(run.secrets)(run.namespace)  # app-db is not applied yet
    with pytest.raises(Missing) as raised:
        configure_user(run.context(), ACCESS, fake_module(mysql, None), run.spec.users[1], 1)
    assert str(raised.value) == "waiting for Secret team-a/app-db (spec.users[1].passwordSecretRef)"


def test_a_user_without_databases_on_a_cluster_without_a_default_one_is_named_by_its_index(restore):
    run = user_run(restore)
    no_default = MasterAccess(Endpoint("aurora-mysql", "db.example", 3306, None), ACCESS.credentials)
    with pytest.raises(TerminalError) as raised:
        configure_user(run.context(), no_default, fake_module(mysql, None), run.spec.users[0], 0)
    assert raised.value.reason == "DatabaseRequired"
    assert raised.value.message.startswith("spec.users[0].databases is required")


def test_publishing_names_a_users_missing_password_secret_by_its_index(restore):
    run = restore({"users": [{"name": "other", "passwordSecretRef": {"name": "other-db", "key": "password"}},
                             {"name": "app", "passwordSecretRef": USERS_SECRET, "connectionSecret": {"name": "app"}}],
                   "masterPassword": {"secretRef": {"name": "master", "key": "password"}}})
    cluster = {"Engine": "aurora-mysql", "Endpoint": "db.example", "Port": 3306}
    with pytest.raises(Missing) as raised:
        write_connection_secrets(run.context(), cluster, ACCESS)
    assert str(raised.value) == "waiting for Secret team-a/app-db (spec.users[1].passwordSecretRef)"


@pytest.mark.parametrize(
    ("real", "error"),
    [(mysql, mysql_error(2013, "Lost connection to MySQL server during query")),
     (mysql, mysql_error(1213, "Deadlock found when trying to get lock")),
     (postgres, psycopg.errors.SerializationFailure("could not serialize access")),
     (postgres, psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))],
    ids=["mysql-lost-connection", "mysql-deadlock", "postgres-serialization", "postgres-statement-timeout"],
)
def test_errors_that_may_pass_are_retried(restore, real, error):
    run = user_run(restore)
    with pytest.raises(RetryableError) as raised:
        configure_user(run.context(), ACCESS, fake_module(real, error), run.spec.users[1], 1)
    assert raised.value.reason == "DatabaseError"


def test_sqlstate_classes_decide_for_postgresql():
    assert postgres.is_deterministic(psycopg.errors.NameTooLong("x"))
    assert postgres.is_deterministic(psycopg.errors.SyntaxError("x"))
    assert postgres.is_deterministic(psycopg.errors.InvalidTextRepresentation("x"))
    assert not postgres.is_deterministic(psycopg.errors.AdminShutdown("x"))
    assert not postgres.is_deterministic(psycopg.OperationalError("no sqlstate"))


# --- known limits, before any connection --------------------------------------------------------------------------


def test_a_mysql_user_name_over_32_characters_fails_in_preflight_before_anything_is_done(restore, source, cloud):
    source.snapshots[SNAPSHOT]["Engine"] = "aurora-mysql"
    run = user_run(restore, LONG_NAME)
    status = run.run()
    assert (status.phase, status.failure.phase, status.failure.reason) == (
        Phase.FAILED, Phase.PREFLIGHT, "InvalidUserName")
    assert (f"spec.users[1].name: MySQL user names are at most 32 characters; {LONG_NAME!r} has 40"
            in status.failure.message)
    assert cloud.mutations == []


def test_the_engine_limits_of_user_names():
    """The CRD's pattern keeps names within 63 ASCII characters already; MySQL allows fewer."""
    assert mysql.user_name_problem("a" * 32) is None and postgres.user_name_problem("a" * 63) is None
    assert postgres.user_name_problem("é" * 32) == ("PostgreSQL role names are at most 63 bytes (longer ones are "
                                                    "cut short); " + repr("é" * 32) + " has 64")


def test_names_within_the_limits_pass(restore):
    run = user_run(restore, "a" * 32)
    run.run_until(Phase.RESTORING_CLUSTER)
    assert not [check for check in run.status.preflight if not check.passed]


def test_a_failure_moves_on_to_its_cleanup_at_once():
    from aurora_restore.api.models import AuroraRestoreStatus
    from aurora_restore.steps.outcomes import Fail

    status = AuroraRestoreStatus(phase=Phase.CLEANING_UP_AFTER_FAILURE)
    assert driver._next_turn(Settings(), status, Fail("X", "x"), 3) == (0, 0)
