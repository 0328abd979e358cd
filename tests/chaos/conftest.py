"""The chaos suite's own environment: a control plane, the chart's RBAC, a policy and a simulator with databases,
built for this module and torn down at its end (the suite restarts the apiserver, so it never shares the e2e
session's). The e2e helpers (restores.py, databases.py) are reused from tests/e2e, put on sys.path here."""

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

E2E = Path(__file__).resolve().parent.parent / "e2e"
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

from chart.helm_cli import Helm  # noqa: E402
from kubernetes import client, config  # noqa: E402
from restores import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, SESSION_POLICY, create_policy  # noqa: E402

from aurora_restore_devenv.controlplane import ControlPlane, find_binaries  # noqa: E402
from aurora_restore_devenv.controlplane.binaries import find_helm  # noqa: E402
from aurora_restore_devenv.controlplane.proxy import ConnectionCutter  # noqa: E402
from aurora_restore_devenv.crds import install_crds  # noqa: E402
from aurora_restore_devenv.environment import OPERATOR_ROLE_ARN  # noqa: E402
from aurora_restore_devenv.simulator import SimulatorProcess  # noqa: E402


def _e2e_constant(name: str):
    """A constant of tests/e2e/conftest.py (loaded under another module name: `conftest` is pytest's)."""
    spec = importlib.util.spec_from_file_location("e2e_conftest_constants", E2E / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


# The e2e suite's short leader timings: a standby takes over within seconds.
LEADER_TIMINGS = _e2e_constant("LEADER_TIMINGS")
# The e2e suite's batch window and request budget, sized for a short poll.
SCALE_SETTINGS = _e2e_constant("SCALE_SETTINGS")
# Long enough that the restores outlast the kills of the default run.
SIMULATED_RDS_DELAY_SECONDS = 2.0
# Setup and the final checks must not be thrown off by a slow moment of the simulator.
ADMIN_RETRIES = Config(retries={"max_attempts": 10, "mode": "standard"})


@dataclass
class ChaosEnvironment:
    plane: ControlPlane
    api_client: client.ApiClient
    cutter: ConnectionCutter
    operator_kubeconfig: Path
    simulator: SimulatorProcess
    db_ca_file: str
    workdir: Path

    def aws_client(self, service: str, region: str = "us-east-1"):
        """A client of the test's own (admin) identity in the operator's account."""
        return boto3.client(service, region_name=region, endpoint_url=self.simulator.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing", config=ADMIN_RETRIES)

    def session_in(self, account: str) -> boto3.session.Session:
        """A session acting in `account`, through the simulator's STS as a user of that account would."""
        sts = self.aws_client("sts")
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/tester",
                                      RoleSessionName="chaos")["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], region_name="us-east-1")

    def client_in(self, account: str, service: str, region: str):
        if account == "123456789012":
            return self.aws_client(service, region)
        return self.session_in(account).client(service, region_name=region, endpoint_url=self.simulator.url,
                                               config=ADMIN_RETRIES)


@pytest.fixture(scope="module")
def chaos_env(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chaos")
    plane = ControlPlane(workdir / "controlplane", find_binaries()).start()
    cutter = None
    try:
        api_client = config.new_client_from_config(str(plane.kubeconfig_path))
        install_crds(api_client)
        home = workdir / "helm-home"
        home.mkdir()
        Helm(find_helm(), home).install(
            plane.kubeconfig_path, "aurora-restore-operator", OPERATOR_NAMESPACE,
            {"aws": {"roleArn": OPERATOR_ROLE_ARN, "region": "us-east-1"}},
        )
        service_account = plane.token_for_service_account(
            OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, workdir / "operator-direct.kubeconfig")
        create_policy(api_client, "chaos-namespaces", SESSION_POLICY)
        # The operator reaches the apiserver through the cutter, so that cut_all() breaks its watches.
        cutter = ConnectionCutter("127.0.0.1", plane.secure_port).start()
        operator_kubeconfig = cutter.write_kubeconfig(service_account, workdir / "operator.kubeconfig")
        with SimulatorProcess(
            delay=SIMULATED_RDS_DELAY_SECONDS, log_path=workdir / "simulator.log", databases=True,
            data_dir=workdir / "simulator-data", restorable_lag=1.0,
        ) as simulator:
            ca = workdir / "db-ca.pem"
            ca.write_text(simulator.client.ca_pem())
            yield ChaosEnvironment(plane, api_client, cutter, operator_kubeconfig, simulator, str(ca), workdir)
    finally:
        if cutter is not None:
            cutter.stop()
        plane.stop()
