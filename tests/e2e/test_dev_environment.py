"""`aurora-restore-dev up|seed|down` and the demo's example, as a user runs them from a shell."""

import subprocess
import sys
from pathlib import Path

import psycopg
import yaml
from databases import read_secret
from kubernetes import client, config
from restores import wait_for_phase

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore_devenv.controlplane.server import is_running

REPO = Path(__file__).resolve().parents[2]


def aurora_restore_dev(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aurora_restore_devenv.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its (re-)parent to reap it: it exited either way."""
    return is_running(pid)


def test_dev_up_seed_demo_example_and_down(tmp_path):
    directory = tmp_path / "dev"
    started = aurora_restore_dev("up", "--dir", str(directory), "--aws-delay", "0.5")
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        env_lines = (directory / "env").read_text().splitlines()
        exported = {line.split("=", 1)[0].removeprefix("export ") for line in env_lines}
        assert {"KUBECONFIG", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AURORA_RESTORE_SIM_URL"} <= exported
        operator_pid = int((directory / "operator.pid").read_text())
        assert _alive(operator_pid)

        again = aurora_restore_dev("up", "--dir", str(directory))
        assert again.returncode == 1
        assert "already running" in again.stderr and "dev down" in again.stderr

        seeded = aurora_restore_dev("seed", "--dir", str(directory))
        assert seeded.returncode == 0, seeded.stderr

        api = config.new_client_from_config(str(directory / "kubeconfig"))
        manifest = yaml.safe_load((REPO / "examples" / "orders-stage.yaml").read_text())
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, manifest)
        status = wait_for_phase(api, "default", "orders-stage", {"Succeeded", "Failed"}, timeout=120)["status"]
        assert status["phase"] == "Succeeded", status
        assert status["snapshot"]["identifier"] == "nightly-2026-11-25"  # not the newer adhoc snapshot
        assert len(status["instances"]) == 2
        assert "orders-stage" in (directory / "operator.log").read_text()

        # The example with users and connection Secrets works as it is in the demo environment.
        for document in yaml.safe_load_all((REPO / "examples" / "orders-stage-with-users.yaml").read_text()):
            if document["kind"] == "Secret":
                client.CoreV1Api(api).create_namespaced_secret("default", document)
            else:
                client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                                                             document)
        status = wait_for_phase(api, "default", "orders-stage-users", {"Succeeded", "Failed"}, timeout=180)["status"]
        assert status["phase"] == "Succeeded", status
        app = read_secret(api, "default", "orders-stage-app-db")
        with psycopg.connect(app["uri"], sslrootcert=str(directory / "db-ca.pem"), sslmode="verify-full") as conn:
            assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 3
    finally:
        stopped = aurora_restore_dev("down", "--dir", str(directory))
    assert stopped.returncode == 0, stopped.stderr
    assert not _alive(operator_pid)
    assert not (directory / "dev.json").exists()
