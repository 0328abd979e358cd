"""Fixtures for tests against the AWS simulator (a moto server with the project's extensions).

`simulator` starts one server for the whole session with a short RDS transition delay;
`aws_client` makes boto3 clients that talk to it with dummy static credentials. The test modules import the plain
helpers at the end (`from tests.aws.conftest import ...`): unique names, fresh accounts, polling.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from aurora_restore_devenv.simulator import SimulatorClient, SimulatorProcess

#: Seconds each simulated RDS transition takes in these tests: long enough to observe
#: `creating`, short enough to keep the suite fast.
SIMULATOR_DELAY = 1.0
REGION = "us-east-1"


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """One simulator process on a free loopback port, for the session."""
    log_path = Path(tmp_path_factory.mktemp("simulator")) / "simulator.log"
    process = SimulatorProcess(delay=SIMULATOR_DELAY, log_path=log_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def simulator_client(simulator: SimulatorProcess) -> SimulatorClient:
    return simulator.client


@pytest.fixture(scope="session")
def aws_region() -> str:
    """The region of `aws_session` and of clients made without `region_name`."""
    return REGION


@pytest.fixture(scope="session")
def aws_session() -> boto3.Session:
    """A boto3 session with dummy static credentials (never real ones)."""
    return boto3.Session(
        aws_access_key_id="AKIDSIMULATOR0000000",
        aws_secret_access_key="simulator-secret",
        region_name=REGION,
    )


@pytest.fixture(scope="session")
def aws_client(simulator: SimulatorProcess, aws_session: boto3.Session) -> Callable[..., Any]:
    """`aws_client("rds", region_name=..., config=...)`: a client pointed at the simulator.

    Retries are off unless a test passes its own `config`, so that injected faults surface.
    """

    def make_client(service: str, **kwargs: Any) -> Any:
        kwargs.setdefault("config", Config(retries={"total_max_attempts": 1}))
        return aws_session.client(service, endpoint_url=simulator.url, **kwargs)

    return make_client


# -- helpers for the test modules -----------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    """`prefix` with a random suffix, so that tests sharing a simulator never meet each other's objects."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_account() -> str:
    """A fresh 12-digit account id, so that tests never see each other's shares, clone counts or events."""
    return str(uuid.uuid4().int)[:12].rjust(12, "1")


def poll_until(condition: Callable[[], Any], timeout: float, interval: float) -> Any:
    """Call `condition` every `interval` seconds until it returns something truthy, and return that; fail after
    `timeout` seconds. Each module binds its own timeout and interval (`functools.partial`) as `wait_until`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
