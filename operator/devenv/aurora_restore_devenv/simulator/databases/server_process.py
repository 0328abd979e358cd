"""One database server process: start it, wait until it accepts connections, stop it.

The engine modules (`postgres`, `mariadb`) say how to prepare a data directory, which command runs the
server, how to tell that it is ready and how to run SQL, dumps and loads. This module runs the process:

- as the fleet's `ServerUser` (`nobody` when the simulator runs as root),
- with stdin closed and its output in `server.log` beside its data directory,
- under `setpriv --pdeathsig KILL` where available, so that a simulator killed with SIGKILL leaves no
  servers behind. The kernel sends that signal when the *thread* that started the process ends, so
  servers must be started from a thread that lives as long as they do: each cluster's own worker thread
  (see `fleet.ClusterDatabase`).
"""

from __future__ import annotations

import functools
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .binaries import find_program
from .server_user import ServerUser

#: How long a server may take to accept connections after it was started.
START_TIMEOUT = 60.0
#: How long a server may take to shut down before it is killed.
STOP_TIMEOUT = 15.0
POLL_INTERVAL = 0.05


class DatabaseServerError(RuntimeError):
    """A server did not start, or a client program failed against it (the message says why)."""


class PortInUse(DatabaseServerError):
    """The port picked for a server was taken before the server could listen on it."""


@dataclass(frozen=True)
class ServerPaths:
    """Where one server keeps its files."""

    #: The server's own directory: `data/`, `server.log` and its configuration.
    directory: Path
    #: The directory of its Unix socket, short enough for the 107-byte socket path limit.
    run_dir: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"


class DatabaseServer(ABC):
    """A database server on a loopback port; subclasses are the engines."""

    #: "postgresql" or "mysql", as the control API reports it.
    engine: ClassVar[str]
    #: The signal for a fast, clean shutdown.
    stop_signal: ClassVar[signal.Signals]

    def __init__(self, paths: ServerPaths, port: int, user: ServerUser) -> None:
        self.paths = paths
        self.port = port
        self.user = user
        self.process: subprocess.Popen[bytes] | None = None
        #: Log every statement that clients send (the simulator's own statements are not logged).
        self.log_statements = False

    @property
    def statement_log(self) -> Path:
        """The file that logged statements go to (with `log_statements`): the server's log by default."""
        return self.paths.log

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- what an engine provides -------------------------------------------------------------

    @abstractmethod
    def server_command(self) -> list[str]:
        """The command that runs the server in the foreground."""

    @abstractmethod
    def is_ready(self) -> bool:
        """Whether the server accepts connections (on its Unix socket)."""

    # -- process ------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and return once it accepts connections.

        Raises `PortInUse` when the port was taken meanwhile (pick another and start again), and
        `DatabaseServerError` with the end of the server's log for any other failure.
        """
        with open(self.paths.log, "ab") as log:
            self.process = subprocess.Popen(
                _parent_death_prefix() + self.server_command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self.user.popen_arguments(),
            )
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if self.process.poll() is not None:
                tail = self.log_tail()
                error = PortInUse if "already in use" in tail.lower() else DatabaseServerError
                raise error(f"the {self.engine} server exited with {self.process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise DatabaseServerError(
                    f"the {self.engine} server did not accept connections within {timeout:g}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the server down (killed if it takes longer than `timeout`)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(self.stop_signal)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def signal_stop(self) -> None:
        """Ask the server to shut down without waiting (see `stop`)."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(self.stop_signal)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.paths.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_client(
    command: list[str],
    what: str,
    input: bytes | None = None,
    timeout: float = 120.0,
    secrets: tuple[str, ...] = (),
) -> bytes:
    """Run a client program (psql, mariadb, ...); its stdout, or `DatabaseServerError` with its stderr
    (with `secrets` blanked out: a syntax error quotes the statement)."""
    try:
        result = subprocess.run(
            command,
            input=input if input is not None else b"",
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DatabaseServerError(f"{what}: no answer within {timeout:g}s") from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        for secret in secrets:
            message = message.replace(secret, "********")
        raise DatabaseServerError(f"{what}: {message}")
    return result.stdout


def run_quietly(command: list[str], user: ServerUser, timeout: float = 10.0) -> bool:
    """Whether `command` (run as `user`) succeeded; its output is discarded."""
    try:
        return (
            subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
                **user.popen_arguments(),
            ).returncode
            == 0
        )
    except subprocess.TimeoutExpired:
        return False


@functools.cache
def _parent_death_prefix() -> list[str]:
    """`setpriv --pdeathsig KILL --` when util-linux's setpriv has that option, else nothing."""
    setpriv = find_program("setpriv")
    if setpriv is None:
        return []
    try:
        usage = subprocess.run(
            [setpriv, "--help"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"] if "--pdeathsig" in usage else []
