"""TLS to the restored databases is verified by default, on the simulator's real PostgreSQL and MariaDB servers.

Every other e2e test gives the operator the simulator's CA as AURORA_RESTORE_DB_CA_BUNDLE (what the RDS CA bundle
is in AWS). Here an operator is given a CA of its own instead, which the servers' certificates do not chain to:
it must not connect, must say why in status (without a password), must leave the database untouched, and must
go on once started again with the right bundle. AURORA_RESTORE_DB_TLS_VERIFY=false connects despite the wrong
bundle, and says so in the operator's log at start.
"""

import json
import secrets

import pytest
from databases import ROWS, connect, create_secret, execute, make_database_source, user_exists
from restores import create_restore, get_restore, wait_for_phase, wait_until
from secret_scan import SESSION

from aurora_restore_devenv.operator_process import OperatorProcess, free_port
from aurora_restore_devenv.simulator.databases.tls import ensure_certificates

SOURCE_PASSWORD = f"src-{secrets.token_urlsafe(16)}"
MASTER_PASSWORD = f"master-{secrets.token_urlsafe(16)}"
USER_PASSWORD = f"user-{secrets.token_urlsafe(16)}"
ENGINES = ["aurora-postgresql", "aurora-mysql"]
WARNING = "AURORA_RESTORE_DB_TLS_VERIFY is false: TLS to the restored databases is encrypted but unverified"


@pytest.fixture
def other_ca_file(tmp_path) -> str:
    """A CA made as the simulator makes its own, but not the simulator's: no server certificate chains to it."""
    return str(ensure_certificates(tmp_path / "other-ca").ca_certificate)


class Operators:
    """Operators started one after another in one test, each with changes to the e2e environment."""

    def __init__(self, env: dict[str, str], tmp_path, test: str):
        self.env, self.tmp_path, self.test = env, tmp_path, test
        self.running: list[tuple[OperatorProcess, str]] = []

    def start(self, **changes: str) -> OperatorProcess:
        port = str(free_port())
        env = {**self.env, "AURORA_RESTORE_METRICS_PORT": port, **changes}
        process = OperatorProcess(env, self.tmp_path / f"operator-{len(self.running) + 1}.log").start()
        self.running.append((process, port))
        return process

    def stop(self, process: OperatorProcess) -> None:
        """Stopped after its log and /metrics are handed to the session's secret scan."""
        port = next(port for running, port in self.running if running is process)
        if process.process and process.process.poll() is None:
            SESSION.record_operator(self.test, process.log_path, port)
        process.stop()


@pytest.fixture
def operators(operator_env, tmp_path, request):
    started = Operators(operator_env, tmp_path, request.node.nodeid)
    yield started
    for process, _ in started.running:
        started.stop(process)


def restore_spec(uniq: str) -> dict:
    """A restore that connects as master (ConfiguringAccess), creates a user and runs a verification query."""
    return {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "masterPassword": {"secretRef": {"name": "passwords", "key": "master"}},
        "users": [{"name": "app_rw", "access": "readWrite", "databases": ["orders"],
                   "passwordSecretRef": {"name": "passwords", "key": "app"}}],
        "verification": {"queries": [{"sql": "SELECT * FROM orders", "expectRows": 3}]},
    }


def prepare(api_client, aws, namespace: str, uniq: str, engine: str, db_ca_file: str):
    """A source cluster with data and its snapshot; the restore's passwords in a Secret."""
    SESSION.remember_password(SOURCE_PASSWORD, "test_database_tls's source master password")
    rds = aws.client("rds", region_name="us-east-1")
    make_database_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, SOURCE_PASSWORD, db_ca_file)
    create_secret(api_client, namespace, "passwords", {"master": MASTER_PASSWORD, "app": USER_PASSWORD})
    return rds


@pytest.mark.parametrize("engine", ENGINES)
def test_a_ca_bundle_the_server_does_not_chain_to_stops_the_restore_until_the_right_one_is_given(
    api_client, aws, namespace, uniq, db_ca_file, other_ca_file, operators, engine
):
    rds = prepare(api_client, aws, namespace, uniq, engine, db_ca_file)
    wrong = operators.start(AURORA_RESTORE_DB_CA_BUNDLE=other_ca_file)
    create_restore(api_client, namespace, "tls", restore_spec(uniq))

    def refused():
        status = get_restore(api_client, namespace, "tls").get("status") or {}
        return status if "does not verify" in (status.get("message") or "") else None

    status = wait_until(refused, timeout=180, what="a TLS verification failure in status")
    log = wrong.log_path.read_text()
    cluster = rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    assert status["phase"] == "ConfiguringAccess", f"retried, not failed: {status}\n{log[-5000:]}"
    assert status["message"].startswith(
        f"the TLS certificate of {cluster['Endpoint']}:{cluster['Port']} does not verify against the CA bundle "
        f"{other_ca_file} (AURORA_RESTORE_DB_CA_BUNDLE): "), status["message"]
    assert "certificate verify failed" in status["message"].lower()
    for password in (SOURCE_PASSWORD, MASTER_PASSWORD, USER_PASSWORD):
        assert password not in json.dumps(status) and password not in log
    assert WARNING not in log, "verification was on: no warning"

    # The operator never logged in: the master password is still the source's, and no user was created.
    with connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", SOURCE_PASSWORD, "orders",
                 db_ca_file) as conn:
        assert not user_exists(engine, conn, "app_rw")

    # Started again with the right bundle, the operator carries on where the restore was.
    operators.stop(wrong)
    right = operators.start()
    status = wait_for_phase(api_client, namespace, "tls", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", f"{status}\n{right.log_path.read_text()[-5000:]}"
    assert [entry["phase"] for entry in status["history"]].count("ConfiguringAccess") == 1
    assert status["verification"]["results"] == [{"index": 0, "rows": 3}]
    with connect(engine, cluster["Endpoint"], cluster["Port"], "app_rw", USER_PASSWORD, "orders",
                 db_ca_file) as conn:
        assert sorted(execute(conn, "SELECT id, item FROM orders")) == ROWS


def test_verification_turned_off_connects_despite_the_wrong_bundle_and_warns_at_start(
    api_client, aws, namespace, uniq, db_ca_file, other_ca_file, operators
):
    prepare(api_client, aws, namespace, uniq, "aurora-postgresql", db_ca_file)
    unverified = operators.start(AURORA_RESTORE_DB_CA_BUNDLE=other_ca_file, AURORA_RESTORE_DB_TLS_VERIFY="false")
    # Logged by the start-up handler, which kopf may still be running when its health endpoint first answers.
    warnings = wait_until(lambda: [line for line in unverified.log_path.read_text().splitlines() if WARNING in line],
                          timeout=30, what="the warning in the operator's log")
    assert len(warnings) == 1 and "WARNING" in warnings[0], warnings

    create_restore(api_client, namespace, "unverified", restore_spec(uniq))
    status = wait_for_phase(api_client, namespace, "unverified", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", f"{status}\n{unverified.log_path.read_text()[-5000:]}"
    assert status["verification"]["results"] == [{"index": 0, "rows": 3}]
    assert [user["name"] for user in status["users"]] == ["app_rw"]
