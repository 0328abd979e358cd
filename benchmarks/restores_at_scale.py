"""Many AuroraRestores at once, driven by one operator process: how long they take and what they cost.

Starts a local control plane (etcd + kube-apiserver), the AWS simulator without database servers, installs the
CRD and runs one operator process watching all namespaces, as `aurora-restore-dev up` does. Then it creates the
source snapshots and N AuroraRestores at once (same region, distinct targets, one instance each) and follows them
with a watch until every one has finished. It does so for each N of --restores and each operator mode of --mode,
each run in a fresh environment (control plane, simulator and operator), so runs never mix:

- unbatched: every restore describes its own resources (AURORA_RESTORE_AWS_BATCH_DESCRIBES=false);
- batched: concurrent describes in one account, role and region are coalesced into one per poll tick;
- events: batched, and the operator long-polls an SQS queue fed by the simulator's RDS events
  (AURORA_RESTORE_EVENTS_QUEUE_URL), polling only at the safety interval.

What it measures (benchmarks/README.md explains each figure):

- all finished: from the first create request until the last restore is Succeeded;
- per restore: from its create request to Succeeded, and to its first phase (acceptance latency);
- the time spent in each phase, to see where waiting grows with N;
- detection latency: from the end of a simulated RDS transition to the restore leaving the phase that waited on it;
- the operator's peak RSS (VmHWM) and the CPU time of every process, for the run only;
- AWS calls per restore and the RDS request rate per account/region (the simulator's request log), Kubernetes
  requests and status writes per restore (the audit log);
- the issue's targets, met or not, and the ratios of the modes to unbatched.

The simulator answers in milliseconds; --aws-latency adds the round trip of the real AWS API to each of the
operator's AWS calls (a proxy in front of the simulator), which is what makes the operator's thread limits show.

Exits 1 when a restore failed or did not finish in --timeout, 0 otherwise; every process it started is stopped.

    .venv/bin/python benchmarks/restores_at_scale.py --restores 100 --aws-delay 2
    .venv/bin/python benchmarks/restores_at_scale.py --restores 50,200 --mode all --aws-delay 30 --poll-interval 30 \\
        --aws-latency 0.05 --json scale.json --plot scale.png
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import importlib.util
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
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from kubernetes import client, config, watch

from aurora_restore.api import GROUP, KIND, PLURAL, VERSION
from aurora_restore.api.phase import TERMINAL_PHASES, Phase
from aurora_restore.settings import Settings
from aurora_restore.steps import names as rds_names
from aurora_restore_devenv.controlplane import ControlPlane, find_binaries
from aurora_restore_devenv.crds import install_crds
from aurora_restore_devenv.environment import LOCAL_POLICY_NAME, PERMISSIVE_POLICY, apply_policy
from aurora_restore_devenv.environment import OPERATOR_ROLE_ARN, aws_environment, operator_aws_environment
from aurora_restore_devenv.operator_process import OperatorProcess
from aurora_restore_devenv.simulator import SimulatorClient, SimulatorProcess

REGION = "us-east-1"
# The operator's own identity acts in this account; the target roles of --roles are in it too.
OPERATOR_ACCOUNT = OPERATOR_ROLE_ARN.split(":")[4]
MODES = ("unbatched", "batched", "events")
# The scale targets hold at this N; the benchmark evaluates them at every N and says so.
TARGET_N = 500
# The peak request rate is the most requests in any window of this many seconds, divided by it.
RATE_WINDOW_SECONDS = 10.0
RESTORE_NAMESPACE = "restores-at-scale"
LEASE_NAMESPACE = "aurora-restore-system"
# The operator's leader election holds this Lease in the same namespace as the target Leases, for as long as it runs.
LEADER_LEASE = Settings.model_fields["leader_lease_name"].default
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
    """Control plane, simulator and operator under one work directory; stop() stops whatever did start.

    start() starts the control plane and the simulator; start_operator() the operator, with the mode's settings,
    once what it needs (the events queue) exists.
    """

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
        return self

    def start_operator(self, mode_env: dict[str, str]) -> OperatorProcess:
        operator_aws_url = self.simulator.url
        if self.aws_latency > 0:
            progress(f"the operator's AWS requests take {self.aws_latency * 1000:g} ms longer (a proxy)")
            self.latency_proxy = LatencyProxy(self.simulator.url, self.aws_latency).start()
            operator_aws_url = self.latency_proxy.url
        settings = " ".join(f"{key.removeprefix('AURORA_RESTORE_')}={value}" for key, value in mode_env.items())
        progress(f"starting the operator (all namespaces, poll interval {self.poll_interval:g}s, {settings})")
        self.operator = OperatorProcess(
            {
                "KUBECONFIG": str(self.control_plane.kubeconfig_path),
                **operator_aws_environment(operator_aws_url, self.workdir),
                "AURORA_RESTORE_POLL_INTERVAL_SECONDS": str(self.poll_interval),
                "AURORA_RESTORE_LEASE_NAMESPACE": LEASE_NAMESPACE,
                "AURORA_RESTORE_DB_TLS_VERIFY": "false",  # the simulator runs no database servers here
                **mode_env,
            },
            self.workdir / "operator.log",
        ).start()
        return self.operator

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


def restore_body(name: str, snapshot: str, target: str, role_arn: str | None = None) -> dict[str, Any]:
    instances = {"count": 1, "instanceClass": INSTANCE_CLASS}
    spec_target: dict[str, Any] = {"clusterIdentifier": target, "instances": instances}
    if role_arn:
        spec_target["roleArn"] = role_arn
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"source": {"region": REGION, "snapshotIdentifier": snapshot}, "target": spec_target},
    }


def target_roles(count: int) -> list[str | None]:
    """The roles the restores use in turn: none (the operator's own identity) for 0, else `count` roles in the
    operator's account (the simulator's STS lets any role be assumed; the local policy allows every role)."""
    if count == 0:
        return [None]
    return [f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/bench-target-{k}" for k in range(1, count + 1)]


def mode_environment(mode: str, args: argparse.Namespace, queue_url: str | None) -> dict[str, str]:
    """The operator's settings for a mode; the request budget is the same in every mode (0: off)."""
    env = {
        "AURORA_RESTORE_AWS_BATCH_DESCRIBES": "false" if mode == "unbatched" else "true",
        "AURORA_RESTORE_AWS_REQUESTS_PER_SECOND": f"{args.requests_per_second:g}",
    }
    if mode == "events":
        env["AURORA_RESTORE_EVENTS_QUEUE_URL"] = queue_url or ""
        if args.safety_poll is not None:
            env["AURORA_RESTORE_EVENTS_SAFETY_POLL_SECONDS"] = f"{args.safety_poll:g}"
    return env


def events_queue_factory():
    """create_events_queue of the devenv, or None while the simulator cannot publish RDS events yet."""
    try:
        from aurora_restore_devenv.rds_events import create_events_queue
    except ImportError:
        return None
    return create_events_queue


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
    operator is being measured against. Times are time.monotonic() of this process, like the create times;
    `first_seen_epoch` holds the same moments in epoch seconds, to compare with the simulator's transition times.
    """

    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.first_seen: dict[str, dict[str, float]] = defaultdict(dict)
        self.first_seen_epoch: dict[str, dict[str, float]] = defaultdict(dict)
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
        now, now_epoch = time.monotonic(), time.time()
        name = obj["metadata"]["name"]
        phase = (obj.get("status") or {}).get("phase")
        with self.changed:
            if phase and phase not in self.first_seen[name]:
                self.first_seen[name][phase] = now
                self.first_seen_epoch[name][phase] = now_epoch
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


def peak_rate(times: list[float], window: float = RATE_WINDOW_SECONDS) -> float:
    """The most requests in any `window` seconds (a window starting at each request), per second.

    Sliding rather than fixed windows: fixed ones would split a burst across two windows and report half of it.
    A run shorter than the window still divides by the whole window."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, time_ in enumerate(ordered):
        while ordered[first] <= time_ - window:
            first += 1
        most = max(most, last - first + 1)
    return most / window


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return round(value / reference, 3)


def call_epoch(call: dict[str, Any]) -> float:
    """When the simulator received a logged call (its ISO timestamp), in epoch seconds."""
    return datetime.fromisoformat(call["timestamp"]).timestamp()


def request_rates(calls: list[dict[str, Any]], seconds_: float) -> dict[str, dict[str, float]]:
    """RDS requests per account/region: how many, the peak rate over 10-s windows and the mean over the run.

    Only RDS calls: its API budget (about 12 per second sustained per account and region) is what the target is
    about; STS and SQS have their own."""
    times: dict[str, list[float]] = defaultdict(list)
    for call in calls:
        if call.get("service") == "rds":
            times[f"{call['account']}/{call['region']}"].append(call_epoch(call))
    return {
        where: {
            "requests": len(stamps),
            "peak_per_second": round(peak_rate(stamps), 2),
            "mean_per_second": round(len(stamps) / seconds_, 2) if seconds_ > 0 else 0.0,
        }
        for where, stamps in sorted(times.items())
    }


def left_phase_at(seen_epoch: dict[str, float], phase: Phase) -> float | None:
    """When the watch first saw the restore in any phase after `phase` (the same-region order), or Failed."""
    later = SAME_REGION_PHASES[SAME_REGION_PHASES.index(phase) + 1:] + [Phase.FAILED]
    moments = [seen_epoch[p] for p in later if p in seen_epoch]
    return min(moments) if moments else None


def became_available_at(transitions: list[dict[str, Any]], kind: str, identifier: str) -> float | None:
    """The end of the first transition of a resource in the operator's account and region that made it
    available (for a restored cluster, creating -> available)."""
    for transition in transitions:
        if (transition["kind"] == kind and transition["identifier"] == identifier and transition["to"] == "available"
                and transition.get("account") == OPERATOR_ACCOUNT and transition.get("region") == REGION):
            return transition["ended_at"]
    return None


def detection_latencies(
    transitions: list[dict[str, Any]], restores: dict[str, str], phases: PhaseWatch
) -> dict[str, dict[str, float]]:
    """Per restore, seconds from its cluster's (instance's) transition to available ending in the simulator to
    the watch seeing the restore leave RestoringCluster (CreatingInstances). `restores` maps name -> target."""
    latencies: dict[str, dict[str, float]] = {"cluster": {}, "instance": {}}
    for name, target in restores.items():
        obj = phases.final.get(name)
        seen = phases.first_seen_epoch.get(name, {})
        if obj is None:
            continue
        instance = rds_names.instance(target, obj["metadata"]["uid"], 1, replacing=False)
        for kind, identifier, phase in (("cluster", target, Phase.RESTORING_CLUSTER),
                                        ("instance", instance, Phase.CREATING_INSTANCES)):
            ended, left = became_available_at(transitions, kind, identifier), left_phase_at(seen, phase)
            if ended is not None and left is not None:
                latencies[kind][name] = left - ended
    return latencies


def held_leases(api_client: client.ApiClient) -> list[str]:
    """Target Leases that still name a holder (every finished restore must have released its own)."""
    leases = client.CoordinationV1Api(api_client).list_namespaced_lease(LEASE_NAMESPACE).items
    return [lease.metadata.name for lease in leases
            if lease.spec.holder_identity and lease.metadata.name != LEADER_LEASE]


def log_problems(log_path: Path) -> dict[str, int]:
    """WARNING and ERROR lines of the operator's log, counted by message with the resource's name taken out."""
    counts: Counter = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        if "[WARNING " in line or "[ERROR " in line:
            message = re.sub(r"^\[[^]]*\] ", "", line)
            message = re.sub(r"\[[a-z0-9-]+/[a-z0-9-]+\] ", "", message)
            counts[re.sub(r"https?://[^ ]+", "<url>", message)[:160]] += 1
    return dict(counts.most_common())


def is_operators(event: dict[str, Any]) -> bool:
    """An audit event of the operator's: neither the benchmark's nor the apiserver's own."""
    if event.get("userAgent", "").startswith(BENCHMARK_USER_AGENT):
        return False
    return not event.get("user", {}).get("username", "").startswith("system:apiserver")


def is_status_write(event: dict[str, Any]) -> bool:
    ref = event.get("objectRef") or {}
    return ref.get("resource") == PLURAL and ref.get("subresource") == "status" and event.get("verb") in (
        "patch", "update")


def was_refused(event: dict[str, Any]) -> bool:
    """A request the apiserver answered with an error: for a status write, a 409 because the restore changed since
    the operator read it (kopf's own first writes to a new restore race its first status write)."""
    return (event.get("responseStatus") or {}).get("code", 200) >= 400


def status_writes_by_restore(events: list[dict[str, Any]]) -> Counter:
    """The operator's status writes the apiserver accepted, by restore name (refused ones are counted apart)."""
    counts: Counter = Counter()
    for event in events:
        if is_operators(event) and is_status_write(event) and not was_refused(event):
            counts[(event.get("objectRef") or {}).get("name")] += 1
    return counts


def operator_kubernetes_requests(events: list[dict[str, Any]]) -> Counter:
    """The operator's requests in the audit log, counted by kind: status writes, reads, Leases, Events, ..."""
    counts: Counter = Counter()
    for event in events:
        if not is_operators(event):
            continue
        ref = event.get("objectRef") or {}
        resource, verb = ref.get("resource"), event.get("verb")
        if is_status_write(event):
            counts["status writes refused (conflict)" if was_refused(event) else "status writes"] += 1
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
    mode: str
    #: 0: the operator's own identity (no spec.target.roleArn); K: K target roles, restore i using role i mod K.
    target_roles: int
    aws_delay: float
    poll_interval: float
    aws_latency: float
    requests_per_second: float
    shared_snapshot: bool
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    create_seconds: float = 0.0
    all_finished_seconds: float | None = None
    #: From the first create request to the end of the measurement: CPU and mean rates are over this.
    measured_seconds: float = 0.0
    per_restore_seconds: dict[str, float] = field(default_factory=dict)
    acceptance_seconds: dict[str, float] = field(default_factory=dict)
    phase_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    detection_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    detection_p50_seconds: float | None = None
    detection_p95_seconds: float | None = None
    #: Why detection latency is missing, when it is.
    detection_note: str | None = None
    operator_rss_start_mib: float = 0.0
    operator_peak_rss_mib: float = 0.0
    #: (peak RSS of this run - peak RSS of the one-role run of the same N and mode) / (roles - 1).
    rss_per_extra_role_mib: float | None = None
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    operator_cpu_cores: float = 0.0
    machine_cpu_busy_percent: float = 0.0
    other_processes_cpu_seconds: float = 0.0
    aws_calls: int = 0
    aws_calls_by_action: dict[str, int] = field(default_factory=dict)
    describes: int = 0
    rds_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    peak_rds_rate: float = 0.0
    mean_rds_rate: float = 0.0
    kubernetes_requests: dict[str, int] = field(default_factory=dict)
    history_entries_per_restore: float = 0.0
    #: The most any restore's status writes exceeded its phase transitions (entries of status.history).
    status_writes_over_transitions_max: int | None = None
    leases_still_held: list[str] = field(default_factory=list)
    operator_log_problems: dict[str, int] = field(default_factory=dict)
    #: Mode / unbatched for the same N and roles, when unbatched ran in the same invocation.
    ratios_to_unbatched: dict[str, float | None] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unfinished


def run(args: argparse.Namespace, n: int, mode: str, roles: int, workdir: Path) -> Result:
    """One run: a fresh environment, N restores in `mode`, everything measured, everything stopped."""
    result = Result(n, mode, roles, args.aws_delay, args.poll_interval, args.aws_latency, args.requests_per_second,
                    args.shared_snapshot)
    workdir.mkdir(parents=True)
    env = Environment(workdir, args.aws_delay, args.poll_interval, args.aws_latency)
    try:
        env.start()
        queue_url = None
        if mode == "events":
            queue_url = events_queue_factory()(env.simulator.url, OPERATOR_ACCOUNT, REGION)
            progress(f"RDS events reach the operator through {queue_url}")
        env.start_operator(mode_environment(mode, args, queue_url))
        names = [f"restore-{i:04d}" for i in range(1, n + 1)]
        snapshots = (
            ["bench-snapshot-shared"] * len(names)
            if args.shared_snapshot
            else [f"bench-snapshot-{i:04d}" for i in range(1, len(names) + 1)]
        )
        targets = {name: name.replace("restore-", "bench-target-") for name in names}
        roles_in_turn = target_roles(roles)
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

        progress(f"creating {len(names)} AuroraRestore(s) ({mode}, {identities(roles)})")
        objects = client.CustomObjectsApi(env.api_client)
        created: dict[str, float] = {}
        started = time.monotonic()
        for i, (name, snapshot) in enumerate(zip(names, snapshots)):
            body = restore_body(name, snapshot, targets[name], roles_in_turn[i % len(roles_in_turn)])
            objects.create_namespaced_custom_object(GROUP, VERSION, RESTORE_NAMESPACE, PLURAL, body)
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
        cpu_after = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        machine_after = machine_cpu_jiffies()
        result.measured_seconds = time.monotonic() - started
        phases.stop()  # after the measurement: the watch ends its current request first, up to 5 s
        result.cpu_seconds = {name: round(cpu_after[name] - cpu_before[name], 1) for name in pids}
        operator_cpu = cpu_after["operator"] - cpu_before["operator"]
        result.operator_cpu_cores = round(operator_cpu / result.measured_seconds, 3)
        busy, total = (after - before for after, before in zip(machine_after, machine_before))
        result.machine_cpu_busy_percent = round(100 * busy / total, 1) if total else 0.0
        # Whatever else ran on the machine meanwhile (the clock ticks count every CPU, as the per-process ones do).
        ours = sum(cpu_after[name] - cpu_before[name] for name in pids)
        result.other_processes_cpu_seconds = round(max(0.0, busy / os.sysconf("SC_CLK_TCK") - ours), 1)
        result.operator_peak_rss_mib = memory_kib(pids["operator"], "VmHWM") / 1024
        calls = simulator.calls()
        result.aws_calls = len(calls)
        result.aws_calls_by_action = dict(Counter(f"{c['service']}:{c['action']}" for c in calls).most_common())
        result.describes = sum(1 for c in calls if c["service"] == "rds" and (c["action"] or "").startswith("Describe"))
        result.rds_rates = request_rates(calls, result.measured_seconds)
        result.peak_rds_rate = max((r["peak_per_second"] for r in result.rds_rates.values()), default=0.0)
        result.mean_rds_rate = max((r["mean_per_second"] for r in result.rds_rates.values()), default=0.0)
        audit_events = env.control_plane.read_audit_events()[audit_start:]
        result.kubernetes_requests = dict(operator_kubernetes_requests(audit_events).most_common())
        summarise(result, names, created, started, phases, status_writes_by_restore(audit_events))
        if hasattr(simulator, "transitions"):
            latencies = detection_latencies(simulator.transitions(), targets, phases)
            result.detection_seconds = latencies
            everything = [*latencies["cluster"].values(), *latencies["instance"].values()]
            if everything:
                result.detection_p50_seconds = round(percentile(everything, 0.5), 3)
                result.detection_p95_seconds = round(percentile(everything, 0.95), 3)
            else:
                result.detection_note = "no transition to available matched a restore"
        else:
            result.detection_note = "needs SimulatorClient.transitions() (the simulator's transition log)"
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


def summarise(result: Result, names: list[str], created: dict[str, float], started: float, phases: PhaseWatch,
              status_writes: Counter):
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
    histories = {name: len((phases.final.get(name, {}).get("status") or {}).get("history", [])) for name in names}
    result.history_entries_per_restore = statistics.mean(histories.values()) if histories else 0.0
    result.status_writes_over_transitions_max = max(status_writes[name] - histories[name] for name in names)


# -- report -------------------------------------------------------------------------------------------------


def seconds(values: dict[str, float]) -> str:
    if not values:
        return "-"
    numbers = list(values.values())
    return f"p50 {percentile(numbers, 0.5):.2f}  p95 {percentile(numbers, 0.95):.2f}  max {max(numbers):.2f}"


def identities(roles: int) -> str:
    if roles == 0:
        return "the operator's own identity"
    return f"{roles} target role{'s' if roles > 1 else ''}"


def report(result: Result) -> str:
    n = result.restores
    k8s = result.kubernetes_requests
    rates = "; ".join(f"{where}: peak {r['peak_per_second']:g}/s, mean {r['mean_per_second']:g}/s"
                      for where, r in result.rds_rates.items())
    detection = (f"p50 {result.detection_p50_seconds:.2f}  p95 {result.detection_p95_seconds:.2f}"
                 if result.detection_p95_seconds is not None else f"- ({result.detection_note})")
    rows = [
        ("mode", result.mode),
        ("restores", f"{n} (same region, 1 instance each, "
                     f"{'one shared snapshot' if result.shared_snapshot else 'one snapshot each'}, "
                     f"{identities(result.target_roles)})"),
        ("AWS delay / poll interval", f"{result.aws_delay:g} s / {result.poll_interval:g} s"),
        ("added AWS latency per call", f"{result.aws_latency * 1000:g} ms"),
        ("AWS request budget", f"{result.requests_per_second:g}/s" if result.requests_per_second else "off"),
        ("outcome", f"{result.succeeded} Succeeded, {len(result.failed)} Failed, {len(result.unfinished)} unfinished"),
        ("creating the resources took", f"{result.create_seconds:.2f} s"),
        ("all Succeeded after", f"{result.all_finished_seconds:.1f} s" if result.all_finished_seconds else "-"),
        ("per restore, create to Succeeded", seconds(result.per_restore_seconds)),
        ("acceptance (create to Pending)", seconds(result.acceptance_seconds)),
        ("detection latency (both kinds)", detection),
        ("  cluster available to leaving RestoringCluster", seconds(result.detection_seconds.get("cluster", {}))),
        ("  instance available to leaving CreatingInstances", seconds(result.detection_seconds.get("instance", {}))),
        ("operator RSS at start / peak",
         f"{result.operator_rss_start_mib:.0f} MiB / {result.operator_peak_rss_mib:.0f} MiB"),
        ("operator RSS per extra role",
         f"{result.rss_per_extra_role_mib:.1f} MiB" if result.rss_per_extra_role_mib is not None else "-"),
        ("operator mean CPU", f"{result.operator_cpu_cores:.3f} cores ({result.cpu_seconds.get('operator', 0):g} CPU "
                              f"seconds in {result.measured_seconds:.1f} s)"),
        ("CPU seconds during the run", ", ".join(f"{name} {value:g}" for name, value in result.cpu_seconds.items())),
        ("machine CPU busy during the run", f"{result.machine_cpu_busy_percent:g}% of {os.cpu_count()} CPUs "
                                            f"(other processes: {result.other_processes_cpu_seconds:g} CPU seconds)"),
        ("AWS calls per restore", f"{result.aws_calls / n:.1f} ({result.aws_calls} in all)"),
        ("RDS describes in all", str(result.describes)),
        ("RDS requests per account/region", rates or "-"),
        ("status writes per restore", f"{k8s.get('status writes', 0) / n:.1f}"),
        ("history entries per restore", f"{result.history_entries_per_restore:.1f} (the phase transitions)"),
        ("status writes over transitions, most", str(result.status_writes_over_transitions_max)),
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


def requests_per_restore(result: Result) -> float:
    return result.aws_calls / result.restores


def compare(results: list[Result]) -> None:
    """Fill each result's ratios to the unbatched run of the same N and roles, and the RSS per extra role."""
    for result in results:
        peers = [r for r in results if (r.restores, r.target_roles) == (result.restores, result.target_roles)]
        unbatched = next((r for r in peers if r.mode == "unbatched"), None)
        if unbatched is not None and result.mode != "unbatched":
            result.ratios_to_unbatched = {
                "describes": ratio(result.describes, unbatched.describes),
                "requests_per_restore": ratio(requests_per_restore(result), requests_per_restore(unbatched)),
                "peak_rds_rate": ratio(result.peak_rds_rate, unbatched.peak_rds_rate),
                "detection_p95": ratio(result.detection_p95_seconds, unbatched.detection_p95_seconds),
            }
        same_run = (result.restores, result.mode, 1)
        one_role = next((r for r in results if (r.restores, r.mode, r.target_roles) == same_run), None)
        if result.target_roles > 1 and one_role is not None:
            result.rss_per_extra_role_mib = round(
                (result.operator_peak_rss_mib - one_role.operator_peak_rss_mib) / (result.target_roles - 1), 1)


def evaluate_targets(results: list[Result]) -> None:
    """The issue's targets for each run (they are set for N=500, on 2 cores, --aws-delay 30, --aws-latency 0.05,
    poll interval 30 s, the budget off); a target whose figure is missing is not evaluated (met None)."""
    for result in results:
        unbatched = next((r for r in results if (r.restores, r.target_roles, r.mode)
                          == (result.restores, result.target_roles, "unbatched")), None)
        targets = [
            ("all Succeeded", f"{result.succeeded} of {result.restores}", result.succeeded == result.restores),
            ("operator peak RSS < 300 MiB", f"{result.operator_peak_rss_mib:.0f} MiB",
             result.operator_peak_rss_mib < 300),
            ("operator mean CPU < 0.5 core", f"{result.operator_cpu_cores:.3f} cores", result.operator_cpu_cores < 0.5),
            ("status writes per restore <= phase transitions + 2",
             f"at most {result.status_writes_over_transitions_max} over",
             None if result.status_writes_over_transitions_max is None
             else result.status_writes_over_transitions_max <= 2),
        ]
        if result.mode == "batched":
            targets.append(("peak RDS rate per account/region < 5/s (budget off)", f"{result.peak_rds_rate:g}/s",
                            result.peak_rds_rate < 5 if not result.requests_per_second else None))
            targets.append(("total describes <= 1/10 of unbatched",
                            f"{result.describes} vs {unbatched.describes}" if unbatched else "unbatched did not run",
                            result.describes * 10 <= unbatched.describes if unbatched else None))
        if result.mode in ("batched", "events"):
            limit = result.poll_interval + 1 if result.mode == "batched" else 2.0
            p95 = result.detection_p95_seconds
            targets.append((f"p95 detection latency <= {limit:g} s",
                            f"{p95:.2f} s" if p95 is not None else f"- ({result.detection_note})",
                            p95 <= limit if p95 is not None else None))
        result.targets = [{"target": name, "measured": measured, "met": met} for name, measured, met in targets]


def targets_report(results: list[Result]) -> str:
    lines = [f"targets (the issue sets them for N={TARGET_N}, 2 cores, --aws-delay 30 --aws-latency 0.05 "
             "--poll-interval 30, the budget off):"]
    for result in results:
        lines.append(f"  N={result.restores} {result.mode}, {identities(result.target_roles)}"
                     + ("" if result.restores == TARGET_N else f" (not N={TARGET_N})") + ":")
        for target in result.targets:
            met = {True: "met", False: "NOT MET", None: "not evaluated"}[target["met"]]
            lines.append(f"    {met:<13}  {target['target']}: {target['measured']}")
        if result.ratios_to_unbatched:
            ratios = ", ".join(f"{key} {value:g}" if value is not None else f"{key} -"
                               for key, value in result.ratios_to_unbatched.items())
            lines.append(f"    ratios to unbatched: {ratios}")
    return "\n".join(lines)


def plot(results: list[Result], path: Path) -> None:
    """Requests per restore and p95 detection latency against N, one line per mode (runs with one identity
    set: the --roles baselines are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (requests_axis, latency_axis) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    most_roles = max(r.target_roles for r in results)
    for mode in MODES:
        runs = sorted((r for r in results if r.mode == mode and r.target_roles == most_roles), key=lambda r: r.restores)
        if not runs:
            continue
        requests_axis.plot([r.restores for r in runs], [requests_per_restore(r) for r in runs], marker="o", label=mode)
        with_latency = [r for r in runs if r.detection_p95_seconds is not None]
        latency_axis.plot([r.restores for r in with_latency], [r.detection_p95_seconds for r in with_latency],
                          marker="o", label=mode)
    first = results[0]
    requests_axis.set(xlabel="concurrent restores (N)", ylabel="AWS requests per restore", ylim=(0, None))
    latency_axis.set(xlabel="concurrent restores (N)", ylabel="p95 detection latency (s)", ylim=(0, None))
    for axis in (requests_axis, latency_axis):
        axis.set_xticks(sorted({r.restores for r in results}))
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.suptitle(f"restores at scale: --aws-delay {first.aws_delay:g} --poll-interval {first.poll_interval:g} "
                    f"--aws-latency {first.aws_latency:g}, {identities(most_roles)}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def per_restore_figures(result: Result) -> dict[str, Any]:
    """The figures the tables quote, derived from the raw counts."""
    k8s = result.kubernetes_requests
    figures: dict[str, Any] = {
        "requests_per_restore": round(requests_per_restore(result), 2),
        "status_writes_per_restore": round(k8s.get("status writes", 0) / result.restores, 2),
        "kubernetes_requests_per_restore": round(sum(k8s.values()) / result.restores, 2),
    }
    for kind, latencies in result.detection_seconds.items():
        if latencies:
            figures[f"detection_{kind}_p50_seconds"] = round(percentile(list(latencies.values()), 0.5), 3)
            figures[f"detection_{kind}_p95_seconds"] = round(percentile(list(latencies.values()), 0.95), 3)
    return figures


def write_json(results: list[Result], path: Path) -> None:
    path.write_text(json.dumps([{**asdict(r), **per_restore_figures(r)} for r in results], indent=2) + "\n")


def counts(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of whole numbers, e.g. 50,200,500")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("every count of restores must be at least 1")
    return values


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restores", type=counts, default=[10],
                        help="how many AuroraRestores to create at once; several (50,200,500) run one after another")
    parser.add_argument("--mode", choices=[*MODES, "all"], default="batched",
                        help="how the operator observes RDS: unbatched (per-restore describes), batched, events "
                             "(batched, woken by RDS events through SQS), or all three, one after the other")
    parser.add_argument("--aws-delay", type=float, default=2.0, help="seconds each simulated RDS transition takes")
    parser.add_argument("--poll-interval", type=float, default=1.0,
                        help="the operator's AURORA_RESTORE_POLL_INTERVAL_SECONDS")
    parser.add_argument("--safety-poll", type=float,
                        help="events mode: AURORA_RESTORE_EVENTS_SAFETY_POLL_SECONDS (default: the operator's, 300)")
    parser.add_argument("--requests-per-second", type=float, default=0.0,
                        help="the operator's AWS request budget, AURORA_RESTORE_AWS_REQUESTS_PER_SECOND "
                             "(default 0: off, as the targets require)")
    parser.add_argument("--roles", type=int, default=1,
                        help="K > 1: the restores use K target roles in turn (spec.target.roleArn), after a run "
                             "with one role, to measure the operator's RSS per extra role")
    parser.add_argument("--aws-latency", type=float, default=0.0,
                        help="seconds added to each of the operator's AWS calls, e.g. 0.1 for real-API round trips")
    parser.add_argument("--shared-snapshot", action="store_true",
                        help="restore every target from one snapshot instead of one snapshot each")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give up on a run when not all restores finished by then")
    parser.add_argument("--json", type=Path, help="also write every figure of every run to this file (a JSON list)")
    parser.add_argument("--plot", type=Path, help="draw requests per restore and p95 detection latency against N "
                                                  "to this PNG (needs matplotlib, a dev extra)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, audit log) even when every run succeeds")
    args = parser.parse_args(argv)
    if args.roles < 1:
        parser.error("--roles must be at least 1")
    args.modes = list(MODES) if args.mode == "all" else [args.mode]
    if "events" in args.modes and events_queue_factory() is None:
        if args.mode == "events":
            parser.error("--mode events needs aurora_restore_devenv.rds_events.create_events_queue "
                         "(the simulator publishing RDS events), which this checkout does not have")
        progress("skipping events mode: it needs aurora_restore_devenv.rds_events.create_events_queue")
        args.modes.remove("events")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install -e '.[dev]'")
    return args


def planned_runs(args: argparse.Namespace) -> list[tuple[int, str, int]]:
    """(N, mode, target roles) in order; with --roles K > 1 a one-role run comes before each K-role run."""
    identities_ = [0] if args.roles == 1 else [1, args.roles]
    return [(n, mode, roles) for n in args.restores for mode in args.modes for roles in identities_]


def stop_on_sigterm(signum, _frame) -> None:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every process started is stopped on the way out."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="restores-at-scale-"))
    ok = False
    results: list[Result] = []
    try:
        try:
            for n, mode, roles in planned_runs(args):
                progress(f"== N={n}, {mode}, {identities(roles)}")
                result = run(args, n, mode, roles, workdir / f"n{n}-{mode}-roles{roles}")
                results.append(result)
                compare(results)
                print(report(result) + "\n", flush=True)
                if args.json:  # after every run, so a long invocation that breaks keeps what it measured
                    write_json(results, args.json)
        except KeyboardInterrupt:
            progress("interrupted; everything started was stopped")
            return 130
        evaluate_targets(results)
        print(targets_report(results))
        if args.json:
            write_json(results, args.json)
        if args.plot:
            plot(results, args.plot)
            progress(f"plot written to {args.plot}")
        ok = all(result.ok for result in results)
        for result in results:
            if result.failed:
                print(f"\nN={result.restores} {result.mode}: Failed: {', '.join(result.failed)}")
            if result.unfinished:
                print(f"\nN={result.restores} {result.mode}: not finished after {args.timeout:g}s: "
                      f"{', '.join(result.unfinished[:10])}")
        return 0 if ok else 1
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            progress(f"logs kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
