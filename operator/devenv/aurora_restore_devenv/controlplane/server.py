"""A real etcd, kube-apiserver and kube-controller-manager on loopback ports, in the style of controller-runtime's
envtest.

The controller-manager runs only the garbage collector and the namespace controller: ownerReferences cascade and
deleted namespaces go away, as in a cluster. There is no scheduler or kubelet, and no other controller: Deployments
create no ReplicaSets, Pods stay Pending, namespaces get no default ServiceAccount.

Layout of the working directory (everything a start() writes; start() wipes earlier etcd data)::

    controlplane.json     pids, ports and paths, so ``stop_from_state`` can stop it from another process
    kubeconfig            admin kubeconfig (client certificate, O=system:masters), certificates embedded
    etcd.log  kube-apiserver.log  kube-controller-manager.log  audit.log  audit-policy.yaml
    etcd-data/  pki/
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from .binaries import Binaries
from .certs import ADMIN_USER, Pki, write_pki

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
# Any URL works as issuer; this is the one real clusters commonly use, so tokens look familiar.
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "aurora-restore-dev"

# Metadata for every request: who did which verb on which resource, with no request or response bodies
# (Secrets never reach the log). RequestReceived is omitted so each request is logged once, when complete.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}

# The controllers kube-controller-manager runs (--controllers; garbagecollector and namespace are older aliases).
# The job controller gives a Job its Pods (no kubelet runs them), for the operator's Job hooks.
CONTROLLERS = ("garbage-collector-controller", "namespace-controller", "job-controller")

# The components in the state file, in the order they are stopped.
COMPONENTS = ("kube_controller_manager", "kube_apiserver", "etcd")

STOP_TIMEOUT_SECONDS = 20.0
# Starts on new ports after a server found one of its ports taken.
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40


class ControlPlaneError(Exception):
    """The control plane did not start or could not be reached; the message carries the relevant log tail."""


class ControlPlane:
    """etcd, kube-apiserver (RBAC, ServiceAccount tokens, an audit log) and kube-controller-manager under ``workdir``.

    kube-controller-manager runs when ``binaries`` has one (find_binaries always gives one).

    Use as a context manager or call start()/stop(). Unless ``stop_at_exit`` is False (a ``dev up`` that must
    outlive its command), processes still running when the interpreter exits are stopped then.
    """

    def __init__(
        self,
        workdir: Path,
        binaries: Binaries,
        *,
        stop_at_exit: bool = True,
        start_timeout: float = 60.0,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.binaries = binaries
        self.stop_at_exit = stop_at_exit
        self.start_timeout = start_timeout
        self.kubeconfig_path = self.workdir / "kubeconfig"
        self.audit_log_path = self.workdir / "audit.log"
        self.audit_policy_path = self.workdir / "audit-policy.yaml"
        self.etcd_log_path = self.workdir / "etcd.log"
        self.apiserver_log_path = self.workdir / "kube-apiserver.log"
        self.controller_manager_log_path = self.workdir / "kube-controller-manager.log"
        self.state_path = state_path(self.workdir)
        self.etcd_data_dir = self.workdir / "etcd-data"
        self.pki: Pki | None = None
        self.etcd: subprocess.Popen[bytes] | None = None
        self.apiserver: subprocess.Popen[bytes] | None = None
        self.controller_manager: subprocess.Popen[bytes] | None = None
        self.etcd_client_port = 0
        self.etcd_peer_port = 0
        self.secure_port = 0
        self.controller_manager_port = 0

    @property
    def url(self) -> str:
        if not self.secure_port:
            raise ControlPlaneError("the control plane has not been started")
        return f"https://127.0.0.1:{self.secure_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Start etcd, kube-apiserver, then kube-controller-manager, each once healthy; on a failure stop them all.

        Returns once the apiserver's /readyz and the controller-manager's /healthz answer ok.
        """
        refuse_if_running(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = write_pki(self.workdir / "pki")
        self.audit_policy_path.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
        # The ports are free when picked, but another process (a parallel test worker) may bind one before our
        # server does: then that server exits with "address already in use", and the plane starts again.
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start_on_free_ports()
            except ControlPlaneError as error:
                if attempt == START_ATTEMPTS or "address already in use" not in str(error).lower():
                    raise

    def _start_on_free_ports(self) -> ControlPlane:
        shutil.rmtree(self.etcd_data_dir, ignore_errors=True)
        self.audit_log_path.unlink(missing_ok=True)
        self.etcd_client_port, self.etcd_peer_port, self.secure_port, self.controller_manager_port = pick_free_ports(4)
        self.apiserver = self.controller_manager = None
        if self.stop_at_exit:
            atexit.register(self.stop)
        try:
            self.etcd = spawn([str(self.binaries.etcd), *self.etcd_args()], self.etcd_log_path)
            self.write_state()
            self.wait_for_etcd()
            self.apiserver = spawn([str(self.binaries.kube_apiserver), *self.apiserver_args()], self.apiserver_log_path)
            self.write_state()
            self.wait_for_apiserver()
            self.write_admin_kubeconfig()
            if self.binaries.kube_controller_manager is not None:
                self.controller_manager = spawn(
                    [str(self.binaries.kube_controller_manager), *self.controller_manager_args()],
                    self.controller_manager_log_path,
                )
                self.write_state()
                self.wait_for_controller_manager()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop kube-controller-manager, kube-apiserver, then etcd (SIGTERM, SIGKILL after STOP_TIMEOUT_SECONDS).

        Safe to call twice.
        """
        if self.etcd is None:
            return  # never started: the state file, if any, belongs to someone else
        for process in (self.controller_manager, self.apiserver, self.etcd):
            if process is not None:
                stop_child(process)
        self.state_path.unlink(missing_ok=True)
        if self.stop_at_exit:
            atexit.unregister(self.stop)

    def restart_apiserver(self, down_seconds: float = 0.0) -> None:
        """Stop kube-apiserver only, stay down ``down_seconds``, start it again and return once /readyz is ok.

        What a control-plane upgrade or an apiserver crash looks like to clients. The new process gets the same
        flags: same port, serving certificate, client CA and ServiceAccount keys, and the same etcd, whose data is
        kept. So kubeconfigs and tokens issued before keep working; open connections (watches included) break and
        clients have to reconnect. Stopping is SIGTERM, then SIGKILL after STOP_TIMEOUT_SECONDS. The log and the
        audit log are appended to; the state file records the new pid. kube-controller-manager keeps running and
        reconnects by itself, as it does in a cluster (its informers relist; nothing is lost, only delayed).
        """
        if self.apiserver is None or self.etcd is None:
            raise ControlPlaneError("the control plane has not been started")
        if self.etcd.poll() is not None:
            raise ControlPlaneError(f"etcd has exited with code {self.etcd.returncode}; {log_tail(self.etcd_log_path)}")
        stop_child(self.apiserver)
        drop_partial_last_line(self.audit_log_path)  # a SIGKILLed apiserver may leave half an event
        if down_seconds > 0:
            time.sleep(down_seconds)
        self.apiserver = spawn(
            [str(self.binaries.kube_apiserver), *self.apiserver_args()], self.apiserver_log_path, append=True
        )
        self.write_state()
        self.wait_for_apiserver()

    @property
    def pids(self) -> list[int]:
        """Pids of the processes this instance started, running or not."""
        return [
            process.pid for process in (self.controller_manager, self.apiserver, self.etcd) if process is not None
        ]

    def etcd_args(self) -> list[str]:
        """One member on loopback; --unsafe-no-fsync because test data is disposable and fsync dominates latency."""
        peer_url = f"http://127.0.0.1:{self.etcd_peer_port}"
        return [
            f"--name={CLUSTER_NAME}",
            f"--data-dir={self.etcd_data_dir}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={CLUSTER_NAME}={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",
        ]

    def apiserver_args(self) -> list[str]:
        """Flags in the style of envtest, plus an audit log; docs/control-plane.md explains each one."""
        assert self.pki is not None
        return [
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.secure_port}",
            f"--tls-cert-file={self.pki.serving_cert}",
            f"--tls-private-key-file={self.pki.serving_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={self.pki.service_account_public_key}",
            f"--service-account-signing-key-file={self.pki.service_account_private_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            # The default/kubernetes Endpoints may not point at loopback, so keeping them in sync only logs errors.
            "--endpoint-reconciler-type=none",
            # On SIGTERM, end open watches instead of waiting up to --request-timeout (60 s) for them to finish:
            # the controller-manager always holds some, and restart_apiserver would otherwise wait for SIGKILL.
            "--shutdown-watch-termination-grace-period=5s",
            f"--audit-policy-file={self.audit_policy_path}",
            f"--audit-log-path={self.audit_log_path}",
        ]

    def controller_manager_args(self) -> list[str]:
        """Only the controllers that make deletion behave as in a cluster; docs/control-plane.md explains each flag.

        It serves /healthz with the apiserver's serving certificate (it names 127.0.0.1), so the check verifies it.
        """
        assert self.pki is not None
        return [
            f"--kubeconfig={self.kubeconfig_path}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.controller_manager_port}",
            f"--tls-cert-file={self.pki.serving_cert}",
            f"--tls-private-key-file={self.pki.serving_key}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            # The namespace controller lists and deletes every namespaced resource type of a namespace; at the
            # default 20 requests per second that alone takes seconds per namespace.
            "--kube-api-qps=100",
            "--kube-api-burst=200",
        ]

    def wait_for_etcd(self) -> None:
        assert self.etcd is not None
        wait_until(
            lambda: json.loads(http_get(f"{self.etcd_url}/health")).get("health") == "true",
            process=self.etcd,
            name="etcd",
            log_path=self.etcd_log_path,
            timeout=self.start_timeout,
        )

    def wait_for_apiserver(self) -> None:
        """/readyz turns ok once etcd is reachable and the bootstrap hooks (RBAC roles among them) have run."""
        assert self.apiserver is not None and self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        wait_until(
            lambda: http_get(f"{self.url}/readyz", context) == "ok",
            process=self.apiserver,
            name="kube-apiserver",
            log_path=self.apiserver_log_path,
            timeout=self.start_timeout,
        )

    def wait_for_controller_manager(self) -> None:
        """/healthz (served without authentication) turns ok once its controllers have started."""
        assert self.controller_manager is not None and self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        wait_until(
            lambda: http_get(f"https://127.0.0.1:{self.controller_manager_port}/healthz", context) == "ok",
            process=self.controller_manager,
            name="kube-controller-manager",
            log_path=self.controller_manager_log_path,
            timeout=self.start_timeout,
        )

    def write_state(self) -> None:
        """Record what runs where, before waiting for readiness, so even a half-started plane can be stopped."""
        state = {
            "workdir": str(self.workdir),
            "url": f"https://127.0.0.1:{self.secure_port}",
            "kubeconfig": str(self.kubeconfig_path),
            "audit_log": str(self.audit_log_path),
            "etcd": {
                "pid": self.etcd.pid if self.etcd else None,
                "client_port": self.etcd_client_port,
                "peer_port": self.etcd_peer_port,
                "binary": str(self.binaries.etcd),
            },
            "kube_apiserver": {
                "pid": self.apiserver.pid if self.apiserver else None,
                "secure_port": self.secure_port,
                "binary": str(self.binaries.kube_apiserver),
            },
            "kube_controller_manager": {
                "pid": self.controller_manager.pid if self.controller_manager else None,
                "secure_port": self.controller_manager_port,
                "binary": str(self.binaries.kube_controller_manager or ""),
            },
        }
        partial = self.state_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(state, indent=2) + "\n")
        partial.replace(self.state_path)  # readers never see half a file

    def write_admin_kubeconfig(self) -> None:
        assert self.pki is not None
        self.write_kubeconfig(
            self.kubeconfig_path,
            user_name=ADMIN_USER,
            user={
                "client-certificate-data": base64_file(self.pki.admin_cert),
                "client-key-data": base64_file(self.pki.admin_key),
            },
            namespace="default",
        )

    def write_kubeconfig(self, path: Path, *, user_name: str, user: dict[str, str], namespace: str) -> None:
        """A self-contained kubeconfig (certificates inline), readable by its owner only: it holds credentials."""
        assert self.pki is not None
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CLUSTER_NAME,
                    "cluster": {"server": self.url, "certificate-authority-data": base64_file(self.pki.ca_cert)},
                }
            ],
            "users": [{"name": user_name, "user": user}],
            "contexts": [
                {
                    "name": CLUSTER_NAME,
                    "context": {"cluster": CLUSTER_NAME, "user": user_name, "namespace": namespace},
                }
            ],
            "current-context": CLUSTER_NAME,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))

    def admin_api_client(self) -> kubernetes.client.ApiClient:
        """An API client for the admin identity; close it (or use it in a with block) when done."""
        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig_path))

    def token_for_service_account(
        self,
        namespace: str,
        name: str,
        kubeconfig_out: Path,
        *,
        expiration_seconds: int = 24 * 3600,
    ) -> Path:
        """Write a kubeconfig that authenticates as an existing ServiceAccount, to test what its RBAC allows.

        The token comes from the TokenRequest API (the way kubelets get Pod tokens), so it is bound to the
        ServiceAccount and stops working once that is deleted. The ServiceAccount must already exist.
        """
        with self.admin_api_client() as api_client:
            token_request = kubernetes.client.CoreV1Api(api_client).create_namespaced_service_account_token(
                name,
                namespace,
                kubernetes.client.AuthenticationV1TokenRequest(
                    spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
                ),
            )
        kubeconfig_out = Path(kubeconfig_out)
        self.write_kubeconfig(
            kubeconfig_out,
            user_name=f"system:serviceaccount:{namespace}:{name}",
            user={"token": token_request.status.token},
            namespace=namespace,
        )
        return kubeconfig_out

    def read_audit_events(self) -> list[dict[str, Any]]:
        """All audit events logged so far (one JSON object per line), oldest first.

        A line without its newline is still being written and is left for the next read.
        """
        if not self.audit_log_path.exists():
            return []
        with self.audit_log_path.open() as log:
            return [json.loads(line) for line in log if line.endswith("\n") and line.strip()]


def state_path(workdir: Path) -> Path:
    return Path(workdir) / "controlplane.json"


def stop_from_state(workdir: Path) -> bool:
    """Stop a control plane started by another process from ``workdir``; False if none was recorded.

    A recorded pid is only signalled while its command line still mentions ``workdir``: after a reboot the pid
    may belong to an unrelated process.
    """
    path = state_path(Path(workdir).resolve())
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    for component in COMPONENTS:
        pid = recorded_pid(state, component)
        if pid and is_our_process(pid, state["workdir"]):
            stop_pid(pid)
    path.unlink(missing_ok=True)
    return True


def refuse_if_running(workdir: Path) -> None:
    """Two control planes must not share a workdir: the second would wipe the first one's etcd data."""
    path = state_path(workdir)
    if not path.exists():
        return
    state = json.loads(path.read_text())
    running = [
        f"{component} (pid {pid})"
        for component in COMPONENTS
        if (pid := recorded_pid(state, component)) and is_our_process(pid, state["workdir"])
    ]
    if running:
        raise ControlPlaneError(
            f"a control plane is already running from {workdir}: {', '.join(running)}; stop it first"
        )


def recorded_pid(state: dict[str, Any], component: str) -> int | None:
    """The pid a state file records; state files written before the controller-manager was added lack it."""
    pid: int | None = state.get(component, {}).get("pid")
    return pid


def pick_free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out, all distinct; a small race remains until the servers bind them."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def spawn(command: list[str], log_path: Path, *, append: bool = False) -> subprocess.Popen[bytes]:
    """Start a server with its output in ``log_path`` (truncated first, unless ``append``).

    In its own session, so a Ctrl-C in the terminal reaches only the caller, which then stops the servers in order
    (controller-manager, apiserver, etcd) instead of etcd dying under a running apiserver.
    """
    with log_path.open("ab" if append else "wb") as log:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_until(
    check: Callable[[], bool], *, process: subprocess.Popen[bytes], name: str, log_path: Path, timeout: float
) -> None:
    """Poll ``check`` until it returns True; fail fast if the process exits, with the tail of its log."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while True:
        exit_code = process.poll()
        if exit_code is not None:
            raise ControlPlaneError(f"{name} exited with code {exit_code} while starting; {log_tail(log_path)}")
        try:
            if check():
                return
            last_error = "not ready"
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}: {error.read().decode(errors='replace').strip()[-2000:]}"
        except (OSError, ValueError) as error:
            last_error = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            raise ControlPlaneError(
                f"{name} was not ready after {timeout:.0f}s (last answer: {last_error}); {log_tail(log_path)}"
            )
        time.sleep(0.2)


def http_get(url: str, context: ssl.SSLContext | None = None) -> str:
    """GET on loopback, never through a proxy from the environment."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    with urllib.request.build_opener(*handlers).open(url, timeout=5) as response:
        return response.read().decode()


def drop_partial_last_line(path: Path) -> None:
    """Cut a file back to its last newline: what a process killed mid-write leaves must not merge with the next line."""
    try:
        with path.open("rb+") as file:
            end = file.seek(0, os.SEEK_END)
            while end > 0:  # backwards in chunks: audit logs grow large
                start = max(0, end - 65536)
                file.seek(start)
                newline = file.read(end - start).rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                    break
                end = start
            file.truncate(end)
    except FileNotFoundError:
        return


def log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return f"no log at {log_path}"
    return f"last {len(lines)} lines of {log_path}:\n" + "\n".join(lines)


def base64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def stop_child(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_SECONDS; waiting reaps it, so no zombie stays behind."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_pid(pid: int) -> None:
    """stop_child for a process this one did not start: it cannot wait() for it, so it polls."""
    for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not is_running(pid):
                return
            time.sleep(0.1)
    raise ControlPlaneError(f"process {pid} is still running after SIGKILL")


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (exited, waiting for a parent that may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): signal 0 succeeding is all we can tell
    return stat.rpartition(")")[2].split()[0] != "Z"


def is_our_process(pid: int, workdir: str) -> bool:
    return is_running(pid) and workdir in command_line(pid)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        result = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
        return result.stdout
