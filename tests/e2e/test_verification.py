"""Verification that cannot write, on real PostgreSQL and MariaDB servers behind the simulated clusters: several
statements in one query and writes are refused by the database and change nothing, a query longer than
spec.verification.timeout fails naming it, a plain query passes. One source, several restores at once."""

import pytest
from databases import ROWS, connect, create_secret, execute, make_database_source
from restores import create_restore, wait_for_phase

SOURCE_PASSWORD = "source-Pa55word-1"
MASTER_PASSWORD = "restored-Master-2"

SLEEP = {"aurora-postgresql": "SELECT pg_sleep(5)", "aurora-mysql": "SELECT SLEEP(5)"}
# name: (queries, expected reason or None for success, index named in the message)
CASES = {
    "multi": ([{"sql": "SELECT 1", "expectRows": 1}, {"sql": "SELECT 1; DROP TABLE orders"}],
              "VerificationQueryRefused", 1),
    "insert": ([{"sql": "INSERT INTO orders (id, item) VALUES (9, 'mocha')"}], "VerificationQueryRefused", 0),
    "create": ([{"sql": "CREATE TABLE intruder (i integer)"}], "VerificationQueryRefused", 0),
    "sleep": ([{"sql": "SELECT 1"}, {"sql": "SLEEP"}], "VerificationTimedOut", 1),
    "toomany": ([{"sql": "SELECT * FROM orders", "expectRows": 2}], "VerificationFailed", 0),
    "ok": ([{"sql": "SELECT * FROM orders", "expectRows": 3}, {"sql": "SELECT id FROM orders"}], None, None),
}


@pytest.mark.parametrize("engine", ["aurora-postgresql", "aurora-mysql"])
def test_verification_runs_one_read_only_statement_within_its_timeout(
    api_client, aws, operator, namespace, uniq, db_ca_file, engine
):
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "master", {"password": MASTER_PASSWORD})
    for name, (queries, _, _) in CASES.items():
        queries = [{**q, "sql": SLEEP[engine] if q["sql"] == "SLEEP" else q["sql"]} for q in queries]
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
            assert status["verification"]["results"] == [{"index": 0, "rows": 3}, {"index": 1, "rows": 3}]
        else:
            assert (status["phase"], status["failure"]["reason"], status["failure"]["phase"]) == (
                "Failed", reason, "Verifying"), status
            assert f"spec.verification.queries[{index}]" in status["failure"]["message"]
            assert MASTER_PASSWORD not in status["failure"]["message"]
            if name == "toomany":  # read at most expectRows + 1 rows
                assert "returned more than 2 row(s), expected 2" in status["failure"]["message"]

        cluster = rds.describe_db_clusters(DBClusterIdentifier=f"{name}-{uniq}")["DBClusters"][0]
        with connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", MASTER_PASSWORD, "orders",
                     db_ca_file) as conn:
            assert sorted(execute(conn, "SELECT id, item FROM orders")) == ROWS, name  # nothing dropped or added
            tables = execute(conn, "SELECT table_name FROM information_schema.tables WHERE table_name = 'intruder'")
            assert tables == [], name
