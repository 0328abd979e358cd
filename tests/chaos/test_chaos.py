"""Chaos: many concurrent restores of mixed kinds while the operator is SIGKILLed again and again, a second replica
runs for a while, the apiserver restarts, the operator's connections to it are cut and AWS answers with
throttling, 5xx and applied-but-lost answers; then what must hold is checked from AWS and Kubernetes state.

    CHAOS_SEED      the seed of every random choice of the harness (default: drawn from the clock, printed, and in
                    every assertion message and the results file, so that a failing run can be replayed)
    CHAOS_RESTORES  how many restores (default 20), of the kinds in KINDS in turn
    CHAOS_KILLS     at least this many SIGKILLs of the leader (default 20)
    CHAOS_RESULTS   where the run's figures are written as JSON (default: the temporary directory)

Replay: CHAOS_SEED=<seed> python -m pytest tests/chaos -s. The seed fixes the harness's schedule (when kills, cuts,
the apiserver restart and the second replica happen) and the fault rules' random sequences; how the operator's
calls interleave with them still varies from run to run.
"""

import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from chaos_harness import FAULT_SERVICES, ChaosSupervisor, Replica, fault_kind, install_faults
from chaos_invariants import (
    UID_TAG,
    event_problems,
    history_problems,
    mutation_duplicates,
    restore_accounts,
    tagged_with_uid,
)
from conftest import LEADER_TIMINGS, SCALE_SETTINGS
from databases import connect, create_secret, execute, make_database_source
from kubernetes import client
from restores import OPERATOR_NAMESPACE, REPLACEABLE, SOURCE_MASTER_PASSWORD, create_restore, make_source, wait_until

from aurora_restore.api import GROUP, PLURAL, VERSION
from aurora_restore.steps import names
from aurora_restore_devenv.environment import operator_aws_environment
from aurora_restore_devenv.operator_process import OperatorProcess, free_port

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("CHAOS_SEED") or int(time.time()) % 1_000_000)
RESTORES = int(os.environ.get("CHAOS_RESTORES", "20"))
KILLS = int(os.environ.get("CHAOS_KILLS", "20"))
RESULTS = Path(os.environ.get("CHAOS_RESULTS") or Path(tempfile.gettempdir()) / f"aurora-restore-chaos-{SEED}.json")
# The default run's restores (20) take about 3 minutes under chaos on a 2-core machine; bigger runs get more time.
RESTORE_DEADLINE_SECONDS = 360 + 12 * max(0, RESTORES - 20)

NAMESPACE = "t-chaos"
OPERATOR_ACCOUNT, SOURCE_ACCOUNT = "123456789012", "222222222222"
SOURCE_ROLE = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/aurora-restore-source"
PASSWORDS = {"master": "chaos-Master-1x", "rw": "chaos-Rw-2xyz", "ro": "chaos-Ro-3xyz"}
SM_SECRET = "aurora-restore/chaos-master"
PG_SNAPSHOT, MYSQL_SNAPSHOT, CROSS_SNAPSHOT = "chaos-snap-pg", "chaos-snap-mysql", "chaos-xsnap"
CROSS_SOURCE = "chaos-xsrc"
HISTORY_LIMIT = 20

# One of each per 20 restores; a planned failure ("-fail") fails its verification on purpose (3 rows, 5 expected).
KINDS = [
    "same-users-pg", "same-users-pg", "same-users-pg", "same-sm-pg", "same-managed-pg",
    "same-users-mysql", "same-users-mysql",
    "xregion-users-pg", "xregion-users-pg", "xregion-plain", "xregion-plain",
    "replace", "replace", "replace", "replace-fail",
    "xacct-manual", "xacct-manual", "xacct-manual-xregion", "xacct-automated",
    "same-fail",
]


def say(text: str) -> None:
    print(f"[chaos seed={SEED}] {text}", flush=True)


def plan(index: int) -> dict:
    kind = KINDS[index % len(KINDS)]
    name = f"c{index:03d}-{kind}"
    target = {"clusterIdentifier": name, "instances": {"count": 1 + index % 2}}
    spec: dict = {"source": {"region": "us-east-1", "snapshotIdentifier": PG_SNAPSHOT}, "target": target}
    engine = "aurora-mysql" if "mysql" in kind else "aurora-postgresql"
    if "mysql" in kind:
        spec["source"]["snapshotIdentifier"] = MYSQL_SNAPSHOT
    rows = 5 if kind.endswith("-fail") else 3
    verification = {"queries": [{"sql": "SELECT * FROM orders", "expectRows": rows}]}
    master_ref = {"secretRef": {"name": "chaos-passwords", "key": "master"}}
    users = "users" in kind
    if users or kind in ("replace", "replace-fail", "same-fail"):
        spec["masterPassword"] = master_ref
        spec["verification"] = verification
    if users:
        spec["users"] = [
            {"name": "app_rw", "access": "readWrite", "databases": ["orders"],
             "passwordSecretRef": {"name": "chaos-passwords", "key": "rw"}},
            {"name": "app_ro", "access": "readOnly", "databases": ["orders"],
             "passwordSecretRef": {"name": "chaos-passwords", "key": "ro"},
             "connectionSecret": {"name": f"{name}-ro"}},
        ]
    if kind == "same-sm-pg":
        spec.update(masterPassword={"secretsManagerSecretId": SM_SECRET}, verification=verification)
    if kind == "same-managed-pg":
        spec.update(masterPassword={"manageInSecretsManager": True}, verification=verification)
    region = "us-east-1"
    if kind.startswith("xregion"):
        region = "us-west-2"
        target["region"] = region
        spec["copy"] = {"kmsKeyId": "alias/chaos-west"}
    replacing = kind.startswith("replace")
    if replacing:
        target["instances"]["count"] = 1
        spec["existingTarget"] = {"policy": "Replace"}
    if kind.startswith("xacct"):
        spec["source"] = {"region": "us-east-1", "snapshotIdentifier": CROSS_SNAPSHOT, "accountId": SOURCE_ACCOUNT,
                          "roleArn": SOURCE_ROLE}
        spec["copy"] = {"kmsKeyId": "alias/chaos-east"}
        if kind == "xacct-automated":
            spec["source"] = {"region": "us-east-1", "accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE,
                              "latest": {"clusterIdentifier": CROSS_SOURCE, "snapshotType": "automated"}}
        if kind == "xacct-manual-xregion":
            region = "us-west-2"
            target["region"] = region
            spec["copy"] = {"kmsKeyId": "alias/chaos-west", "sourceRegionKmsKeyId": "alias/chaos-east"}
    return {"name": name, "kind": kind, "spec": spec, "region": region, "engine": engine, "replacing": replacing,
            "instances": target["instances"]["count"], "fails": kind.endswith("-fail"), "users": users}


def customer_key(kms, alias: str, principals: list[str]) -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": sorted(principals)}, "Action": "kms:*", "Resource": "*"}]}
    key_id = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)


def prepare_aws(env, plans: list[dict]) -> None:
    """Sources, keys, existing targets to replace and the master password in Secrets Manager, before any fault."""
    east = env.aws_client("rds")
    make_database_source(east, "chaos-src-pg", PG_SNAPSHOT, "aurora-postgresql", SOURCE_MASTER_PASSWORD,
                         env.db_ca_file)
    make_database_source(east, "chaos-src-mysql", MYSQL_SNAPSHOT, "aurora-mysql", SOURCE_MASTER_PASSWORD,
                         env.db_ca_file)
    operator_root = f"arn:aws:iam::{OPERATOR_ACCOUNT}:root"
    customer_key(env.aws_client("kms", "us-east-1"), "alias/chaos-east", [operator_root])
    customer_key(env.aws_client("kms", "us-west-2"), "alias/chaos-west", [operator_root])
    source = env.session_in(SOURCE_ACCOUNT)
    source_kms = source.client("kms", region_name="us-east-1", endpoint_url=env.simulator.url)
    customer_key(source_kms, "alias/chaos-xsrc", [operator_root, f"arn:aws:iam::{SOURCE_ACCOUNT}:root"])
    source_key = source_kms.describe_key(KeyId="alias/chaos-xsrc")["KeyMetadata"]["KeyId"]
    make_source(source.client("rds", region_name="us-east-1", endpoint_url=env.simulator.url), CROSS_SOURCE,
                [CROSS_SNAPSHOT], kms_key_id=source_key)
    env.aws_client("secretsmanager").create_secret(Name=SM_SECRET, SecretString=PASSWORDS["master"])
    for item in plans:
        if item["replacing"]:
            make_source(east, item["name"], [], tags=REPLACEABLE)
            east.create_db_instance(DBInstanceIdentifier=f"{item['name']}-old", DBClusterIdentifier=item["name"],
                                    Engine="aurora-postgresql", DBInstanceClass="db.r6g.large",
                                    Tags=[{"Key": key, "Value": value} for key, value in REPLACEABLE.items()])
    for item in plans:
        if item["replacing"]:
            wait_until(lambda i=item: east.describe_db_instances(DBInstanceIdentifier=f"{i['name']}-old")[
                "DBInstances"][0]["DBInstanceStatus"] == "available", timeout=60, what="existing target's instance")
            cluster = east.describe_db_clusters(DBClusterIdentifier=item["name"])["DBClusters"][0]
            item["previous_resource_id"] = cluster["DbClusterResourceId"]


def operator_env(env, name: str) -> dict[str, str]:
    directory = env.workdir / name
    directory.mkdir(exist_ok=True)
    return {
        "KUBECONFIG": str(env.operator_kubeconfig),
        **operator_aws_environment(env.simulator.url, directory),
        "AURORA_RESTORE_DB_CA_BUNDLE": env.db_ca_file,
        "AURORA_RESTORE_METRICS_PORT": str(free_port()),
        "AURORA_RESTORE_POLL_INTERVAL_SECONDS": "0.5",
        "AURORA_RESTORE_RETRY_BACKOFF_MAX_SECONDS": "3",
        "AURORA_RESTORE_LEASE_NAMESPACE": OPERATOR_NAMESPACE,
        "AURORA_RESTORE_LEADER_LEASE_NAME": "chaos-leader",
        "AURORA_RESTORE_HISTORY_LIMIT": str(HISTORY_LIMIT),
        **LEADER_TIMINGS,
        **SCALE_SETTINGS,
    }


def retrying(call, attempts: int = 60):
    """A call to the apiserver that may be restarting right now."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception:  # noqa: BLE001 (connection refused, 503 while it starts)
            if attempt == attempts - 1:
                raise
            time.sleep(1)


def test_restores_survive_kills_outages_cut_watches_and_aws_faults(chaos_env, request):
    env = chaos_env
    began = time.monotonic()
    say(f"seed {SEED}: replay with CHAOS_SEED={SEED}; {RESTORES} restores, at least {KILLS} kills; "
        f"results in {RESULTS}")
    rng = random.Random(SEED)
    plans = [plan(index) for index in range(RESTORES)]
    api = env.api_client
    core = client.CoreV1Api(api)
    objects = client.CustomObjectsApi(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    create_secret(api, NAMESPACE, "chaos-passwords", PASSWORDS)
    prepare_aws(env, plans)
    setup_seconds = time.monotonic() - began

    replicas = [Replica(OperatorProcess(operator_env(env, name), env.workdir / f"{name}.log", pod_name=name))
                for name in ("chaos-operator-a", "chaos-operator-b")]
    replicas[0].wanted = True
    coordination = client.CoordinationV1Api(api)

    def lease_holder() -> str | None:
        try:
            return coordination.read_namespaced_lease("chaos-leader", OPERATOR_NAMESPACE).spec.holder_identity
        except Exception:  # noqa: BLE001 (no Lease yet, or the apiserver is restarting)
            return None

    finished: dict[str, dict] = {}
    chaos = ChaosSupervisor(rng, env.plane, env.cutter, replicas[0], replicas[1], lease_holder,
                            restores_running=lambda: len(finished) < len(plans))

    def leave_nothing_running() -> None:  # whatever happened: no operator outlives the test
        if chaos.is_alive():
            chaos.stop()
        for replica in replicas:
            replica.process.kill()

    request.addfinalizer(leave_nothing_running)
    chaos.supervise()  # the first replica up before the restores exist
    install_faults(env.simulator.client, SEED)
    chaos.start()
    chaos_began = time.monotonic()
    for item in plans:
        item["uid"] = retrying(lambda i=item: create_restore(api, NAMESPACE, i["name"], i["spec"]))["metadata"]["uid"]
    say(f"{len(plans)} restores created; kinds {dict(Counter(item['kind'] for item in plans))}")

    deadline = time.monotonic() + RESTORE_DEADLINE_SECONDS
    last: dict[str, dict] = {}
    while time.monotonic() < deadline and chaos.is_alive():
        try:
            items = objects.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        except Exception:  # noqa: BLE001 (the apiserver is restarting)
            time.sleep(1)
            continue
        for obj in items:
            last[obj["metadata"]["name"]] = obj
            phase = (obj.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed", "Cancelled", "Planned") and obj["metadata"]["name"] not in finished:
                finished[obj["metadata"]["name"]] = obj
                say(f"{obj['metadata']['name']}: {phase} after {time.monotonic() - chaos_began:.0f}s "
                    f"({len(finished)}/{len(plans)}; kills so far {chaos.record.kills})")
        if len(finished) == len(plans) and chaos.record.kills >= KILLS and chaos.done_with_schedule:
            break
        time.sleep(1)
    restores_seconds = max((_completed(obj) for obj in finished.values()), default=0.0)
    chaos.stop()
    chaos_seconds = time.monotonic() - chaos_began
    fired_rules = env.simulator.client.faults()
    env.simulator.client.clear_faults()
    exit_codes = {replica.process.pod_name: replica.process.stop(timeout=60) for replica in replicas}
    say(f"chaos over after {chaos_seconds:.0f}s: {chaos.record.kills} kills, "
        f"{chaos.record.apiserver_restarts} apiserver restart(s), {chaos.record.watch_cuts} watch cuts")

    problems: list[str] = []
    if chaos.record.errors:
        problems += [f"the harness failed: {error}" for error in chaos.record.errors]
    unfinished = {name: (obj.get("status") or {}).get("phase") for name, obj in last.items() if name not in finished}
    if len(finished) < len(plans):
        problems.append(f"{len(plans) - len(finished)} restore(s) did not finish in {RESTORE_DEADLINE_SECONDS}s: "
                        f"{unfinished}")
    if chaos.record.kills < KILLS:
        problems.append(f"only {chaos.record.kills} kills, {KILLS} wanted")
    if chaos.record.connections_cut == 0:
        problems.append("no connection of the operator to the apiserver was ever cut")
    if not chaos.record.second_replica:
        problems.append("the second replica never ran")
    if chaos.record.apiserver_restarts != 1:
        problems.append(f"{chaos.record.apiserver_restarts} apiserver restarts, 1 wanted")
    elif chaos.record.leader_after_outage.get("exit_code") != 1:
        problems.append(f"the leader cut off by the apiserver outage did not exit 1 by itself: "
                        f"{chaos.record.leader_after_outage}")

    calls = env.simulator.client.calls()
    duplicates = mutation_duplicates(calls)
    leaks: list[str] = []
    checks = check_restores(env, plans, problems, leaks, duplicates)
    results = {
        "seed": SEED,
        "restores": len(plans),
        "kinds": dict(Counter(item["kind"] for item in plans)),
        "succeeded": sum(1 for o in finished.values() if o["status"]["phase"] == "Succeeded"),
        "failed_as_planned": sum(1 for item in plans if item["fails"]
                                 and (finished.get(item["name"]) or {}).get("status", {}).get("phase") == "Failed"),
        "kills": chaos.record.kills,
        "kills_while_restores_ran": chaos.record.kills_while_restores_ran,
        "restarts": chaos.record.restarts,
        "exits_by_themselves": chaos.record.exits_by_themselves,
        "leader_after_outage": chaos.record.leader_after_outage,
        "apiserver_restarts": chaos.record.apiserver_restarts,
        "apiserver_down_seconds": chaos.record.apiserver_down_seconds,
        "watch_cuts": chaos.record.watch_cuts,
        "connections_cut": chaos.record.connections_cut,
        "second_replica": chaos.record.second_replica,
        "faults_fired": _fired_by_kind(fired_rules["faults"] if isinstance(fired_rules, dict) else fired_rules),
        "faults_in_log": dict(Counter(f"{c['service']} {c['fault']}" for c in calls if c.get("fault"))),
        "operator_calls": sum(1 for c in calls if "aurora-restore-operator" in c.get("user_agent", "")),
        "duplicates": len(duplicates),
        "leaks": len(leaks),
        "events_missing": checks["events_missing"],
        "unexpected_errors_logged": _unexpected_errors(replicas),
        "final_exit_codes": exit_codes,
        "setup_seconds": round(setup_seconds, 1),
        "restores_seconds": round(restores_seconds, 1),
        "chaos_seconds": round(chaos_seconds, 1),
        "wall_seconds": round(time.monotonic() - began, 1),
        "schedule": vars(chaos.schedule),
        "timeline": chaos.record.timeline,
        "problems": problems + [f"duplicate: {d}" for d in duplicates] + [f"leak: {leak}" for leak in leaks],
    }
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    logs = RESULTS.with_name(RESULTS.stem + "-logs")  # pytest's temporary directories do not outlive the session
    logs.mkdir(exist_ok=True)
    for path in [r.process.log_path for r in replicas] + [env.workdir / "simulator.log"]:
        if path.exists():
            shutil.copyfile(path, logs / path.name)
    say("results: " + json.dumps({k: v for k, v in results.items() if k not in ("timeline", "problems")},
                                 default=str))
    everything = results["problems"]
    assert not everything, f"chaos seed {SEED} (replay: CHAOS_SEED={SEED}), results in {RESULTS}:\n" + "\n".join(
        everything[:60])


def _completed(obj: dict) -> float:
    status = obj.get("status") or {}
    from datetime import datetime

    try:
        return (datetime.fromisoformat(status["completedAt"].replace("Z", "+00:00"))
                - datetime.fromisoformat(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))).total_seconds()
    except (KeyError, ValueError):
        return 0.0


def _fired_by_kind(rules: list[dict]) -> dict[str, int]:
    fired: Counter = Counter()
    for rule in rules:
        if rule["service"] in FAULT_SERVICES:
            fired[f"{rule['service']} {fault_kind(rule)}"] += rule["fired"]
            fired[fault_kind(rule)] += rule["fired"]
    return dict(fired)


def _unexpected_errors(replicas) -> dict[str, int]:
    """The operator's own 'unexpected error' lines and tracebacks, by exception (for the report; an apiserver outage
    causes some)."""
    found: Counter = Counter()
    for replica in replicas:
        path = replica.process.log_path
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if "unexpected error, retrying:" in line:
                found[line.rsplit("unexpected error, retrying:", 1)[1].strip()] += 1
            elif line.startswith("Traceback"):
                found["Traceback"] += 1
    return dict(found)


def check_restores(env, plans, problems, leaks, duplicates) -> dict:
    api = env.api_client
    objects = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    events = core.list_namespaced_event(NAMESPACE).items
    places = [(account, region) for account in (OPERATOR_ACCOUNT, SOURCE_ACCOUNT)
              for region in ("us-east-1", "us-west-2")]
    rds = {place: env.client_in(place[0], "rds", place[1]) for place in places}
    events_missing = 0
    # Copies being deleted are gone within the simulator's delay: wait for that before looking for leaks.
    time.sleep(3)
    tagged = {}
    for item in plans:
        tagged[item["name"]] = {place: tagged_with_uid(rds[place], item["uid"]) for place in places}

    for item in plans:
        name, uid = item["name"], item["uid"]
        obj = objects.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        status = obj.get("status") or {}
        phase = status.get("phase")
        wanted = "Failed" if item["fails"] else "Succeeded"
        if phase != wanted:
            problems.append(f"{name}: {phase}, {wanted} wanted: {status.get('message')} "
                            f"failure={status.get('failure')}")
        elif item["fails"] and (status["failure"]["reason"], status["failure"]["phase"]) != (
                "VerificationFailed", "Verifying"):
            problems.append(f"{name}: failed otherwise than planned: {status['failure']}")
        problems.extend(f"{name}: {p}" for p in history_problems(status.get("history") or [], HISTORY_LIMIT))
        own = [e for e in events if e.involved_object.uid == uid]
        event_issues, missing = event_problems(status, own)
        events_missing += missing
        duplicates.extend(f"{name}: {issue}" for issue in event_issues)

        # Exactly one cluster at the target, with the right instances.
        east_west = rds[(OPERATOR_ACCOUNT, item["region"])]
        clusters = east_west.describe_db_clusters(
            Filters=[{"Name": "db-cluster-id", "Values": [name]}])["DBClusters"]
        instances = sorted(i["DBInstanceIdentifier"] for i in east_west.describe_db_instances(
            Filters=[{"Name": "db-cluster-id", "Values": [name]}])["DBInstances"])
        replaced_and_kept = item["replacing"] and item["fails"]
        if replaced_and_kept:  # the existing target as it was
            want_instances = [f"{name}-old"]
            want_uid = None
        else:
            want_instances = sorted(names.instance(name, uid, n, item["replacing"])
                                    for n in range(1, item["instances"] + 1))
            want_uid = uid
        if len(clusters) != 1:
            duplicates.append(f"{name}: {len(clusters)} clusters named {name} in {item['region']}")
        else:
            cluster = clusters[0]
            cluster_uid = {t["Key"]: t["Value"] for t in east_west.list_tags_for_resource(
                ResourceName=cluster["DBClusterArn"])["TagList"]}.get(UID_TAG)
            if cluster_uid != want_uid or cluster["Status"] != "available":
                problems.append(f"{name}: the cluster at the target carries UID {cluster_uid} ({want_uid} wanted), "
                                f"status {cluster['Status']}")
            if item["replacing"] and not item["fails"] and cluster["DbClusterResourceId"] == item[
                    "previous_resource_id"]:
                problems.append(f"{name}: the target is still the replaced cluster")
            if replaced_and_kept and cluster["DbClusterResourceId"] != item["previous_resource_id"]:
                problems.append(f"{name}: a failed Replace changed the existing target")
            if instances != want_instances:
                problems.append(f"{name}: instances {instances}, {want_instances} wanted")
            if item["users"] and phase == "Succeeded":
                with connect(item["engine"], cluster["Endpoint"], cluster["Port"], "app_ro", PASSWORDS["ro"],
                             "orders", env.db_ca_file) as conn:
                    rows = execute(conn, "SELECT count(*) FROM orders")
                if rows != [(3,)]:
                    problems.append(f"{name}: app_ro reads {rows} rows of orders, 3 wanted")

        # Nothing tagged with the UID but the cluster, its instances and (Replace) the final snapshot.
        allowed = {(OPERATOR_ACCOUNT, item["region"], "clusters", name)} if want_uid else set()
        if want_uid:
            allowed |= {(OPERATOR_ACCOUNT, item["region"], "instances", i) for i in want_instances}
        if item["replacing"] and not item["fails"]:
            allowed.add((OPERATOR_ACCOUNT, "us-east-1", "snapshots", names.final_snapshot(name, uid)))
        for (account, region), found in tagged[name].items():
            for kind, identifiers in found.items():
                for identifier in identifiers:
                    if (account, region, kind, identifier) not in allowed:
                        leaks.append(f"{name}: {kind[:-1]} {identifier} in {account}/{region} carries its UID")
        # The names the restore derives, whether tagged or not.
        for (account, region) in places:
            for copy in (names.copied_snapshot(uid), names.staged_snapshot(uid), names.shared_snapshot(uid)):
                left = [s for s in rds[(account, region)].describe_db_cluster_snapshots(
                    Filters=[{"Name": "db-cluster-snapshot-id", "Values": [copy]}])["DBClusterSnapshots"]
                    if s["Status"] != "deleting"]
                if left:
                    leaks.append(f"{name}: snapshot {copy} left in {account}/{region}")
        if item["replacing"]:
            for leftover in (names.temporary_cluster(name, uid), names.previous_cluster(name, uid)):
                if east_west.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [leftover]}])[
                        "DBClusters"]:
                    leaks.append(f"{name}: cluster {leftover} left")

    # No share left open: the source snapshot is shared with nobody once every restore of it ended.
    source_rds = rds[(SOURCE_ACCOUNT, "us-east-1")]
    shared_with = restore_accounts(source_rds, CROSS_SNAPSHOT)
    if shared_with:
        leaks.append(f"snapshot {CROSS_SNAPSHOT} of {SOURCE_ACCOUNT} still shared with {shared_with}")
    for snapshot in source_rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]:
        accounts = restore_accounts(source_rds, snapshot["DBClusterSnapshotIdentifier"])
        if accounts and snapshot["Status"] != "deleting":
            leaks.append(f"snapshot {snapshot['DBClusterSnapshotIdentifier']} still shared with {accounts}")
    return {"events_missing": events_missing}
