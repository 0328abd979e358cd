"""Chart fixtures: helm (built once from Go modules and cached, or $HELM), and for install tests a control plane
and the AWS simulator of their own."""

import pytest
from helm_cli import Helm
from kubernetes import config

from aurora_restore_devenv.controlplane import ControlPlane, find_binaries
from aurora_restore_devenv.controlplane.binaries import find_helm
from aurora_restore_devenv.simulator import SimulatorProcess


@pytest.fixture(scope="session")
def helm(tmp_path_factory) -> Helm:
    return Helm(find_helm(), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"), find_binaries()).start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def admin_client(control_plane):
    with config.new_client_from_config(str(control_plane.kubeconfig_path)) as api_client:
        yield api_client


@pytest.fixture(scope="session")
def simulator_url(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("simulator") / "simulator.log"
    with SimulatorProcess(delay=0.5, log_path=log_path) as process:
        yield process.url
