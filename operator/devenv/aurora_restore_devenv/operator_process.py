"""The operator as a child process, run exactly as the container image runs it (`aurora-restore run`).

Used by `dev up` and by the end-to-end tests, which kill it with SIGKILL to prove restores resume, stop it with
SIGTERM to prove it drains, and run two of them to prove only the leader acts. Each process object has a fixed
replica name (what a pod name is in a cluster): restarted, it is the same replica, and takes its leader Lease
back at once.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

READY_TIMEOUT_SECONDS = 60


def operator_command(namespace: str | None, liveness_port: int) -> list[str]:
    """`aurora-restore run` for one namespace, or all of them when namespace is None."""
    scope = ["--namespace", namespace] if namespace else ["--all-namespaces"]
    return [
        sys.executable,
        "-m",
        "aurora_restore.cli",
        "run",
        *scope,
        f"--liveness=http://127.0.0.1:{liveness_port}/healthz",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def operator_environment(env: dict[str, str], pod_name: str) -> dict[str, str]:
    """This process's environment without AWS credentials (the operator gets its own), the replica's name,
    plus `env`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**inherited, "AURORA_RESTORE_POD_NAME": pod_name, **env}


class OperatorProcess:
    """One operator process writing to `log_path`; start() returns once kopf's health endpoint answers."""

    def __init__(self, env: dict[str, str], log_path: Path, namespace: str | None = None,
                 pod_name: str | None = None, metrics_port: int | None = None):
        self.env = env
        self.log_path = Path(log_path)
        self.namespace = namespace
        self.pod_name = pod_name or f"operator-{uuid.uuid4().hex[:6]}"
        # Prometheus metrics (AURORA_RESTORE_METRICS_PORT): this port, else the one `env` names, else none.
        self.metrics_port = metrics_port or (int(env["AURORA_RESTORE_METRICS_PORT"])
                                             if env.get("AURORA_RESTORE_METRICS_PORT") else None)
        self.health_port: int | None = None
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, detached: bool = False) -> "OperatorProcess":
        """Start it and return once /healthz answers (a standby answers too: see is_leader)."""
        port = self.health_port = free_port()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            operator_command(self.namespace, port),
            env=self._environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detached,
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the operator did not become healthy in {READY_TIMEOUT_SECONDS}s; see {self.log_path}")

    def _environment(self) -> dict[str, str]:
        environment = operator_environment(self.env, self.pod_name)
        if self.metrics_port:
            environment["AURORA_RESTORE_METRICS_PORT"] = str(self.metrics_port)
        return environment

    @property
    def metrics_url(self) -> str | None:
        """Where /metrics is served (by the leader only: kopf starts the server), or None without a port."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else None

    def health(self) -> dict | None:
        """What /healthz says ({"identity", "leader", "healthy"}), or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            return None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process else None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no chance to finish a step (what a node failure or OOM kill does)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM (what a pod's termination sends): the operator drains and exits; SIGKILL after `timeout`.
        Returns the exit code (None when it was not running)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else None
