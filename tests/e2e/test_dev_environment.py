"""`aurora-restore dev up|seed|down` and the demo's example, as a user runs them from a shell."""

import os
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import config
from restores import wait_for_phase

from aurora_restore.api import GROUP, PLURAL, VERSION

REPO = Path(__file__).resolve().parents[2]


def aurora_restore(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aurora_restore.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dev_up_seed_demo_example_and_down(tmp_path):
    directory = tmp_path / "dev"
    started = aurora_restore("dev", "up", "--dir", str(directory), "--aws-delay", "0.5")
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        env_lines = (directory / "env").read_text().splitlines()
        exported = {line.split("=", 1)[0].removeprefix("export ") for line in env_lines}
        assert {"KUBECONFIG", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AURORA_RESTORE_SIM_URL"} <= exported
        operator_pid = int((directory / "operator.pid").read_text())
        assert _alive(operator_pid)

        again = aurora_restore("dev", "up", "--dir", str(directory))
        assert again.returncode == 1
        assert "already running" in again.stderr and "dev down" in again.stderr

        seeded = aurora_restore("dev", "seed", "--dir", str(directory))
        assert seeded.returncode == 0, seeded.stderr

        api = config.new_client_from_config(str(directory / "kubeconfig"))
        manifest = yaml.safe_load((REPO / "examples" / "orders-stage.yaml").read_text())
        from kubernetes import client

        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, manifest)
        status = wait_for_phase(api, "default", "orders-stage", {"Succeeded", "Failed"}, timeout=120)["status"]
        assert status["phase"] == "Succeeded", status
        assert status["snapshot"]["identifier"] == "nightly-2026-11-25"  # not the newer adhoc snapshot
        assert len(status["instances"]) == 2
        assert "orders-stage" in (directory / "operator.log").read_text()
    finally:
        stopped = aurora_restore("dev", "down", "--dir", str(directory))
    assert stopped.returncode == 0, stopped.stderr
    assert not _alive(operator_pid)
    assert not (directory / "dev.json").exists()
