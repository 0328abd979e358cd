"""Fixtures for tests against the AWS simulator (a moto server with the project's extensions).

`simulator` starts one server for the whole session with a short RDS transition delay;
`aws_client` makes boto3 clients that talk to it with dummy static credentials.
"""

from __future__ import annotations

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
