"""Real databases behind simulated clusters, as e2e tests use them: connect, seed rows, read connection Secrets."""

import base64
import time
from pathlib import Path
from typing import Any

import psycopg
import pymysql
from kubernetes import client
from secret_scan import SESSION

ROWS = [(1, "espresso"), (2, "flat white"), (3, "cortado")]


def connect(engine: str, host: str, port: int, user: str, password: str, database: str | None, ca_file: str):
    """A TLS connection verified against the simulator's CA, as an application would open it."""
    if engine == "aurora-postgresql":
        return psycopg.connect(host=host, port=port, user=user, password=password, dbname=database or "postgres",
                               sslmode="verify-full", sslrootcert=ca_file, autocommit=True, connect_timeout=10)
    return pymysql.connect(host=host, port=port, user=user, password=password, database=database,
                           ssl_ca=ca_file, ssl_verify_cert=True, ssl_verify_identity=True, autocommit=True,
                           connect_timeout=10)


def execute(conn, sql: str, params: tuple = ()) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def make_database_source(rds, cluster: str, snapshot: str, engine: str, password: str, ca_file: str) -> None:
    """A source cluster whose database `orders` holds ROWS in table `orders`, and an available snapshot of it.
    Its master password is in no Secret, so it is handed to the session's secret scan."""
    SESSION.remember_password(password, "make_database_source's master password")
    rds.create_db_cluster(
        DBClusterIdentifier=cluster, Engine=engine, MasterUsername="admin_user", MasterUserPassword=password,
        DatabaseName="orders",
    )
    described = _wait_available(lambda: rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0])
    with connect(engine, described["Endpoint"], described["Port"], "admin_user", password, "orders", ca_file) as conn:
        execute(conn, "CREATE TABLE orders (id integer PRIMARY KEY, item varchar(40))")
        for row in ROWS:
            execute(conn, "INSERT INTO orders (id, item) VALUES (%s, %s)", row)
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot, DBClusterIdentifier=cluster)
    _wait_available(lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)[
        "DBClusterSnapshots"][0])


def _wait_available(describe, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = describe()
        if item["Status"] == "available":
            return item
        time.sleep(0.3)
    raise AssertionError(f"not available after {timeout}s: {item}")


def create_secret(api_client, namespace: str, name: str, data: dict[str, str]) -> None:
    client.CoreV1Api(api_client).create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


def read_secret(api_client, namespace: str, name: str) -> dict[str, str]:
    secret = client.CoreV1Api(api_client).read_namespaced_secret(name, namespace)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


def user_exists(engine: str, conn, name: str) -> bool:
    """Whether the server has a user (PostgreSQL: role) of this name, asked over a master connection."""
    if engine == "aurora-postgresql":
        return execute(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)) != []
    return execute(conn, "SELECT 1 FROM mysql.user WHERE user = %s", (name,)) != []


def statement_log(simulator, cluster: str) -> str:
    """What the cluster's server logged of its clients' statements (the simulator runs with db_log_statements)."""
    server = next(d for d in simulator.databases()["databases"] if d["cluster"] == cluster)
    return Path(server["statement_log"]).read_text(errors="replace")
