"""Verification that cannot write, on real PostgreSQL and MariaDB servers behind the simulated clusters: several
statements in one query and writes are refused by the database and change nothing, a query longer than
spec.verification.timeout fails naming it, a plain query passes. One source, several restores at once.

The queries run as the verification user the operator creates for each attempt and drops at its end: a statement
that a read-only transaction lets through (a table lock, a server setting) is refused by privilege, the user
is gone once the restore ended (Succeeded or Failed, and after a kill), and its password reached the server as a
hash only."""

import re

import pytest
from databases import ROWS, connect, create_secret, execute, make_database_source, statement_log, user_exists
from restores import create_restore, get_restore, wait_for_phase, wait_until

from aurora_restore.db.engines import VERIFIER_USER

SOURCE_PASSWORD = "source-Pa55word-1"
MASTER_PASSWORD = "restored-Master-2"

SLEEP = {"aurora-postgresql": "SELECT pg_sleep(5)", "aurora-mysql": "SELECT SLEEP(5)"}
# One row only when the query runs as the verification user.
AS_VERIFIER = {
    "aurora-postgresql": f"SELECT 1 WHERE current_user = '{VERIFIER_USER}'",
    "aurora-mysql": f"SELECT 1 FROM DUAL WHERE CURRENT_USER() = '{VERIFIER_USER}@%'",
}
# One statement that a read-only transaction lets through but a user that may only read may not run: an exclusive
# lock that would stall every application; a server-wide setting.
ESCAPE = {
    "aurora-postgresql": "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE",
    "aurora-mysql": "SET GLOBAL wait_timeout = 12345",
}
# name: (queries, expected reason or None for success, index named in the message)
CASES = {
    "multi": ([{"sql": "SELECT 1", "expectRows": 1}, {"sql": "SELECT 1; DROP TABLE orders"}],
              "VerificationQueryRefused", 1),
    "insert": ([{"sql": "INSERT INTO orders (id, item) VALUES (9, 'mocha')"}], "VerificationQueryRefused", 0),
    "create": ([{"sql": "CREATE TABLE intruder (i integer)"}], "VerificationQueryRefused", 0),
    "escape": ([{"sql": "ESCAPE"}], "VerificationQueryRefused", 0),
    "sleep": ([{"sql": "SELECT 1"}, {"sql": "SLEEP"}], "VerificationTimedOut", 1),
    "toomany": ([{"sql": "SELECT * FROM orders", "expectRows": 2}], "VerificationFailed", 0),
    "ok": ([{"sql": "SELECT * FROM orders", "expectRows": 3}, {"sql": "SELECT id FROM orders"},
            {"sql": "AS_VERIFIER", "expectRows": 1}], None, None),
}
ENGINE_SQL = {"SLEEP": SLEEP, "AS_VERIFIER": AS_VERIFIER, "ESCAPE": ESCAPE}
# A query that holds the restore in Verifying while the test kills the operator.
HOLD_SECONDS = 10
HOLD = {"aurora-postgresql": f"SELECT pg_sleep({HOLD_SECONDS})", "aurora-mysql": f"SELECT SLEEP({HOLD_SECONDS})"}
# Who runs the holding query, as the master user sees it (rds_superuser holds pg_monitor; MySQL: PROCESS).
HOLDER = {
    "aurora-postgresql": "SELECT usename FROM pg_stat_activity WHERE query LIKE 'SELECT pg\\_sleep(%%'",
    "aurora-mysql": "SELECT user FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(%%'",
}


@pytest.mark.parametrize("engine", ["aurora-postgresql", "aurora-mysql"])
def test_verification_runs_one_read_only_statement_within_its_timeout(
    api_client, aws, operator, namespace, uniq, db_ca_file, simulator, engine
):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "master", {"password": MASTER_PASSWORD})
    for name, (queries, _, _) in CASES.items():
        queries = [{**q, "sql": ENGINE_SQL[q["sql"]][engine] if q["sql"] in ENGINE_SQL else q["sql"]}
                   for q in queries]
        create_restore(api_client, namespace, name, {
            "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": f"{name}-{uniq}", "instances": {"count": 1}},
            "masterPassword": {"secretRef": {"name": "master", "key": "password"}},
            "verification": {"queries": queries, "timeout": "1s"},
        })

    for name, (_, reason, index) in CASES.items():
        status = wait_for_phase(api_client, namespace, name, {"Succeeded", "Failed"}, timeout=240)["status"]
        if reason is None:
            assert status["phase"] == "Succeeded", status
            assert status["verification"]["results"] == [
                {"index": 0, "rows": 3}, {"index": 1, "rows": 3}, {"index": 2, "rows": 1}]
        else:
            assert (status["phase"], status["failure"]["reason"], status["failure"]["phase"]) == (
                "Failed", reason, "Verifying"), status
            assert f"spec.verification.queries[{index}]" in status["failure"]["message"]
            assert MASTER_PASSWORD not in status["failure"]["message"]
            if name == "toomany":  # read at most expectRows + 1 rows
                assert "returned more than 2 row(s), expected 2" in status["failure"]["message"]
            if name == "escape":  # refused by privilege, not by the read-only transaction
                assert f"the verification user '{VERIFIER_USER}' may only read" in status["failure"]["message"]

        cluster = rds.describe_db_clusters(DBClusterIdentifier=f"{name}-{uniq}")["DBClusters"][0]
        with connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", MASTER_PASSWORD, "orders",
                     db_ca_file) as conn:
            assert sorted(execute(conn, "SELECT id, item FROM orders")) == ROWS, name  # nothing dropped or added
            tables = execute(conn, "SELECT table_name FROM information_schema.tables WHERE table_name = 'intruder'")
            assert tables == [], name
            assert not user_exists(engine, conn, VERIFIER_USER), f"{name}: the verification user was left behind"
            if name == "escape":
                assert_only_privilege_stopped(engine, conn)
        assert_verifier_password_sent_hashed(statement_log(simulator, f"{name}-{uniq}"), engine)


def assert_only_privilege_stopped(engine: str, conn) -> None:
    """The master user, in a read-only transaction as the verification query ran in, may run ESCAPE: what
    refused it was the verification user's privileges, not the transaction."""
    if engine == "aurora-postgresql":
        with conn.transaction(force_rollback=True):
            execute(conn, "SET TRANSACTION READ ONLY")
            execute(conn, ESCAPE[engine])
        return
    assert execute(conn, "SELECT @@GLOBAL.wait_timeout") != [(12345,)]  # the verification user changed nothing
    execute(conn, "START TRANSACTION READ ONLY")
    execute(conn, ESCAPE[engine])
    execute(conn, "ROLLBACK")
    assert execute(conn, "SELECT @@GLOBAL.wait_timeout") == [(12345,)]
    execute(conn, "SET GLOBAL wait_timeout = DEFAULT")


def assert_verifier_password_sent_hashed(log: str, engine: str) -> None:
    """The statements that gave the verification user its password are in the server's statement log, and each
    carried a SCRAM-SHA-256 verifier (PostgreSQL) or a mysql_native_password hash (MariaDB), never a password: the
    password is random per attempt, so the test cannot search for it, but it can see that no statement naming the
    user sent any other form. (The rest of the log holds the snapshot's load, with the source's own hashes.)"""
    lines = [line for line in log.splitlines() if VERIFIER_USER in line]
    if engine == "aurora-postgresql":
        setting = [line for line in lines if "PASSWORD" in line.upper()]
        assert setting and all(re.search(r"LOGIN PASSWORD 'SCRAM-SHA-256\$\d+:", line) for line in setting), setting
        assert not [line for line in lines if re.search(r"PASSWORD\s+'(?!SCRAM-SHA-256\$)", line, re.IGNORECASE)]
    else:
        setting = [line for line in lines if "IDENTIFIED" in line.upper()]
        hashed = r"IDENTIFIED WITH mysql_native_password AS '\*[0-9A-F]{40}'"
        assert setting and all(re.search(hashed, line) for line in setting), setting
        assert not [line for line in lines if re.search(r"IDENTIFIED\s+BY|PASSWORD\s*\(", line, re.IGNORECASE)]
        assert re.search(rf"Connect\s+{VERIFIER_USER}@", log), "the queries did not log in as the verification user"


@pytest.mark.parametrize("engine", ["aurora-postgresql", "aurora-mysql"])
def test_killed_while_verifying_the_restore_succeeds_and_leaves_no_verification_user(
    api_client, aws, operator, namespace, uniq, db_ca_file, engine
):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "master", {"password": MASTER_PASSWORD})
    create_restore(api_client, namespace, "crash", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "masterPassword": {"secretRef": {"name": "master", "key": "password"}},
        "verification": {"queries": [{"sql": HOLD[engine]}, {"sql": AS_VERIFIER[engine], "expectRows": 1}],
                         "timeout": "1m"},
    })
    wait_for_phase(api_client, namespace, "crash", "Verifying", timeout=240)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]

    def master():
        return connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", MASTER_PASSWORD, "orders",
                       db_ca_file)

    def holder() -> list[tuple]:
        with master() as conn:
            return execute(conn, HOLDER[engine])

    # The query runs, as the verification user; the operator dies in the middle of it.
    assert wait_until(holder, timeout=60, what="the holding query") == [(VERIFIER_USER,)]
    operator.kill()
    assert get_restore(api_client, namespace, "crash")["status"]["phase"] == "Verifying"
    with master() as conn:
        assert user_exists(engine, conn, VERIFIER_USER)  # left behind by the killed attempt
    operator.start()

    status = wait_for_phase(api_client, namespace, "crash", {"Succeeded", "Failed"}, timeout=240)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["verification"]["results"] == [{"index": 0, "rows": 1}, {"index": 1, "rows": 1}]
    with master() as conn:
        assert not user_exists(engine, conn, VERIFIER_USER)
