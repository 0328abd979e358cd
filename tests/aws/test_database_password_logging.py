"""No password reaches a database's log: the operator's user code against the simulator's real servers, with
every client statement logged (`--db-log-statements`: PostgreSQL log_statement=all, MariaDB's general log).

The operator's own functions (aurora_restore.db.postgres/mysql: connect, upsert_user, grant) create users with
known passwords, including a failing statement; then the users log in with their passwords, and the logs are
searched for every password, raw, percent-encoded and base64-encoded.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from aurora_restore.db import mysql, postgres
from aurora_restore.db.connection import AuthenticationFailed, Credentials, Endpoint, Tls
from aurora_restore_devenv.simulator import SimulatorProcess
from aurora_restore_devenv.simulator.databases.binaries import find_mariadb, find_postgres

REGION = "us-east-1"
MASTER = "master_user"
MASTER_PASSWORD = "Master-Pa55word-9"
USER_PASSWORDS = {
    "app_rw": "Rw-Secret-%Pass/1",
    "app_ro": "Ro-Secret-'quoted'-2",
    "app_uni": "Ünïcode-Secret-3",
}

pytestmark = pytest.mark.skipif(find_postgres() is None, reason="PostgreSQL is not installed")

ENGINES = [
    pytest.param("aurora-postgresql", id="postgresql"),
    pytest.param(
        "aurora-mysql",
        id="mysql",
        marks=pytest.mark.skipif(find_mariadb() is None, reason="MariaDB is not installed"),
    ),
]
MODULES = {"aurora-postgresql": postgres, "aurora-mysql": mysql}


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    directory = tmp_path_factory.mktemp("simulator-statement-logs")
    with SimulatorProcess(
        delay=0.2, databases=True, data_dir=directory / "data", log_path=directory / "simulator.log",
        db_log_statements=True,
    ) as process:
        yield process


@pytest.fixture(scope="module")
def ca_file(simulator: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_text(simulator.client.ca_pem())
    return str(path)


@pytest.fixture(scope="module")
def rds(simulator: SimulatorProcess) -> Any:
    session = boto3.Session(
        aws_access_key_id="AKIDSIMULATOR0000000", aws_secret_access_key="simulator-secret", region_name=REGION
    )
    return session.client("rds", endpoint_url=simulator.url)


def available_cluster(rds: Any, identifier: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
        if cluster["Status"] in ("available", "failed"):
            break
        time.sleep(0.1)
    assert cluster["Status"] == "available", f"cluster {identifier} is {cluster['Status']}"
    return cluster


def forms(password: str) -> list[str]:
    """The password as it could show in a log: raw, percent-encoded, base64."""
    return [password, urllib.parse.quote(password, safe=""), base64.b64encode(password.encode()).decode()]


@pytest.mark.parametrize("engine", ENGINES)
def test_no_password_reaches_the_statement_log(
    rds: Any, simulator: SimulatorProcess, ca_file: str, engine: str
) -> None:
    identifier = f"logged-{uuid.uuid4().hex[:8]}"
    rds.create_db_cluster(DBClusterIdentifier=identifier, Engine=engine, MasterUsername=MASTER,
                          MasterUserPassword=MASTER_PASSWORD, DatabaseName="app")
    cluster = available_cluster(rds, identifier)
    module = MODULES[engine]
    endpoint = Endpoint(engine=engine, host=cluster["Endpoint"], port=cluster["Port"], database="app",
                        tls=Tls(ca_file))
    master = Credentials(MASTER, MASTER_PASSWORD)
    for name, password in USER_PASSWORDS.items():
        with module.connect(endpoint, master) as conn:
            module.upsert_user(conn, name, password)
            module.upsert_user(conn, name, password)  # again: the ALTER path
        with module.connect(endpoint, master, "app") as conn:
            module.grant(conn, name, "readWrite" if name == "app_rw" else "readOnly", "app", MASTER)
    with module.connect(endpoint, master) as conn:  # a statement the server refuses: logged with its error
        with pytest.raises(module.QUERY_ERRORS):
            # PostgreSQL reserves names starting with pg_; MariaDB refuses a 300-character user name.
            module.upsert_user(conn, "pg_refused" if engine == "aurora-postgresql" else "x" * 300, "Refused-Secret-4")

    for name, password in USER_PASSWORDS.items():  # every user logs in with its password
        # PyMySQL sends a str password as latin-1: give it the UTF-8 bytes, as the mysql client sends them.
        sent = password.encode() if engine == "aurora-mysql" else password
        with module.connect(endpoint, Credentials(name, sent), "app") as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchall()[0][0] == 1
    with pytest.raises(AuthenticationFailed):
        module.connect(endpoint, Credentials("app_rw", "wrong-password"), "app").close()

    server = next(d for d in simulator.client.databases()["databases"] if d["cluster"] == identifier)
    log = Path(server["statement_log"]).read_text(errors="replace")
    assert "app_rw" in log and "app_uni" in log  # the statements were logged
    assert ("SCRAM-SHA-256$" if engine == "aurora-postgresql" else "mysql_native_password") in log
    for password in [*USER_PASSWORDS.values(), "Refused-Secret-4", MASTER_PASSWORD]:
        for form in forms(password):
            assert form not in log, f"a password ({form[:3]}...) appears in the {engine} statement log"

    if engine == "aurora-mysql":  # the hash is the server's own (IDENTIFIED BY over utf8mb4), Unicode included
        with module.connect(endpoint, master) as conn, conn.cursor() as cursor:
            for password in USER_PASSWORDS.values():
                cursor.execute("SELECT PASSWORD(%s)", (password,))
                assert cursor.fetchall()[0][0] == mysql.native_password_hash(password)
