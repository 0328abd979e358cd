"""Scale out by shards (docs/scale.md#scale-out-shards): two operators side by side, each watching only the
AuroraRestores (and schedules) its label selector matches, each electing its leader on a Lease of its own, both
taking the per-target Leases in the one lease namespace.

No `operator` fixture runs here: only the two shards do, so an AuroraRestore neither selects stays untouched.
Who acted is read from outside the operators: the simulator's request log and the apiserver's audit log carry
the User-Agent, which names the replica (`pod/<name>`)."""

import pytest
from kubernetes import client

from aurora_restore.api import GROUP, KIND, PLURAL, VERSION
from aurora_restore.api.schedule import SCHEDULE_KIND, SCHEDULE_LABEL, SCHEDULE_PLURAL
from aurora_restore.k8s.leases import lease_name
from aurora_restore_devenv.operator_process import OperatorProcess, free_port
from restores import OPERATOR_NAMESPACE, get_restore, make_source, wait_for_phase, wait_until

SHARDS = ("a", "b")
REGION = "us-east-1"


def shard_label(shard: str) -> dict[str, str]:
    return {"e2e.dbrestore.io/shard": shard}


@pytest.fixture
def shards(operator_env, namespace, tmp_path, request):
    """One operator per shard: its own label selector, leader Lease, replica name and metrics port; the same
    lease namespace (operator_env's) for the per-target Leases."""
    started = {}
    for shard in SHARDS:
        env = {**operator_env, "AURORA_RESTORE_WATCH_LABEL_SELECTOR": f"e2e.dbrestore.io/shard={shard}",
               "AURORA_RESTORE_LEADER_LEASE_NAME": f"leader-{namespace}-{shard}",
               "AURORA_RESTORE_SCHEDULE_POLL_SECONDS": "1"}
        started[shard] = OperatorProcess(env, tmp_path / f"operator-{shard}.log", pod_name=f"shard-{shard}-{namespace}",
                                         metrics_port=free_port()).start()
    yield started
    failed = request.node.rep_call.failed if hasattr(request.node, "rep_call") else False
    for operator in started.values():
        operator.stop()
        if failed:
            print(f"--- {operator.pod_name} ---\n" + operator.log_path.read_text()[-8000:])


def create(api_client, namespace: str, plural: str, kind: str, name: str, labels: dict, spec: dict) -> dict:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, "labels": labels},
            "spec": spec}
    return client.CustomObjectsApi(api_client).create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)


def by(operator: OperatorProcess, user_agents) -> bool:
    return all(f"pod/{operator.pod_name}" in agent for agent in user_agents)


def writers(control_plane, namespace: str, resource: str, name: str, subresource: str | None = None) -> list[str]:
    """The User-Agents of the writes of one object, from the apiserver's audit log."""
    return [event.get("userAgent", "") for event in control_plane.read_audit_events()
            if (event.get("objectRef") or {}).get("resource") == resource
            and event["objectRef"].get("namespace") == namespace and event["objectRef"].get("name") == name
            and event["objectRef"].get("subresource") == subresource
            and event.get("verb") in ("create", "update", "patch") and event["responseStatus"]["code"] < 300]


def test_two_shards_restore_side_by_side_each_only_its_own(
    api_client, aws, shards, namespace, uniq, aws_calls, control_plane
):
    rds = aws.client("rds", region_name=REGION)
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    for shard, operator in shards.items():  # each leads its own shard
        wait_until(lambda: (operator.health() or {}).get("leader"), what=f"shard {shard} leading")
    source = {"region": REGION, "snapshotIdentifier": f"snap-{uniq}"}
    # A schedule of shard a: its run carries the shard label (scheduling/controller.py), so shard a drives it too.
    create(api_client, namespace, SCHEDULE_PLURAL, SCHEDULE_KIND, "nightly", shard_label("a"), {
        "schedule": "* * * * *", "template": {"source": source, "target": {"clusterIdentifier": f"sch-{uniq}-{{time}}"},
                                              "dryRun": True}})
    for shard in SHARDS:
        create(api_client, namespace, PLURAL, KIND, f"restore-{shard}", shard_label(shard),
               {"source": source, "target": {"clusterIdentifier": f"tgt-{shard}-{uniq}"}})
    create(api_client, namespace, PLURAL, KIND, "nobodys", {}, {"source": source,
                                                                "target": {"clusterIdentifier": f"tgt-n-{uniq}"}})

    for shard in SHARDS:
        status = wait_for_phase(api_client, namespace, f"restore-{shard}", {"Succeeded", "Failed"})["status"]
        assert status["phase"] == "Succeeded", status
    run = wait_until(lambda: next(iter(client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector=f"{SCHEDULE_LABEL}=nightly")["items"]), None),
        timeout=90, what="the schedule's run")
    assert run["metadata"]["labels"] == {**shard_label("a"), SCHEDULE_LABEL: "nightly"}
    run_status = wait_for_phase(api_client, namespace, run["metadata"]["name"], {"Planned", "Failed"})["status"]
    assert run_status["phase"] == "Planned", run_status

    # The restore neither shard selects was never touched: no status, no finalizer, no AWS call for its target.
    nobodys = get_restore(api_client, namespace, "nobodys")
    assert "status" not in nobodys and not nobodys["metadata"].get("finalizers"), nobodys
    calls = aws_calls.calls()
    assert not [call for call in calls if f"tgt-n-{uniq}" in str(call.get("parameters"))]

    for shard, operator in shards.items():
        target = f"tgt-{shard}-{uniq}"
        # AWS: its target restored by its own shard's replica only.
        [restore_call] = [call for call in calls if call["action"] == "RestoreDBClusterFromSnapshot"
                          and call["parameters"]["DBClusterIdentifier"] == target]
        assert by(operator, [restore_call["user_agent"]]), restore_call["user_agent"]
        # Kubernetes: its restore's status written by its own shard only, ...
        status_writes = writers(control_plane, namespace, PLURAL, f"restore-{shard}", "status")
        assert status_writes and by(operator, status_writes), status_writes
        # ... its target's Lease taken by it in the shared lease namespace, ...
        lease_writes = writers(control_plane, OPERATOR_NAMESPACE, "leases", lease_name(REGION, target))
        assert lease_writes and by(operator, lease_writes), lease_writes
        # ... and its own leader Lease held.
        leader = client.CoordinationV1Api(api_client).read_namespaced_lease(f"leader-{namespace}-{shard}",
                                                                            OPERATOR_NAMESPACE)
        assert leader.spec.holder_identity == operator.pod_name
    # The schedule and its run: shard a's alone.
    schedule_writes = writers(control_plane, namespace, SCHEDULE_PLURAL, "nightly", "status")
    assert schedule_writes and by(shards["a"], schedule_writes), schedule_writes
    run_writes = writers(control_plane, namespace, PLURAL, run["metadata"]["name"], "status")
    assert run_writes and by(shards["a"], run_writes), run_writes
