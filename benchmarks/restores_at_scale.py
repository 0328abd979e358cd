"""Many AuroraRestores at once, driven by one operator process: how long they take and what they cost.

Starts a local control plane (etcd + kube-apiserver), the AWS simulator without database servers, installs the
CRD and runs one operator process watching all namespaces, as `aurora-restore-dev up` does. Then it creates the
source snapshots and N AuroraRestores at once (same region, distinct targets, one instance each) and follows them
with a watch until every one has finished.

What it measures (benchmarks/README.md explains each figure):

- all finished: from the first create request until the last restore is Succeeded;
- per restore: from its create request to Succeeded, and to its first phase (acceptance latency);
- the time spent in each phase, to see where waiting grows with N;
- the operator's peak RSS (VmHWM) and the CPU time of every process, for the run only;
- AWS calls per restore (the simulator's request log) and Kubernetes requests per restore (the audit log).

The simulator answers in milliseconds; --aws-latency adds the round trip of the real AWS API to each of the
operator's AWS calls (a proxy in front of the simulator), which is what makes the operator's thread limits show.

Exits 1 when a restore failed or did not finish in --timeout, 0 otherwise; every process it started is stopped.

    .venv/bin/python benchmarks/restores_at_scale.py --restores 100 --aws-delay 2
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
from kubernetes import client, config, watch

from aurora_restore.api import GROUP, KIND, PLURAL, VERSION
from aurora_restore.api.phase import TERMINAL_PHASES, Phase
from aurora_restore_devenv.controlplane import ControlPlane, find_binaries
from aurora_restore_devenv.crds import install_crds
from aurora_restore_devenv.environment import LOCAL_POLICY_NAME, PERMISSIVE_POLICY, apply_policy
from aurora_restore_devenv.environment import aws_environment, operator_aws_environment
from aurora_restore_devenv.operator_process import OperatorProcess
from aurora_restore_devenv.simulator import SimulatorClient, SimulatorProcess

REGION = "us-east-1"
RESTORE_NAMESPACE = "restores-at-scale"
LEASE_NAMESPACE = "aurora-restore-system"
SOURCE_CLUSTER = "bench-source"
INSTANCE_CLASS = "db.r6g.large"
# The benchmark's own Kubernetes requests carry this user agent, so the audit log tells them from the operator's.
BENCHMARK_USER_AGENT = "restores-at-scale-benchmark"
# Phases a same-region restore without database access goes through, in order.
SAME_REGION_PHASES = [
    Phase.PENDING,
    Phase.RESOLVING_SNAPSHOT,
    Phase.PREFLIGHT,
    Phase.RESTORING_CLUSTER,
    Phase.CREATING_INSTANCES,
    Phase.CONFIGURING_ACCESS,
    Phase.VERIFYING,
    Phase.PUBLISHING,
    Phase.CLEANING_UP,
    Phase.SUCCEEDED,
]


# -- the environment ------------------------------------------------------------------------------------------


class LatencyProxy:
    """Forwards the operator's AWS requests to the simulator, each `latency` seconds late.

    The simulator answers in milliseconds; the real AWS API takes tens to hundreds. A step that waits on AWS holds
    one of the operator's worker threads for that long, so this is what makes thread limits visible. It sits in
    front of the simulator rather than in the operator, which is measured exactly as it ships.
    """

    HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}

    def __init__(self, upstream_url: str, latency: float):
        upstream = urllib.parse.urlsplit(upstream_url)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(latency)
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP_BY_HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                finally:
                    connection.close()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in proxy.HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

            def log_message(self, *_args) -> None:  # one line per request would drown the benchmark's output
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="aws-latency", daemon=True)

    def start(self) -> LatencyProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Environment:
    """Control plane, simulator and operator under one work directory; stop() stops whatever did start."""

    def __init__(self, workdir: Path, aws_delay: float, poll_interval: float, aws_latency: float = 0.0):
        self.workdir = workdir
        self.aws_delay = aws_delay
        self.poll_interval = poll_interval
        self.aws_latency = aws_latency
        self.control_plane: ControlPlane | None = None
        self.simulator: SimulatorProcess | None = None
        self.latency_proxy: LatencyProxy | None = None
        self.operator: OperatorProcess | None = None
        self.api_client: client.ApiClient | None = None

    def start(self) -> Environment:
        binaries = find_binaries(progress)
        progress("starting etcd and kube-apiserver")
        self.control_plane = ControlPlane(self.workdir / "controlplane", binaries).start()
        progress(f"starting the AWS simulator without database servers (RDS transitions take {self.aws_delay:g}s)")
        self.simulator = SimulatorProcess(
            delay=self.aws_delay, log_path=self.workdir / "simulator.log", databases=False
        ).start()
        self.api_client = config.new_client_from_config(str(self.control_plane.kubeconfig_path))
        self.api_client.user_agent = BENCHMARK_USER_AGENT
        install_crds(self.api_client)
        apply_policy(self.api_client, LOCAL_POLICY_NAME, PERMISSIVE_POLICY)  # the restores need a policy
        # Established is not quite served: a list right after it can still answer 429 "storage is (re)initializing".
        wait_until(self._restores_listable, "AuroraRestores listable", timeout=30)
        for namespace in (RESTORE_NAMESPACE, LEASE_NAMESPACE):
            client.CoreV1Api(self.api_client).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
            )
        operator_aws_url = self.simulator.url
        if self.aws_latency > 0:
            progress(f"the operator's AWS requests take {self.aws_latency * 1000:g} ms longer (a proxy)")
            self.latency_proxy = LatencyProxy(self.simulator.url, self.aws_latency).start()
            operator_aws_url = self.latency_proxy.url
        progress(f"starting the operator (all namespaces, poll interval {self.poll_interval:g}s)")
        self.operator = OperatorProcess(
            {
                "KUBECONFIG": str(self.control_plane.kubeconfig_path),
                **operator_aws_environment(operator_aws_url, self.workdir),
                "AURORA_RESTORE_POLL_INTERVAL_SECONDS": str(self.poll_interval),
                "AURORA_RESTORE_LEASE_NAMESPACE": LEASE_NAMESPACE,
                "AURORA_RESTORE_DB_TLS_VERIFY": "false",  # the simulator runs no database servers here
            },
            self.workdir / "operator.log",
        ).start()
        return self

    def _restores_listable(self) -> bool:
        try:
            client.CustomObjectsApi(self.api_client).list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)
            return True
        except client.exceptions.ApiException:
            return False

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        if self.latency_proxy is not None:
            self.latency_proxy.stop()
        if self.simulator is not None:
            self.simulator.stop()
        if self.api_client is not None:
            self.api_client.close()
        if self.control_plane is not None:
            self.control_plane.stop()

    def rds(self):
        """An RDS client for the benchmark's own set-up, with the simulator's dummy credentials."""
        env = aws_environment(self.simulator.url)
        return boto3.client(
            "rds",
            region_name=REGION,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def pids(self) -> dict[str, int]:
        """The processes whose CPU time the benchmark reports."""
        assert self.control_plane and self.simulator and self.operator
        return {
            "operator": self.operator.pid,
            "simulator": self.simulator.pid,
            "kube-apiserver": self.control_plane.apiserver.pid,
            "etcd": self.control_plane.etcd.pid,
        }


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- sources and restores -------------------------------------------------------------------------------------


def create_sources(rds, snapshot_names: list[str]) -> None:
    """One source cluster and its manual snapshots; returns once all of them are available."""
    rds.create_db_cluster(
        DBClusterIdentifier=SOURCE_CLUSTER,
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        MasterUsername="bench_admin",
        MasterUserPassword="bench-password-1",
    )
    wait_until(
        lambda: rds.describe_db_clusters(DBClusterIdentifier=SOURCE_CLUSTER)["DBClusters"][0]["Status"] == "available",
        f"source cluster {SOURCE_CLUSTER} available",
    )
    for name in snapshot_names:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=name, DBClusterIdentifier=SOURCE_CLUSTER)

    def all_available() -> bool:
        pages = rds.get_paginator("describe_db_cluster_snapshots").paginate(
            DBClusterIdentifier=SOURCE_CLUSTER, SnapshotType="manual"
        )
        statuses = {s["DBClusterSnapshotIdentifier"]: s["Status"] for page in pages for s in page["DBClusterSnapshots"]}
        return all(statuses.get(name) == "available" for name in snapshot_names)

    wait_until(all_available, f"{len(snapshot_names)} source snapshot(s) available")


def restore_body(name: str, snapshot: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {
            "source": {"region": REGION, "snapshotIdentifier": snapshot},
            "target": {"clusterIdentifier": target, "instances": {"count": 1, "instanceClass": INSTANCE_CLASS}},
        },
    }


def wait_until(check, what: str, timeout: float = 120, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not reached in {timeout:g}s")


class PhaseWatch:
    """Follows the restores of one namespace with a watch and notes when each phase was first seen.

    A watch rather than polling: listing 100 restores every fraction of a second would load the apiserver the
    operator is being measured against. Times are time.monotonic() of this process, like the create times.
    """

    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.first_seen: dict[str, dict[str, float]] = defaultdict(dict)
        self.final: dict[str, dict[str, Any]] = {}
        self.changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="phase-watch", daemon=True)
        self._resource_version = ""

    def start(self) -> PhaseWatch:
        self._resource_version = self._list()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def terminal(self) -> dict[str, str]:
        """name -> terminal phase, for the restores that have finished."""
        with self.changed:
            return {
                name: phase for name, seen in self.first_seen.items() for phase in seen if phase in TERMINAL_PHASES
            }

    def _list(self) -> str:
        listing = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        for obj in listing["items"]:
            self._note(obj)
        return listing["metadata"]["resourceVersion"]

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                stream = watch.Watch().stream(
                    self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                    resource_version=self._resource_version, timeout_seconds=5,
                )
                for event in stream:
                    obj = event["object"]
                    if event["type"] == "ERROR":  # 410 Gone: the version is too old, start from a fresh list
                        self._resource_version = self._list()
                        break
                    self._resource_version = obj["metadata"]["resourceVersion"]
                    self._note(obj)
                    if self._stopping.is_set():
                        break
            except Exception as error:  # a dropped connection: list again and carry on
                progress(f"watch interrupted ({type(error).__name__}); listing again")
                time.sleep(0.5)
                try:
                    self._resource_version = self._list()
                except Exception:  # the apiserver is still away: the next round tries again
                    pass

    def _note(self, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        phase = (obj.get("status") or {}).get("phase")
        with self.changed:
            if phase and phase not in self.first_seen[name]:
                self.first_seen[name][phase] = now
            self.final[name] = obj
            self.changed.notify_all()


# -- measurements -------------------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (its own, not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat; idle and iowait count as not busy."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def memory_kib(pid: int, key: str) -> int:
    """A /proc/<pid>/status figure in KiB: VmHWM (peak resident set) or VmRSS (current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; enough for at most a few hundred samples."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def held_leases(api_client: client.ApiClient) -> list[str]:
    """Target Leases that still name a holder (every finished restore must have released its own)."""
    leases = client.CoordinationV1Api(api_client).list_namespaced_lease(LEASE_NAMESPACE).items
    return [lease.metadata.name for lease in leases if lease.spec.holder_identity]


def log_problems(log_path: Path) -> dict[str, int]:
    """WARNING and ERROR lines of the operator's log, counted by message with the resource's name taken out."""
    counts: Counter = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        if "[WARNING " in line or "[ERROR " in line:
            message = re.sub(r"^\[[^]]*\] ", "", line)
            message = re.sub(r"\[[a-z0-9-]+/[a-z0-9-]+\] ", "", message)
            counts[re.sub(r"https?://[^ ]+", "<url>", message)[:160]] += 1
    return dict(counts.most_common())


def operator_kubernetes_requests(events: list[dict[str, Any]]) -> Counter:
    """The operator's requests in the audit log, counted by kind: status writes, reads, Leases, Events, ..."""
    counts: Counter = Counter()
    for event in events:
        if event.get("userAgent", "").startswith(BENCHMARK_USER_AGENT):
            continue
        if event.get("user", {}).get("username", "").startswith("system:apiserver"):
            continue
        ref = event.get("objectRef") or {}
        resource, subresource, verb = ref.get("resource"), ref.get("subresource"), event.get("verb")
        if resource == PLURAL and subresource == "status" and verb in ("patch", "update"):
            counts["status writes"] += 1
        elif resource == PLURAL and verb in ("patch", "update"):
            counts["other writes to the restore (metadata)"] += 1
        elif resource == PLURAL and verb == "get":
            counts["restore reads"] += 1
        elif resource == "leases":
            counts[f"Lease {verb}"] += 1
        elif resource == "events" and verb == "create":
            counts["Events posted"] += 1
        else:
            counts[f"{resource or event.get('requestURI', '?')} {verb}"] += 1
    return counts


@dataclass
class Result:
    restores: int
    aws_delay: float
    poll_interval: float
    aws_latency: float
    shared_snapshot: bool
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    create_seconds: float = 0.0
    all_finished_seconds: float | None = None
    per_restore_seconds: dict[str, float] = field(default_factory=dict)
    acceptance_seconds: dict[str, float] = field(default_factory=dict)
    phase_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    operator_rss_start_mib: float = 0.0
    operator_peak_rss_mib: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    machine_cpu_busy_percent: float = 0.0
    other_processes_cpu_seconds: float = 0.0
    aws_calls: int = 0
    aws_calls_by_action: dict[str, int] = field(default_factory=dict)
    kubernetes_requests: dict[str, int] = field(default_factory=dict)
    history_entries_per_restore: float = 0.0
    leases_still_held: list[str] = field(default_factory=list)
    operator_log_problems: dict[str, int] = field(default_factory=dict)


def run(args: argparse.Namespace, workdir: Path) -> Result:
    result = Result(args.restores, args.aws_delay, args.poll_interval, args.aws_latency, args.shared_snapshot)
    env = Environment(workdir, args.aws_delay, args.poll_interval, args.aws_latency)
    try:
        env.start()
        names = [f"restore-{n:04d}" for n in range(1, args.restores + 1)]
        snapshots = (
            ["bench-snapshot-shared"] * len(names)
            if args.shared_snapshot
            else [f"bench-snapshot-{n:04d}" for n in range(1, len(names) + 1)]
        )
        progress(f"creating {len(set(snapshots))} source snapshot(s)")
        create_sources(env.rds(), sorted(set(snapshots)))

        simulator = SimulatorClient(env.simulator.url, timeout=60)
        simulator.clear_calls()
        audit_start = len(env.control_plane.read_audit_events())
        pids = {**env.pids(), "this benchmark": os.getpid()}
        machine_before = machine_cpu_jiffies()
        cpu_before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        result.operator_rss_start_mib = memory_kib(pids["operator"], "VmRSS") / 1024
        phases = PhaseWatch(env.api_client, RESTORE_NAMESPACE).start()

        progress(f"creating {len(names)} AuroraRestore(s)")
        objects = client.CustomObjectsApi(env.api_client)
        created: dict[str, float] = {}
        started = time.monotonic()
        for name, snapshot in zip(names, snapshots):
            target = name.replace("restore-", "bench-target-")
            objects.create_namespaced_custom_object(
                GROUP, VERSION, RESTORE_NAMESPACE, PLURAL, restore_body(name, snapshot, target)
            )
            created[name] = time.monotonic()
        result.create_seconds = created[names[-1]] - started

        deadline = started + args.timeout
        reported = 0
        with phases.changed:
            while True:
                finished = len(phases.terminal())
                if finished >= len(names) or time.monotonic() > deadline:
                    break
                if finished >= reported + max(1, len(names) // 10):
                    reported = finished
                    progress(f"{finished}/{len(names)} finished")
                phases.changed.wait(timeout=1)
        phases.stop()

        cpu_after = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        machine_after = machine_cpu_jiffies()
        result.cpu_seconds = {name: round(cpu_after[name] - cpu_before[name], 1) for name in pids}
        busy, total = (after - before for after, before in zip(machine_after, machine_before))
        result.machine_cpu_busy_percent = round(100 * busy / total, 1) if total else 0.0
        # Whatever else ran on the machine meanwhile (the clock ticks count every CPU, as the per-process ones do).
        ours = sum(cpu_after[name] - cpu_before[name] for name in pids)
        result.other_processes_cpu_seconds = round(max(0.0, busy / os.sysconf("SC_CLK_TCK") - ours), 1)
        result.operator_peak_rss_mib = memory_kib(pids["operator"], "VmHWM") / 1024
        calls = simulator.calls()
        result.aws_calls = len(calls)
        result.aws_calls_by_action = dict(Counter(f"{c['service']}:{c['action']}" for c in calls).most_common())
        result.kubernetes_requests = dict(
            operator_kubernetes_requests(env.control_plane.read_audit_events()[audit_start:]).most_common()
        )
        summarise(result, names, created, started, phases)
        try:  # the release follows the Succeeded write in the same step; give it a moment
            wait_until(lambda: not held_leases(env.api_client), "all target Leases released", timeout=10)
        except TimeoutError:
            pass
        result.leases_still_held = held_leases(env.api_client)
        env.operator.stop()
        result.operator_log_problems = log_problems(env.operator.log_path)
        return result
    finally:
        env.stop()


def summarise(result: Result, names: list[str], created: dict[str, float], started: float, phases: PhaseWatch):
    terminal = phases.terminal()
    result.succeeded = sum(1 for name in names if terminal.get(name) == Phase.SUCCEEDED)
    result.failed = [name for name in names if terminal.get(name) == Phase.FAILED]
    result.unfinished = [name for name in names if name not in terminal]
    for name in names:
        seen = phases.first_seen.get(name, {})
        if Phase.PENDING in seen:
            result.acceptance_seconds[name] = seen[Phase.PENDING] - created[name]
        if Phase.SUCCEEDED in seen:
            result.per_restore_seconds[name] = seen[Phase.SUCCEEDED] - created[name]
        for phase, following in zip(SAME_REGION_PHASES, SAME_REGION_PHASES[1:]):
            if phase in seen and following in seen:
                result.phase_seconds.setdefault(str(phase), {})[name] = seen[following] - seen[phase]
    if not result.unfinished and not result.failed:
        result.all_finished_seconds = max(phases.first_seen[name][Phase.SUCCEEDED] for name in names) - started
    histories = [len((phases.final.get(name, {}).get("status") or {}).get("history", [])) for name in names]
    result.history_entries_per_restore = statistics.mean(histories) if histories else 0.0


# -- report -------------------------------------------------------------------------------------------------


def seconds(values: dict[str, float]) -> str:
    if not values:
        return "-"
    numbers = list(values.values())
    return f"p50 {percentile(numbers, 0.5):.2f}  p95 {percentile(numbers, 0.95):.2f}  max {max(numbers):.2f}"


def report(result: Result) -> str:
    n = result.restores
    k8s = result.kubernetes_requests
    rows = [
        ("restores", f"{n} (same region, 1 instance each, "
                     f"{'one shared snapshot' if result.shared_snapshot else 'one snapshot each'})"),
        ("AWS delay / poll interval", f"{result.aws_delay:g} s / {result.poll_interval:g} s"),
        ("added AWS latency per call", f"{result.aws_latency * 1000:g} ms"),
        ("outcome", f"{result.succeeded} Succeeded, {len(result.failed)} Failed, {len(result.unfinished)} unfinished"),
        ("creating the resources took", f"{result.create_seconds:.2f} s"),
        ("all Succeeded after", f"{result.all_finished_seconds:.1f} s" if result.all_finished_seconds else "-"),
        ("per restore, create to Succeeded", seconds(result.per_restore_seconds)),
        ("acceptance (create to Pending)", seconds(result.acceptance_seconds)),
        ("operator RSS at start / peak",
         f"{result.operator_rss_start_mib:.0f} MiB / {result.operator_peak_rss_mib:.0f} MiB"),
        ("CPU seconds during the run", ", ".join(f"{name} {value:g}" for name, value in result.cpu_seconds.items())),
        ("machine CPU busy during the run", f"{result.machine_cpu_busy_percent:g}% of {os.cpu_count()} CPUs "
                                            f"(other processes: {result.other_processes_cpu_seconds:g} CPU seconds)"),
        ("AWS calls per restore", f"{result.aws_calls / n:.1f} ({result.aws_calls} in all)"),
        ("status writes per restore", f"{k8s.get('status writes', 0) / n:.1f}"),
        ("history entries per restore", f"{result.history_entries_per_restore:.1f}"),
        ("Kubernetes requests per restore", f"{sum(k8s.values()) / n:.1f}"),
        ("target Leases still held", str(len(result.leases_still_held))),
        ("operator log", f"{sum(result.operator_log_problems.values())} WARNING/ERROR line(s)"),
    ]
    labels = [label for label, _ in rows]
    labels += [f"  {name}" for name in [*result.phase_seconds, *result.aws_calls_by_action, *k8s]]
    width = max(len(label) for label in labels)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    lines += ["", "time in each phase (seconds):"]
    lines += [f"  {phase:<{width - 2}}  {seconds(per_restore)}" for phase, per_restore in result.phase_seconds.items()]
    lines += ["", "AWS calls by action (per restore):"]
    lines += [f"  {action:<{width - 2}}  {count / n:.1f}" for action, count in result.aws_calls_by_action.items()]
    lines += ["", "operator's Kubernetes requests (per restore):"]
    lines += [f"  {kind:<{width - 2}}  {count / n:.1f}" for kind, count in k8s.items()]
    if result.operator_log_problems:
        lines += ["", "operator log, WARNING and ERROR lines:"]
        lines += [f"  {count:>4}  {message}" for message, count in result.operator_log_problems.items()]
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restores", type=int, default=10, help="how many AuroraRestores to create at once")
    parser.add_argument("--aws-delay", type=float, default=2.0, help="seconds each simulated RDS transition takes")
    parser.add_argument("--poll-interval", type=float, default=1.0,
                        help="the operator's AURORA_RESTORE_POLL_INTERVAL_SECONDS")
    parser.add_argument("--aws-latency", type=float, default=0.0,
                        help="seconds added to each of the operator's AWS calls, e.g. 0.1 for real-API round trips")
    parser.add_argument("--shared-snapshot", action="store_true",
                        help="restore every target from one snapshot instead of one snapshot each")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up when not all finished by then")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, audit log) even when the run succeeds")
    args = parser.parse_args(argv)
    if args.restores < 1:
        parser.error("--restores must be at least 1")
    return args


def stop_on_sigterm(signum, _frame) -> None:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every process started is stopped on the way out."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="restores-at-scale-"))
    ok = False
    try:
        try:
            result = run(args, workdir)
        except KeyboardInterrupt:
            progress("interrupted; everything started was stopped")
            return 130
        print(report(result))
        if args.json:
            args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
        ok = not result.failed and not result.unfinished
        if result.failed:
            print(f"\nFailed: {', '.join(result.failed)}")
        if result.unfinished:
            print(f"\nnot finished after {args.timeout:g}s: {', '.join(result.unfinished[:10])}")
        return 0 if ok else 1
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            progress(f"logs kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
