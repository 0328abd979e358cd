"""`aurora-restore-dev up|seed|down`: the whole local environment in one directory.

up starts a control plane (etcd + kube-apiserver), the AWS simulator and the operator (serving Prometheus metrics
at the AURORA_RESTORE_METRICS_URL it exports), installs the CRDs and writes DIR/kubeconfig and DIR/env; everything
it starts is recorded in DIR/dev.json so `down` can stop it from another shell, and a second `up` on a running DIR
is refused instead of clashing. The operator runs under a supervisor (supervisor.py) that restarts it whenever it
dies, as a Deployment would; DIR/operator.pid always holds the pid of the operator process running now.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
from kubernetes import client, config

from aurora_restore.api import GROUP, VERSION
from aurora_restore.api.policy import POLICY_KIND, POLICY_PLURAL

from .controlplane import ControlPlane, cached_binaries_dir, find_binaries, stop_from_state
from .controlplane.server import http_get, log_tail, stop_pid
from .controlplane.server import is_running as process_running
from .crds import install_crds
from .demo_data import seed as seed_demo_data
from .operator_process import READY_TIMEOUT_SECONDS, free_port, operator_command, operator_environment
from .simulator import SimulatorApiError, SimulatorProcess

STATE_FILE = "dev.json"
OPERATOR_PID_FILE = "operator.pid"
# The operator's replica name (AURORA_RESTORE_POD_NAME): fixed, as a pod's name survives container restarts.
OPERATOR_POD_NAME = "aurora-restore-operator-dev"
# Below stop_pid's SIGTERM timeout, so `down` lets the supervisor SIGKILL a stuck operator and exit by itself.
OPERATOR_STOP_TIMEOUT_SECONDS = 15
DEFAULT_REGION = "us-east-1"
# The simulator accepts any credentials; these only make boto3's chain resolve without a real account.
SIMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class DevEnvironmentError(Exception):
    """The local environment cannot start or is not running; the message says what to do."""


def _alive(pid: int | None) -> bool:
    return bool(pid) and process_running(pid)


def _read_state(directory: Path) -> dict:
    path = directory / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def aws_environment(simulator_url: str) -> dict[str, str]:
    """What a process needs to talk to the simulator with boto3's default chain."""
    return {
        "AWS_ENDPOINT_URL": simulator_url,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        **SIMULATOR_CREDENTIALS,
        "AURORA_RESTORE_SIM_URL": simulator_url,
    }


def is_running(directory: Path) -> bool:
    """True when `up` was run on DIR and the simulator and the operator's supervisor it started are still alive."""
    pids = _read_state(Path(directory).resolve()).get("pids", {})
    return bool(pids) and all(_alive(pid) for pid in pids.values())


OPERATOR_ROLE_ARN = "arn:aws:iam::123456789012:role/aurora-restore-operator"
# Any JWT-shaped token: the simulator's STS does not validate it, as EKS's OIDC provider would.
WEB_IDENTITY_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXVyb3JhLXJlc3RvcmUtc3lzdGVtOm9wZXJhdG9yIn0.c2ln"
)


# The local environment is single-tenant: one policy lets every namespace do everything (the chart's documented
# permissive example is the same), so the demo and the examples work unchanged.
LOCAL_POLICY_NAME = "allow-everything-locally"
PERMISSIVE_POLICY = {
    "namespaces": ["*"], "targets": [{}], "sources": [{}], "roles": ["*"], "secretsManagerSecrets": ["*"],
    "replace": {"allowed": True, "onlyClustersCreatedByOperator": False}, "allowFinalSnapshotSkip": True,
    "allowJobHooks": True, "snapshotShareAccounts": ["*"],
}


def apply_policy(api_client: client.ApiClient, name: str, spec: dict) -> None:
    """Create the AuroraRestorePolicy, or replace the one of that name (whole: no key of an older spec stays)."""
    objects = client.CustomObjectsApi(api_client)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": POLICY_KIND, "metadata": {"name": name}, "spec": spec}
    try:
        objects.create_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, body)
    except client.exceptions.ApiException as error:
        if error.status != 409:
            raise
        existing = objects.get_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, name)
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        objects.replace_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, name, body)


def operator_aws_environment(simulator_url: str, directory: Path) -> dict[str, str]:
    """IRSA as EKS sets it up (role ARN + web identity token file), pointed at the simulator: no static keys."""
    token_file = Path(directory) / "web-identity-token"
    token_file.write_text(WEB_IDENTITY_TOKEN)
    return {
        "AWS_ENDPOINT_URL": simulator_url,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        "AWS_ROLE_ARN": OPERATOR_ROLE_ARN,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ROLE_SESSION_NAME": "aurora-restore-operator",
    }


def up(
    directory: Path, aws_delay: float, databases: bool | None = None, progress=print, events: bool = False
) -> dict[str, str]:
    """Start everything and return the environment written to DIR/env. With `events`, the operator's account gets
    an SQS queue of its RDS events (rds_events.py) and the operator wakes up on them."""
    directory = Path(directory).resolve()
    state = _read_state(directory)
    running = [name for name, pid in state.get("pids", {}).items() if _alive(pid)]
    if _orphaned_operator(directory, state):
        running.append("operator")
    if running:
        raise DevEnvironmentError(
            f"a dev environment is already running from {directory} ({', '.join(running)}); "
            f"run `aurora-restore-dev down --dir {directory}` first"
        )
    directory.mkdir(parents=True, exist_ok=True)
    binaries = find_binaries(progress)
    progress("starting etcd and kube-apiserver")
    control_plane = ControlPlane(directory / "controlplane", binaries, stop_at_exit=False).start()
    try:
        progress(f"starting the AWS simulator (RDS operations take {aws_delay:g}s)")
        simulator = SimulatorProcess(
            delay=aws_delay, log_path=directory / "simulator.log", detached=True, databases=databases,
            data_dir=directory / "simulator-data",
        ).start()
        ca_bundle = directory / "db-ca.pem"
        try:
            ca_bundle.write_text(simulator.client.ca_pem())
        except SimulatorApiError:  # started without database servers: nothing to verify against
            ca_bundle.unlink(missing_ok=True)
        simulator_url = simulator.url
        kubeconfig = directory / "kubeconfig"
        shutil.copyfile(control_plane.kubeconfig_path, kubeconfig)
        api_client = config.new_client_from_config(str(kubeconfig))
        progress("installing CRDs")
        install_crds(api_client)
        _ensure_namespace(api_client, "aurora-restore-system")
        progress(f"allowing every restore: AuroraRestorePolicy {LOCAL_POLICY_NAME}")
        apply_policy(api_client, LOCAL_POLICY_NAME, PERMISSIVE_POLICY)
        metrics_port = free_port()  # fixed, like /healthz's: every restart of the operator serves it there again
        env = {"KUBECONFIG": str(kubeconfig), **aws_environment(simulator_url),
               "AURORA_RESTORE_METRICS_URL": f"http://127.0.0.1:{metrics_port}/metrics"}
        operator_env = {
            "KUBECONFIG": str(kubeconfig),
            "AURORA_RESTORE_METRICS_PORT": str(metrics_port),
            **operator_aws_environment(simulator_url, directory),
            "AURORA_RESTORE_POLL_INTERVAL_SECONDS": str(max(0.5, min(aws_delay / 2, 5))),
            "AURORA_RESTORE_LEASE_NAMESPACE": "aurora-restore-system",
        }
        if events:
            from .rds_events import create_events_queue

            progress("creating the RDS events queue (EventBridge rule -> SQS)")
            queue_url = create_events_queue(simulator_url, OPERATOR_ROLE_ARN.split(":")[4], DEFAULT_REGION)
            operator_env["AURORA_RESTORE_EVENTS_QUEUE_URL"] = env["AURORA_RESTORE_EVENTS_QUEUE_URL"] = queue_url
        if ca_bundle.exists():
            operator_env["AURORA_RESTORE_DB_CA_BUNDLE"] = str(ca_bundle)
        else:  # no database servers, so no CA: nothing to connect to either (the operator warns at start)
            operator_env["AURORA_RESTORE_DB_TLS_VERIFY"] = "false"
        progress("starting the operator (under a supervisor that restarts it)")
        supervisor, healthz = start_supervised_operator(directory, operator_env)
    except BaseException:
        control_plane.stop()
        raise
    (directory / STATE_FILE).write_text(
        json.dumps(
            {
                "pids": {"supervisor": supervisor, "simulator": simulator.pid},
                "operator": {
                    "pid_file": str(directory / OPERATOR_PID_FILE),
                    "healthz": healthz,
                    "log": str(directory / "operator.log"),
                    "supervisor_log": str(directory / "supervisor.log"),
                },
                "env": env,
            },
            indent=2,
        )
    )
    exports = {**env, "PATH": f"{cached_binaries_dir()}:{os.environ.get('PATH', '')}"}
    (directory / "env").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items()))
    progress(f"ready: `source {directory / 'env'}` then `kubectl get aurorarestores -A`")
    return env


def start_supervised_operator(directory: Path, operator_env: dict[str, str]) -> tuple[int, str]:
    """Start the supervisor (detached, in its own session) running the operator; return its pid and the /healthz URL
    once the operator answers there. A supervisor whose operator dies before that is stopped, and the error says why.
    """
    port = free_port()  # fixed for the supervisor's lifetime: every restart serves /healthz there again
    healthz = f"http://127.0.0.1:{port}/healthz"
    pid_file = directory / OPERATOR_PID_FILE
    pid_file.unlink(missing_ok=True)
    supervisor_log = directory / "supervisor.log"
    # The environment OperatorProcess gives its process (AWS_* of this one left out, the replica name added).
    environment = operator_environment(operator_env, OPERATOR_POD_NAME)
    command = [
        sys.executable, "-m", "aurora_restore_devenv.supervisor",
        "--pid-file", str(pid_file), "--log", str(supervisor_log), "--output", str(directory / "operator.log"),
        "--stop-timeout", str(OPERATOR_STOP_TIMEOUT_SECONDS),
        "--", *operator_command(None, port),
    ]
    with supervisor_log.open("ab") as log:
        supervisor = subprocess.Popen(
            command, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_operator(directory, supervisor, healthz)
    except BaseException:  # Ctrl-C included: nothing records the supervisor yet, so nothing else would stop it
        stop_pid(supervisor.pid)
        supervisor.wait()
        raise
    return supervisor.pid, healthz


def _wait_for_operator(directory: Path, supervisor: subprocess.Popen, healthz: str) -> None:
    first_pid = None
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        problem = None
        if supervisor.poll() is not None:
            problem = f"the operator's supervisor exited with {supervisor.returncode}"
        else:
            pid = read_operator_pid(directory)
            first_pid = first_pid or pid
            if pid is not None and (pid != first_pid or not _alive(pid)):
                problem = "the operator exited while starting"
            elif pid is not None:
                try:
                    http_get(healthz)
                    return
                except OSError:
                    pass
            if problem is None and time.monotonic() > deadline:
                problem = f"the operator did not become healthy in {READY_TIMEOUT_SECONDS}s"
        if problem is not None:
            raise DevEnvironmentError(
                f"{problem} (restarts: {directory / 'supervisor.log'}); {log_tail(directory / 'operator.log')}"
            )
        time.sleep(0.2)


def read_operator_pid(directory: Path) -> int | None:
    """The pid in DIR/operator.pid (written atomically by the supervisor), or None when there is none."""
    try:
        return int((Path(directory) / OPERATOR_PID_FILE).read_text())
    except (OSError, ValueError):
        return None


def _ensure_namespace(api_client: client.ApiClient, name: str) -> None:
    api = client.CoreV1Api(api_client)
    try:
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except client.exceptions.ApiException as error:
        if error.status != 409:
            raise


def seed(directory: Path, progress=print) -> None:
    """Create the demo source data in the running environment's simulator."""
    state = _read_state(Path(directory).resolve())
    if not _alive(state.get("pids", {}).get("simulator")):
        raise DevEnvironmentError(f"no dev environment is running from {directory}; run `aurora-restore-dev up`")
    env = state["env"]
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    os.environ["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL"]
    ca_bundle = Path(directory).resolve() / "db-ca.pem"
    seed_demo_data(session, env["AURORA_RESTORE_SIM_URL"], ca_bundle if ca_bundle.exists() else None, progress)


def down(directory: Path, progress=print) -> None:
    """Stop the operator (through its supervisor), the simulator and the control plane started by `up` on DIR."""
    directory = Path(directory).resolve()
    state = _read_state(directory)
    pids = state.get("pids", {})
    supervisor = pids.get("supervisor")
    if _alive(supervisor):
        stop_pid(supervisor)  # it stops the operator first
        progress(f"stopped the operator and its supervisor (pid {supervisor})")
    operator = _orphaned_operator(directory, state)
    if operator:
        stop_pid(operator)
        progress(f"stopped operator (pid {operator})")
    for name in ("operator", "simulator"):  # "operator": a DIR/dev.json written before the supervisor existed
        pid = pids.get(name)
        if _alive(pid):
            stop_pid(pid)
            progress(f"stopped {name} (pid {pid})")
    if stop_from_state(directory / "controlplane"):
        progress("stopped etcd and kube-apiserver")
    (directory / STATE_FILE).unlink(missing_ok=True)
    (directory / OPERATOR_PID_FILE).unlink(missing_ok=True)


def _orphaned_operator(directory: Path, state: dict) -> int | None:
    """An operator left running by a supervisor that was killed (SIGKILL: no chance to stop its child).

    It is still in the supervisor's session, which tells it apart from an unrelated process that got its pid.
    """
    supervisor = state.get("pids", {}).get("supervisor")
    operator = read_operator_pid(directory)
    if not supervisor or _alive(supervisor) or not _alive(operator):
        return None
    try:
        return operator if os.getsid(operator) == supervisor else None
    except OSError:
        return None
