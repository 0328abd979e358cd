"""Keep a command running, restarting it whenever it dies, as a Deployment keeps its Pod running.

    python -m aurora_restore_devenv.supervisor --pid-file PATH --log PATH [options] -- COMMAND [ARG...]

`dev up` runs the operator under it. The supervisor starts COMMAND (same environment, same stdout and stderr
unless --output), and writes the child's pid to --pid-file atomically (a temporary file renamed over it), so a
reader always finds a whole pid: the running child's, or between a death and the restart the dead one's. Whenever
the child exits, whatever its exit code or signal (`kill $(cat PID_FILE)` included), the supervisor logs it and
starts it again after a backoff: --backoff seconds (default 1), doubled after each quick death up to
--max-backoff (30), back to --backoff once a child has run --reset-after seconds (60); the pid file gets the new
pid. SIGTERM or SIGINT to the supervisor stops it: SIGTERM to the child, SIGKILL after --stop-timeout seconds (15),
then the pid file is removed and the supervisor exits 0. The child stays in the supervisor's session and process
group. If COMMAND cannot be started at all the first time, the supervisor exits 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

POLL_SECONDS = 0.1


class Supervisor:
    def __init__(
        self,
        command: list[str],
        pid_file: Path,
        log: IO[str],
        *,
        output: Path | None = None,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        reset_after: float = 60.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.command = command
        self.pid_file = Path(pid_file)
        self.log = log
        self.output = output
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.reset_after = reset_after
        self.stop_timeout = stop_timeout
        self.stop_signal: int | None = None
        self.child: subprocess.Popen[bytes] | None = None

    def say(self, message: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.log.write(f"{stamp} supervisor[{os.getpid()}] {message}\n")
        self.log.flush()

    def request_stop(self, signum: int, _frame: object) -> None:
        self.stop_signal = signum

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        delay = self.backoff
        starts = 0
        try:
            while self.stop_signal is None:
                try:
                    self.start_child()
                except OSError as error:
                    self.say(f"cannot start {self.command[0]}: {error}")
                    if starts == 0:
                        return 1
                else:
                    starts += 1
                    started = time.monotonic()
                    while self.stop_signal is None and self.child.poll() is None:
                        time.sleep(POLL_SECONDS)
                    if self.stop_signal is not None:
                        break
                    ran = time.monotonic() - started
                    if ran >= self.reset_after:
                        delay = self.backoff
                    self.say(f"pid {self.child.pid} {describe_exit(self.child.returncode)} after {ran:.1f}s; "
                             f"restarting in {delay:g}s")
                deadline = time.monotonic() + delay
                while self.stop_signal is None and time.monotonic() < deadline:
                    time.sleep(POLL_SECONDS)
                delay = min(delay * 2, self.max_backoff)
            self.say(f"{signal.Signals(self.stop_signal).name} received: stopping")
            self.stop_child()
            return 0
        finally:
            self.remove_pid_file()

    def start_child(self) -> None:
        output = self.output.open("ab") if self.output is not None else None
        try:
            self.child = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT if output else None
            )
        finally:
            if output is not None:
                output.close()
        write_pid_file(self.pid_file, self.child.pid)
        self.say(f"started pid {self.child.pid}: {' '.join(self.command)}")

    def stop_child(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.say(f"pid {child.pid} still running {self.stop_timeout:g}s after SIGTERM: SIGKILL")
            child.kill()
            child.wait()
        self.say(f"pid {child.pid} {describe_exit(child.returncode)}")

    def remove_pid_file(self) -> None:
        """Only a pid file naming our child: another supervisor may have taken the path over since."""
        try:
            if self.child is not None and self.pid_file.read_text().strip() == str(self.child.pid):
                self.pid_file.unlink()
        except OSError:
            pass


def write_pid_file(path: Path, pid: int) -> None:
    """Write ``pid`` to ``path`` so that no reader ever sees an empty or half-written file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(f"{pid}\n")
    partial.replace(path)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aurora_restore_devenv.supervisor",
        usage="%(prog)s --pid-file PATH --log PATH [options] -- COMMAND [ARG...]",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--pid-file", type=Path, required=True, help="always holds the pid of the current child")
    parser.add_argument("--log", type=Path, required=True, help="the supervisor's own log (appended)")
    parser.add_argument("--output", type=Path, help="append the child's stdout and stderr here (default: inherited)")
    parser.add_argument("--backoff", type=float, default=1.0, help="seconds before the first restart (default 1)")
    parser.add_argument("--max-backoff", type=float, default=30.0, help="ceiling of the doubling backoff (default 30)")
    parser.add_argument(
        "--reset-after", type=float, default=60.0,
        help="a child that ran this long resets the backoff (default 60)",
    )
    parser.add_argument(
        "--stop-timeout", type=float, default=15.0, help="SIGKILL the child this long after SIGTERM (default 15)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the command to supervise after --")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("a") as log:
        return Supervisor(
            argv[split + 1:], args.pid_file, log, output=args.output, backoff=args.backoff,
            max_backoff=args.max_backoff, reset_after=args.reset_after, stop_timeout=args.stop_timeout,
        ).run()


if __name__ == "__main__":
    sys.exit(main())
