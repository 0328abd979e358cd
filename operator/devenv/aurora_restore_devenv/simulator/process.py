"""Run the simulator as a child process, for tests and local development.

A separate process rather than a thread: the simulator patches moto process-wide, and the
tests' own boto3 clients must talk to it over HTTP exactly as the operator does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

from .client import SimulatorClient

# Printed by the server once it listens (see server.READY_PREFIX; not imported: that
# module imports moto, which this side does not need).
READY_PREFIX = "AWS simulator ready at"
# The directory that holds the `aurora_restore_devenv` package, so the child can import it.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class SimulatorStartError(RuntimeError):
    """The simulator exited or did not become healthy in time (the message has its log)."""


class SimulatorProcess:
    """`python -m aurora_restore_devenv.simulator` in the background, on loopback."""

    def __init__(
        self,
        port: int | None = None,
        delay: float = 0.0,
        log_path: str | os.PathLike[str] | None = None,
        page_size: int | None = None,
        host: str = "127.0.0.1",
        start_timeout: float = 30.0,
        detached: bool = False,
        databases: bool | None = False,
        data_dir: str | os.PathLike[str] | None = None,
        restorable_lag: float | None = None,
        db_log_statements: bool = False,
    ) -> None:
        self.port = port
        self.delay = delay
        self.page_size = page_size
        self.host = host
        self.start_timeout = start_timeout
        self.detached = detached  # in its own session: outlives the command that started it (`dev up`)
        self.log_path = Path(log_path) if log_path is not None else None
        # Real database servers for the clusters: True, False (the default here: tests that expect
        # moto's instant statuses keep them), or None for the command line's default (on when
        # PostgreSQL is installed); their files go to data_dir (default: a temporary directory).
        self.databases = databases
        self.data_dir = Path(data_dir) if data_dir is not None else None
        # Seconds LatestRestorableTime trails the present (None: the command line's 300).
        self.restorable_lag = restorable_lag
        # Every SQL statement clients send goes to the servers' logs (`--db-log-statements`).
        self.db_log_statements = db_log_statements
        self.url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def client(self) -> SimulatorClient:
        if self.url is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return SimulatorClient(self.url)

    def start(self) -> SimulatorProcess:
        """Start the server and wait until `/_sim/health` answers."""
        if self._process is not None:
            raise RuntimeError("the simulator is already running")
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="aws-simulator-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        command = [
            sys.executable,
            "-m",
            "aurora_restore_devenv.simulator",
            "--host",
            self.host,
            "--port",
            str(self.port or 0),
            "--delay",
            str(self.delay),
        ]
        if self.page_size is not None:
            command += ["--page-size", str(self.page_size)]
        if self.databases is not None:
            command.append("--databases" if self.databases else "--no-databases")
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        if self.restorable_lag is not None:
            command += ["--restorable-lag", str(self.restorable_lag)]
        if self.db_log_statements:
            command.append("--db-log-statements")
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_child_environment(),
                start_new_session=self.detached,
            )
        try:
            self.url = self._wait_for_ready_line()
            self._wait_for_health()
        except BaseException:
            self.stop()
            raise
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after `timeout`)."""
        process, self._process = self._process, None
        self.url = None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _wait_for_ready_line(self) -> str:
        assert self._process is not None and self.log_path is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith(READY_PREFIX):
                    return line[len(READY_PREFIX) :].strip()
            if self._process.poll() is not None:
                raise SimulatorStartError(
                    f"the simulator exited with {self._process.returncode}:\n{self._log_tail()}"
                )
            time.sleep(0.05)
        raise SimulatorStartError(f"the simulator did not start in time:\n{self._log_tail()}")

    def _wait_for_health(self) -> None:
        assert self.url is not None
        client = SimulatorClient(self.url, timeout=2.0)
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                client.health()
                return
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise SimulatorStartError(
                        f"{self.url}/_sim/health did not answer:\n{self._log_tail()}"
                    ) from None
                time.sleep(0.05)

    def _log_tail(self, lines: int = 40) -> str:
        assert self.log_path is not None
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    # MOTO_ACCOUNT_ID would override both the x-moto-account-id header and the account of
    # assumed-role credentials for every request.
    env.pop("MOTO_ACCOUNT_ID", None)
    return env
