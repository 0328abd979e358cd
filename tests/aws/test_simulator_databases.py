"""Real database servers behind simulated clusters: what an application (and the operator) sees.

One simulator with databases for the module (a short transition delay, so that the asynchronous start
is what the tests see). Every test connects as a client would: to the cluster's Endpoint and Port, over
TLS verified against the simulator's CA. Skipped where PostgreSQL (or, for aurora-mysql, MariaDB) is not
installed; `.ci/install-system-packages` installs both.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pymysql
import pytest

from aurora_restore_devenv.simulator import SimulatorApiError, SimulatorProcess
from aurora_restore_devenv.simulator.databases.binaries import find_mariadb, find_postgres
from aurora_restore_devenv.simulator.databases.tls import ensure_certificates
from tests.aws.conftest import poll_until, unique

REGION = "us-east-1"
OTHER_REGION = "us-west-2"
DELAY = 0.5
MASTER = "master_user"
PASSWORD = "first-password-1"

pytestmark = pytest.mark.skipif(find_postgres() is None, reason="PostgreSQL is not installed")

ENGINES = [
    pytest.param("aurora-postgresql", id="postgresql"),
    pytest.param(
        "aurora-mysql",
        id="mysql",
        marks=pytest.mark.skipif(find_mariadb() is None, reason="MariaDB is not installed"),
    ),
]


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    directory = tmp_path_factory.mktemp("simulator-databases")
    process = SimulatorProcess(
        delay=DELAY, databases=True, data_dir=directory / "data", log_path=directory / "simulator.log"
    )
    with process:
        yield process


@pytest.fixture(scope="module")
def ca_file(simulator: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_text(simulator.client.ca_pem())
    return str(path)


@pytest.fixture(scope="module")
def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="AKIDSIMULATOR0000000", aws_secret_access_key="simulator-secret", region_name=REGION
    )


@pytest.fixture(scope="module")
def rds(simulator: SimulatorProcess, session: boto3.Session) -> Any:
    return session.client("rds", endpoint_url=simulator.url)


# -- helpers ---------------------------------------------------------------------------------------


wait_until = partial(poll_until, timeout=30.0, interval=0.05)  # this module's patience and pace


def describe_cluster(rds: Any, identifier: str) -> dict[str, Any]:
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]


def available_cluster(rds: Any, identifier: str) -> dict[str, Any]:
    # A database server's first start (MariaDB's above all) can take most of a minute on a loaded 2-core machine.
    return wait_until(lambda: (found := describe_cluster(rds, identifier))["Status"] == "available" and found,
                      timeout=90.0)


def available_snapshot(rds: Any, identifier: str) -> dict[str, Any]:
    def described() -> dict[str, Any] | None:
        found = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=identifier)["DBClusterSnapshots"][0]
        return found if found["Status"] == "available" else None

    return wait_until(described)


def create_cluster(rds: Any, engine: str, **kwargs: Any) -> str:
    identifier = unique("db")
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine=engine,
        MasterUsername=MASTER,
        MasterUserPassword=PASSWORD,
        DatabaseName="app",
        **kwargs,
    )
    return identifier


def snapshot_of(rds: Any, cluster: str) -> str:
    identifier = unique("snap")
    rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=identifier)
    return identifier


def connect(engine: str, cluster: dict[str, Any], ca_file: str, password: str = PASSWORD, host: str | None = None):
    """A TLS connection to the cluster's endpoint as its master user, verifying the server's certificate."""
    host = host or cluster["Endpoint"]
    if engine == "aurora-postgresql":
        return psycopg.connect(
            host=host,
            port=cluster["Port"],
            user=MASTER,
            password=password,
            dbname="app",
            sslmode="verify-full",
            sslrootcert=ca_file,
            autocommit=True,
            connect_timeout=10,
        )
    return pymysql.connect(
        host=host,
        port=cluster["Port"],
        user=MASTER,
        password=password,
        database="app",
        ssl_ca=ca_file,
        ssl_verify_cert=True,
        ssl_verify_identity=True,
        autocommit=True,
        connect_timeout=10,
    )


def query(connection: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or None)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


def login_fails(engine: str, cluster: dict[str, Any], ca_file: str, password: str) -> bool:
    error = psycopg.OperationalError if engine == "aurora-postgresql" else pymysql.err.OperationalError
    try:
        connect(engine, cluster, ca_file, password).close()
    except error:
        return True
    return False


def server_of(simulator: SimulatorProcess, cluster: str) -> dict[str, Any] | None:
    found = [d for d in simulator.client.databases()["databases"] if d["cluster"] == cluster]
    return found[0] if found else None


def write_rows(connection: Any, *items: str) -> None:
    query(connection, "CREATE TABLE IF NOT EXISTS orders (id integer PRIMARY KEY, item varchar(40))")
    for item in items:
        query(connection, "INSERT INTO orders (id, item) VALUES (%s, %s)", len(item), item)


def items(connection: Any) -> list[str]:
    return [row[0] for row in query(connection, "SELECT item FROM orders ORDER BY id")]


# -- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cluster_is_a_server_reached_at_its_endpoint_over_verified_tls(
    rds: Any, simulator: SimulatorProcess, ca_file: str, engine: str, tmp_path: Path
) -> None:
    identifier = create_cluster(rds, engine)
    assert describe_cluster(rds, identifier)["Status"] == "creating"
    instance = unique("instance")
    rds.create_db_instance(
        DBInstanceIdentifier=instance, DBClusterIdentifier=identifier, Engine=engine, DBInstanceClass="db.r6g.large"
    )
    cluster = available_cluster(rds, identifier)
    server = server_of(simulator, identifier)
    assert server is not None and server["state"] == "available"
    assert (cluster["Endpoint"], cluster["ReaderEndpoint"]) == ("localhost", "localhost")
    assert cluster["Port"] == server["port"]
    endpoint = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["Endpoint"]
    assert (endpoint["Address"], endpoint["Port"]) == ("localhost", server["port"])
    if os.geteuid() == 0:  # PostgreSQL refuses root: servers run as an unprivileged user
        status = Path(f"/proc/{server['pid']}/status").read_text()
        assert next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1] != "0"

    with connect(engine, cluster, ca_file) as connection:
        write_rows(connection, "espresso")
        if engine == "aurora-postgresql":
            assert query(connection, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [(True,)]
            owner = query(connection, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'")
            assert owner == [(MASTER,)]
            query(connection, "CREATE ROLE app_reader LOGIN")  # CREATEROLE, as Aurora's master user
        else:
            assert query(connection, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")[0][1]
            grants = " ".join(row[0] for row in query(connection, "SHOW GRANTS"))
            assert "ALL PRIVILEGES ON *.*" in grants and "WITH GRANT OPTION" in grants
    with connect(engine, cluster, ca_file, host="127.0.0.1") as connection:  # the certificate names both
        assert items(connection) == ["espresso"]
    other_ca = ensure_certificates(tmp_path).ca_certificate  # another simulator's CA: not trusted
    with pytest.raises((psycopg.OperationalError, pymysql.err.OperationalError, ssl.SSLError)):
        connect(engine, cluster, str(other_ca))


@pytest.mark.parametrize("engine", ENGINES)
def test_snapshots_restores_and_copies_carry_the_data_and_the_password(
    rds: Any, session: boto3.Session, simulator: SimulatorProcess, ca_file: str, engine: str
) -> None:
    source = create_cluster(rds, engine)
    with connect(engine, available_cluster(rds, source), ca_file) as connection:
        write_rows(connection, "espresso", "flat white")
        snapshot = snapshot_of(rds, source)
        write_rows(connection, "after the snapshot")
    arn = available_snapshot(rds, snapshot)["DBClusterSnapshotArn"]

    restored = unique("restored")
    rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=restored, SnapshotIdentifier=snapshot, Engine=engine)
    with connect(engine, available_cluster(rds, restored), ca_file) as connection:  # the source's password
        assert items(connection) == ["espresso", "flat white"]

    point_in_time = unique("pitr")
    rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=point_in_time, SourceDBClusterIdentifier=source, UseLatestRestorableTime=True
    )
    with connect(engine, available_cluster(rds, point_in_time), ca_file) as connection:
        assert items(connection) == ["espresso", "flat white", "after the snapshot"]

    west = session.client("rds", endpoint_url=simulator.url, region_name=OTHER_REGION)
    copy = unique("copy")
    west.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier=copy, SourceRegion=REGION
    )
    available_snapshot(west, copy)
    dumps = Path(simulator.client.databases()["data_dir"]) / "snapshots"
    assert list(dumps.rglob(f"{snapshot}.*.sql"))
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot)  # the copy has its own dump
    wait_until(lambda: not list(dumps.rglob(f"{snapshot}.*.sql")))
    from_copy = unique("from-copy")
    west.restore_db_cluster_from_snapshot(DBClusterIdentifier=from_copy, SnapshotIdentifier=copy, Engine=engine)
    with connect(engine, available_cluster(west, from_copy), ca_file) as connection:
        assert items(connection) == ["espresso", "flat white"]


@pytest.mark.parametrize("engine", ENGINES)
def test_master_password_changes_reach_the_server(
    rds: Any, session: boto3.Session, simulator: SimulatorProcess, ca_file: str, engine: str
) -> None:
    identifier = create_cluster(rds, engine)
    cluster = available_cluster(rds, identifier)

    reset = rds.modify_db_cluster(
        DBClusterIdentifier=identifier, MasterUserPassword="second-password-2", ApplyImmediately=True
    )
    assert reset["DBCluster"]["Status"] == "resetting-master-credentials"  # as RDS, for the delay
    assert login_fails(engine, cluster, ca_file, PASSWORD)
    connect(engine, cluster, ca_file, "second-password-2").close()
    available_cluster(rds, identifier)  # RDS modifies only an available cluster

    managed = rds.modify_db_cluster(
        DBClusterIdentifier=identifier, ManageMasterUserPassword=True, ApplyImmediately=True
    )
    secret_arn = managed["DBCluster"]["MasterUserSecret"]["SecretArn"]
    assert describe_cluster(rds, identifier)["MasterUserSecret"]["SecretStatus"] == "active"
    secrets = session.client("secretsmanager", endpoint_url=simulator.url)
    value = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
    assert value["username"] == MASTER
    connect(engine, cluster, ca_file, value["password"]).close()
    assert login_fails(engine, cluster, ca_file, "second-password-2")

    rds.modify_db_cluster(DBClusterIdentifier=identifier, RotateMasterUserPassword=True, ApplyImmediately=True)
    rotated = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])["password"]
    assert rotated != value["password"]
    connect(engine, cluster, ca_file, rotated).close()
    assert login_fails(engine, cluster, ca_file, value["password"])


@pytest.mark.parametrize("engine", ENGINES)
def test_swapping_names_by_renames_swaps_the_servers_behind_them(
    rds: Any, simulator: SimulatorProcess, ca_file: str, engine: str
) -> None:
    """The server belongs to the cluster, not to its name: after A -> A-old and B -> A, A leads to B's data."""
    current, replacement = create_cluster(rds, engine), create_cluster(rds, engine)
    with connect(engine, available_cluster(rds, current), ca_file) as connection:
        write_rows(connection, "current")
    with connect(engine, available_cluster(rds, replacement), ca_file) as connection:
        write_rows(connection, "replacement")
    replacement_port = describe_cluster(rds, replacement)["Port"]

    retired = f"{current}-old"
    rds.modify_db_cluster(DBClusterIdentifier=current, NewDBClusterIdentifier=retired, ApplyImmediately=True)
    available_cluster(rds, retired)
    rds.modify_db_cluster(DBClusterIdentifier=replacement, NewDBClusterIdentifier=current, ApplyImmediately=True)
    cluster = available_cluster(rds, current)

    assert cluster["Port"] == replacement_port
    server = server_of(simulator, current)
    assert server is not None and server["port"] == replacement_port
    assert server_of(simulator, replacement) is None
    with connect(engine, cluster, ca_file) as connection:
        assert items(connection) == ["replacement"]
    with connect(engine, describe_cluster(rds, retired), ca_file) as connection:
        assert items(connection) == ["current"]


def test_a_cluster_created_with_a_managed_password_uses_the_secret(
    rds: Any, session: boto3.Session, simulator: SimulatorProcess, ca_file: str
) -> None:
    identifier = unique("managed")
    created = rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        MasterUsername=MASTER,
        ManageMasterUserPassword=True,
        DatabaseName="app",
    )
    secret_arn = created["DBCluster"]["MasterUserSecret"]["SecretArn"]
    secrets = session.client("secretsmanager", endpoint_url=simulator.url)
    password = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])["password"]
    connect("aurora-postgresql", available_cluster(rds, identifier), ca_file, password).close()


def test_deleting_a_cluster_stops_its_server_after_the_final_snapshot(
    rds: Any, simulator: SimulatorProcess, ca_file: str
) -> None:
    engine = "aurora-postgresql"
    identifier = create_cluster(rds, engine)
    with connect(engine, available_cluster(rds, identifier), ca_file) as connection:
        write_rows(connection, "cortado")
    server = server_of(simulator, identifier)
    assert server is not None and Path(server["directory"]).is_dir()

    final = unique("final")
    rds.delete_db_cluster(DBClusterIdentifier=identifier, FinalDBSnapshotIdentifier=final)
    wait_until(lambda: server_of(simulator, identifier) is None)
    assert not Path(f"/proc/{server['pid']}").exists()
    assert not Path(server["directory"]).exists()

    restored = unique("restored")
    available_snapshot(rds, final)
    rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=restored, SnapshotIdentifier=final, Engine=engine)
    with connect(engine, available_cluster(rds, restored), ca_file) as connection:
        assert items(connection) == ["cortado"]


def test_without_databases_clusters_are_plain_moto(tmp_path: Path) -> None:
    with SimulatorProcess(delay=0, databases=False, log_path=tmp_path / "simulator.log") as simulator:
        rds = boto3.client(
            "rds", endpoint_url=simulator.url, region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
        )
        rds.create_db_cluster(
            DBClusterIdentifier="plain", Engine="aurora-postgresql", MasterUsername=MASTER, MasterUserPassword=PASSWORD
        )
        cluster = describe_cluster(rds, "plain")
        assert cluster["Endpoint"].endswith(".rds.amazonaws.com") and cluster["Port"] == 5432
        assert simulator.client.databases() == {"enabled": False, "databases": []}
        with pytest.raises(SimulatorApiError):
            simulator.client.ca_pem()


def test_reset_stops_every_server(tmp_path: Path) -> None:
    with SimulatorProcess(delay=0, databases=True, log_path=tmp_path / "simulator.log") as simulator:
        rds = boto3.client(
            "rds", endpoint_url=simulator.url, region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
        )
        create_cluster(rds, "aurora-postgresql")  # a delay of 0: the call returns once the server is up
        [server] = simulator.client.databases()["databases"]
        assert server["state"] == "available"
        data_dir = Path(simulator.client.databases()["data_dir"])
        simulator.client.reset()
        assert simulator.client.databases()["databases"] == []
        assert not Path(server["directory"]).exists()
    assert not data_dir.exists()  # the temporary data directory goes with the simulator
