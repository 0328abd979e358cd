"""The e2e suite split over pytest-xdist workers (`make test` runs it so): each worker has a session of its own,
with its own control plane, simulator and operators, so the audits of the whole run (tests marked
`after_all_e2e`) need what every worker's session used.

Each worker writes that down when its e2e session ends (`write_usage`, from the `run_usage` fixture's teardown),
before its control plane and simulator stop. The audits share one xdist_group, so one worker runs them all, after
its other tests; `other_usages` waits there until every other worker of the run has finished and returns what they
wrote. Outside xdist there is one session and nothing to exchange.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

#: The worker this process is ("gw0", "gw1", ...); None outside xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
#: The xdist_group of the after_all_e2e audits: one worker runs them all.
AUDIT_GROUP = "after_all_e2e"
#: Set once this worker runs the audits: its own usage is then read live, not written down.
AUDITED_HERE = pytest.StashKey[bool]()
#: How long the audits wait for the other workers' last tests, at most.
WAIT_SECONDS = 600
POLL_SECONDS = 1.0


def run_dir(config: pytest.Config) -> Path | None:
    """The directory every worker of the run shares (xdist gives each a basetemp below it); None outside xdist."""
    if WORKER is None or not config.option.basetemp:
        return None
    return Path(config.option.basetemp).parent


def mark_started(config: pytest.Config) -> None:
    """Record that this worker takes part in the run, with its pid (a worker that died never marks its end)."""
    directory = run_dir(config)
    if directory is not None:
        _write_json(directory / "workers" / f"{WORKER}.started", {"pid": os.getpid()})


def mark_finished(config: pytest.Config) -> None:
    """Record that this worker's session is over: its fixtures are torn down, its usage (if any) written."""
    directory = run_dir(config)
    if directory is not None:
        _write_json(directory / "workers" / f"{WORKER}.finished", {"pid": os.getpid()})


def write_usage(config: pytest.Config, usage: dict[str, Any]) -> None:
    """What this worker's e2e session used (see the `run_usage` fixture), for the worker that runs the audits."""
    directory = run_dir(config)
    if directory is not None:
        _write_json(directory / "usage" / f"{WORKER}.json", usage)


def other_usages(config: pytest.Config) -> list[dict[str, Any]]:
    """Once every other worker of the run has finished, the usage each of them wrote (none outside xdist).

    Fails when a worker is still running after WAIT_SECONDS; a worker that died is not waited for."""
    directory = run_dir(config)
    if directory is None:
        return []
    _write_json(directory / "workers" / f"{WORKER}.auditing", {"pid": os.getpid()})
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        running = [worker for worker in _started_workers(directory) if worker != WORKER
                   and not (directory / "workers" / f"{worker}.finished").exists() and _alive(directory, worker)]
        if not running:
            break
        auditing = [worker for worker in running if (directory / "workers" / f"{worker}.auditing").exists()]
        if auditing:  # each would wait for the other to finish
            raise AssertionError(f"the after_all_e2e audits run in workers {auditing} too: start pytest with "
                                 f"--dist loadgroup, which keeps their xdist_group {AUDIT_GROUP!r} on one worker")
        if time.monotonic() > deadline:
            raise AssertionError(f"workers {running} still running after {WAIT_SECONDS} s: the audits lack their usage")
        time.sleep(POLL_SECONDS)
    return [json.loads(path.read_text()) for path in sorted((directory / "usage").glob("*.json"))
            if path.stem != WORKER]


def _started_workers(directory: Path) -> list[str]:
    return sorted(path.stem for path in (directory / "workers").glob("*.started"))


def _alive(directory: Path, worker: str) -> bool:
    pid = json.loads((directory / "workers" / f"{worker}.started").read_text())["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _write_json(path: Path, value: Any) -> None:
    """Whole files only: a reader never sees half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value))
    os.replace(partial, path)
