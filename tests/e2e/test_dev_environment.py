"""`aurora-restore-dev up|seed|down` and the demo's example, as a user runs them from a shell."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import yaml
from databases import read_secret
from kubernetes import client, config
from restores import wait_for_phase

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore_devenv.controlplane.server import is_running
from aurora_restore_devenv.supervisor import write_pid_file

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


def _pid_in(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text())
    except (OSError, ValueError):
        return None


def _wait_for_new_live_pid(pid_file: Path, old_pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _pid_in(pid_file)
        if pid and pid != old_pid and _alive(pid):
            return pid
        time.sleep(0.1)
    raise AssertionError(f"{pid_file} holds no new live pid {timeout}s after {old_pid} died: {_pid_in(pid_file)}")


def _healthy(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def test_dev_up_seed_demo_example_and_down(tmp_path):
    directory = tmp_path / "dev"
    started = aurora_restore_dev("up", "--dir", str(directory), "--aws-delay", "0.5")
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        env_lines = (directory / "env").read_text().splitlines()
        exported = {line.split("=", 1)[0].removeprefix("export ") for line in env_lines}
        assert {"KUBECONFIG", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AURORA_RESTORE_SIM_URL", "AURORA_RESTORE_METRICS_URL"} <= exported
        metrics_url = next(line.split("=", 1)[1].strip("'\"") for line in env_lines
                           if line.removeprefix("export ").startswith("AURORA_RESTORE_METRICS_URL="))
        operator_pid = int((directory / "operator.pid").read_text())
        assert _alive(operator_pid)
        state = json.loads((directory / "dev.json").read_text())
        supervisor_pid, healthz = state["pids"]["supervisor"], state["operator"]["healthz"]
        assert _alive(supervisor_pid) and os.getsid(operator_pid) == supervisor_pid

        # The operator dies (OOM kill, node failure): its supervisor starts it again, like a Deployment's Pod, and
        # DIR/operator.pid names the new process. The restore below runs on that one.
        os.kill(operator_pid, signal.SIGKILL)
        restarted_pid = _wait_for_new_live_pid(directory / "operator.pid", operator_pid, timeout=15)
        assert not _alive(operator_pid)
        assert _healthy(healthz, timeout=60), f"the restarted operator is not healthy at {healthz}"
        assert "killed by SIGKILL" in (directory / "supervisor.log").read_text()

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
        # DIR/env's metrics URL is the running operator's /metrics: the restore's end is counted there, right
        # after the status write the wait above saw (and its Event), so it is looked for until it shows.
        counted = 'aurora_restore_phase_transitions_total{phase="Succeeded"}'
        deadline, scraped = time.monotonic() + 30, ""
        while counted not in scraped and time.monotonic() < deadline:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(metrics_url, timeout=5) as answer:
                scraped = answer.read().decode()
            if counted not in scraped:
                time.sleep(0.5)
        assert counted in scraped, scraped[-2000:]

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
        state = json.loads((directory / "dev.json").read_text())
        controlplane_state = json.loads((directory / "controlplane" / "controlplane.json").read_text())
        everything = [
            operator_pid, restarted_pid, _pid_in(directory / "operator.pid"), *state["pids"].values(),
            controlplane_state["etcd"]["pid"], controlplane_state["kube_apiserver"]["pid"],
        ]
    finally:
        stopped = aurora_restore_dev("down", "--dir", str(directory))
    assert stopped.returncode == 0, stopped.stderr
    assert not [pid for pid in everything if pid and _alive(pid)], "down left processes running"
    assert not (directory / "dev.json").exists() and not (directory / "operator.pid").exists()


def test_supervisor_restarts_its_child_and_stops_it_on_sigterm(tmp_path):
    pid_file, log = tmp_path / "child.pid", tmp_path / "supervisor.log"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "aurora_restore_devenv.supervisor", "--pid-file", str(pid_file), "--log", str(log),
         "--backoff", "0.2", "--", sys.executable, "-c", "import time; time.sleep(600)"],
        stdin=subprocess.DEVNULL,
    )
    children = []
    try:
        children.append(_wait_for_new_live_pid(pid_file, 0, timeout=15))
        os.kill(children[0], signal.SIGKILL)
        children.append(_wait_for_new_live_pid(pid_file, children[0], timeout=10))
        os.kill(children[1], signal.SIGTERM)  # an orderly exit is restarted too: the child is meant to run
        children.append(_wait_for_new_live_pid(pid_file, children[1], timeout=10))

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
            for pid in children:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
    assert not any(_alive(pid) for pid in children)
    assert not pid_file.exists()
    text = log.read_text()
    assert f"pid {children[0]} was killed by SIGKILL" in text and f"pid {children[1]} was killed by SIGTERM" in text
    assert "SIGTERM received: stopping" in text


def test_pid_file_is_replaced_whole(tmp_path):
    pid_file = tmp_path / "operator.pid"
    write_pid_file(pid_file, 123)
    write_pid_file(pid_file, 4567)
    assert pid_file.read_text() == "4567\n"
    assert [path.name for path in tmp_path.iterdir()] == ["operator.pid"]
