"""End-to-end fixtures: a real kube-apiserver + etcd and the AWS simulator for the session, and per test a fresh
namespace with its own operator process (so a test can kill it with SIGKILL and start it again).

Under pytest-xdist (`make test`) every worker has its own session: control plane, simulator, temporary
directories and ports of its own. The audits of the whole run read the other workers' usage (workers.py)."""

import os
import uuid
from pathlib import Path

import boto3
import pytest
import workers
from chart.helm_cli import Helm
from kubernetes import client, config

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore_devenv.controlplane import ControlPlane, find_binaries
from aurora_restore_devenv.crds import install_crds
from aurora_restore_devenv.controlplane.binaries import find_helm
from aurora_restore_devenv.environment import OPERATOR_ROLE_ARN, operator_aws_environment
from aurora_restore_devenv.simulator import SimulatorClient, SimulatorProcess
from restores import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, SESSION_POLICY, CallWindow, create_policy
from session_usage import operator_actions_by_account, used_permissions
from aurora_restore_devenv.operator_process import OperatorProcess, free_port

SIMULATED_RDS_DELAY_SECONDS = 1.0
OPERATOR_POLL_SECONDS = "0.3"
# Batching and the request budget stay on, sized for a 0.3-s poll: the default window (0.5 s) would triple every
# wait, and the default budget (8 per second) would make the suites that start hundreds of restores crawl.
SCALE_SETTINGS = {
    "AURORA_RESTORE_AWS_BATCH_WINDOW_SECONDS": "0.05",
    "AURORA_RESTORE_AWS_REQUESTS_PER_SECOND": "200",
    "AURORA_RESTORE_AWS_REQUEST_BURST": "200",
}
LEADER_TIMINGS = {
    "AURORA_RESTORE_LEADER_LEASE_DURATION_SECONDS": "4",
    "AURORA_RESTORE_LEADER_RENEW_DEADLINE_SECONDS": "3",
    "AURORA_RESTORE_LEADER_RETRY_PERIOD_SECONDS": "0.5",
}


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"), find_binaries()).start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def api_client(control_plane):
    api = config.new_client_from_config(str(control_plane.kubeconfig_path))
    install_crds(api)
    return api


@pytest.fixture(scope="session")
def simulator_process(tmp_path_factory):
    """The AWS simulator, every simulated cluster backed by a real PostgreSQL or MariaDB server."""
    directory = tmp_path_factory.mktemp("simulator")
    with SimulatorProcess(
        delay=SIMULATED_RDS_DELAY_SECONDS, log_path=directory / "simulator.log", databases=True,
        data_dir=directory / "data",
        # LatestRestorableTime trails the present by 1 s (RDS: about 5 minutes), so that a restoreTime of a second
        # ago, as the point-in-time tests ask for, lies within the restorable window.
        restorable_lag=1.0,
        # Every statement clients send is in the servers' logs, which tests search for passwords.
        db_log_statements=True,
    ) as process:
        yield process


@pytest.fixture(scope="session")
def db_ca_file(simulator_process, tmp_path_factory) -> str:
    """The CA the simulated database servers' TLS certificates chain to (what the RDS CA bundle is in AWS)."""
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    path.write_text(simulator_process.client.ca_pem())
    return str(path)


@pytest.fixture(scope="session")
def simulator_url(simulator_process):
    return simulator_process.url


@pytest.fixture(scope="session")
def aws(simulator_url):
    """A boto3 session talking to the simulator (the operator under test uses the same endpoint)."""
    os.environ["AWS_ENDPOINT_URL"] = simulator_url
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


@pytest.fixture
def namespace(api_client, request, run_usage):
    """A fresh namespace per test (kept after it, for the session's secret scan and audits): t-..., which the
    session's policy covers; p-... for tests marked `own_policies`, which bring their own."""
    prefix = "p" if request.node.get_closest_marker("own_policies") else "t"
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api_client).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    from secret_scan import SESSION, kubernetes_secret_values

    SESSION.record_secrets(kubernetes_secret_values(api_client, name))  # owned ones go with their restores
    objects = client.CustomObjectsApi(api_client)
    restores = objects.list_namespaced_custom_object(GROUP, VERSION, name, PLURAL)["items"]
    SESSION.record_restores(restores)  # deleted next: the session's secret scan reads their statuses later
    for item in restores:
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, name, PLURAL, item["metadata"]["name"], {"metadata": {"finalizers": None}}
        )
        objects.delete_namespaced_custom_object(GROUP, VERSION, name, PLURAL, item["metadata"]["name"])


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane, api_client, tmp_path_factory) -> Path:
    """The chart installed cluster-wide; the operator authenticates with its ServiceAccount's token, so every
    e2e test runs under the chart's RBAC (and the RBAC audit can compare what was granted with what was used)."""
    home = tmp_path_factory.mktemp("helm-home")
    Helm(find_helm(), home).install(
        control_plane.kubeconfig_path, "aurora-restore-operator", OPERATOR_NAMESPACE,
        {"aws": {"roleArn": OPERATOR_ROLE_ARN, "region": "us-east-1"}},
    )
    return control_plane.token_for_service_account(
        OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, home / "operator-kubeconfig"
    )


@pytest.fixture(scope="session")
def run_usage(request):
    """Under pytest-xdist, what this worker's session used, written down at its end (before the control plane and
    the simulator stop) for the worker that runs the audits of the whole run; unless this worker ran them."""
    if workers.WORKER is None:
        yield
        return
    # Requested here, so that they are torn down after this fixture's end has read them.
    control_plane, api_client, simulator_process, operator_kubeconfig = (request.getfixturevalue(name) for name in (
        "control_plane", "api_client", "simulator_process", "operator_kubeconfig"))
    yield
    if request.config.stash.get(workers.AUDITED_HERE, False):
        return
    from secret_scan import SESSION, scan_session

    simulator = simulator_process.client
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
    used, denied = used_permissions(control_plane.read_audit_events(), user)
    workers.write_usage(request.config, {
        "worker": workers.WORKER,
        "kubernetes_permissions": sorted(used),
        "denied": denied,
        "aws_actions": {account: sorted(actions)
                        for account, actions in operator_actions_by_account(simulator.calls()).items()},
        "secret_scan": scan_session(SESSION, api_client, simulator, simulator_process.log_path, operator_kubeconfig)
        if SESSION.operator_logs else None,
    })


@pytest.fixture(scope="session")
def other_workers_usage(request) -> list[dict]:
    """For the audits of the whole run: the usage of every other pytest-xdist worker's session, once they have all
    finished (none outside xdist)."""
    request.config.stash[workers.AUDITED_HERE] = True
    return workers.other_usages(request.config)


@pytest.fixture(scope="session")
def session_policy(api_client) -> str:
    """The AuroraRestorePolicy under which every test namespace restores (restores.SESSION_POLICY)."""
    create_policy(api_client, "e2e-test-namespaces", SESSION_POLICY)
    return "e2e-test-namespaces"


@pytest.fixture
def operator_env(operator_kubeconfig, simulator_url, namespace, tmp_path, db_ca_file, session_policy):
    """Web-identity credentials only (IRSA against the simulator's STS), as in a pod; the chart's RBAC."""
    return {
        "KUBECONFIG": str(operator_kubeconfig),
        **operator_aws_environment(simulator_url, tmp_path),
        "AURORA_RESTORE_DB_CA_BUNDLE": db_ca_file,
        "AURORA_RESTORE_METRICS_PORT": str(free_port()),
        "AURORA_RESTORE_POLL_INTERVAL_SECONDS": OPERATOR_POLL_SECONDS,
        "AURORA_RESTORE_RETRY_BACKOFF_MAX_SECONDS": "2",
        "AURORA_RESTORE_LEASE_NAMESPACE": OPERATOR_NAMESPACE,
        # One leader Lease per test: a test's replicas compete only with each other. Short timings, so that a
        # standby takes over from a killed leader within seconds.
        "AURORA_RESTORE_LEADER_LEASE_NAME": f"leader-{namespace}",
        **LEADER_TIMINGS,
        **SCALE_SETTINGS,
    }


@pytest.fixture
def aws_calls(simulator):
    """The simulator's request log from this test's start (before its operator starts): what the test caused."""
    return CallWindow(simulator)


@pytest.fixture
def operator(operator_env, namespace, tmp_path, request, aws_calls):
    """The operator, cluster-wide as the chart runs it; `.kill()` and `.start()` to simulate a crash.

    Each test's restores live in its own namespace; the teardown deletes them, so the next test's operator
    finds no leftovers."""
    process = OperatorProcess(operator_env, tmp_path / "operator.log", namespace=None).start()
    yield process
    from secret_scan import SESSION

    SESSION.record_operator(request.node.nodeid, process.log_path, operator_env["AURORA_RESTORE_METRICS_PORT"])
    process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(f"--- operator log ({process.log_path}) ---\n" + process.log_path.read_text()[-20000:])


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def uniq() -> str:
    """A suffix that keeps this test's AWS names apart from other tests' in the shared simulator."""
    return uuid.uuid4().hex[:6]


@pytest.fixture
def simulator(simulator_url):
    """The simulator's control API; faults, page size, delay and restorable lag are reset after each test."""
    sim = SimulatorClient(simulator_url)
    delay, lag = sim.delay(), sim.restorable_lag()
    yield sim
    sim.clear_faults()
    sim.set_page_size(None)
    sim.set_delay(delay)
    sim.set_restorable_lag(lag)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Tests marked `after_all_e2e` audit what the whole e2e run did: run them last, all in one pytest-xdist worker
    (their xdist_group), which waits for the other workers' usage."""
    items.sort(key=lambda item: item.get_closest_marker("after_all_e2e") is not None)
    for item in items:
        if item.get_closest_marker("after_all_e2e"):
            item.add_marker(pytest.mark.xdist_group(workers.AUDIT_GROUP))


def pytest_collection_finish(session):
    workers.mark_started(session.config)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """After the session's fixtures are torn down (so its usage is written)."""
    workers.mark_finished(session.config)
