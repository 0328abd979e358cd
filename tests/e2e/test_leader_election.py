"""High availability: of two replicas only the leader acts, a standby takes over when the leader dies, a SIGTERM
drains the step in flight, and a status computed from a stale read is never written.

Who acted is read from outside the operator: the simulator's request log and the apiserver's audit log both carry
the User-Agent, which names the replica (`pod/<name>`)."""

import threading
import time
from datetime import datetime

import pytest
from kubernetes import client

from aurora_restore.api import PLURAL
from aurora_restore.k8s.leader_lease import LeaderElector, LeaseTimings
from aurora_restore.k8s.resources import AuroraRestores, StatusConflict
from aurora_restore_devenv.operator_process import OperatorProcess
from conftest import LEADER_TIMINGS, OPERATOR_POLL_SECONDS
from restores import OPERATOR_NAMESPACE, create_restore, get_restore, make_source, wait_for_phase, wait_until

LEASE_DURATION = float(LEADER_TIMINGS["AURORA_RESTORE_LEADER_LEASE_DURATION_SECONDS"])
STARTUP_ALLOWANCE = 15.0  # a replica's start-up (Python, kopf, the first list and watch) on a loaded 2-core machine


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _by(replica: OperatorProcess, calls):
    return [call for call in calls if f"pod/{replica.pod_name}" in call.get("user_agent", "")]


def _status_writes(control_plane, namespace: str, name: str, replica: OperatorProcess) -> list[float]:
    """When `replica` wrote this restore's status, from the apiserver's audit log."""
    times = []
    for event in control_plane.read_audit_events():
        ref = event.get("objectRef") or {}
        if (ref.get("resource") == PLURAL and ref.get("subresource") == "status" and ref.get("namespace") == namespace
                and ref.get("name") == name and event.get("verb") == "patch"
                and f"pod/{replica.pod_name}" in event.get("userAgent", "")):
            times.append(_ts(event["requestReceivedTimestamp"]))
    return times


def _leader(replicas: list[OperatorProcess], timeout: float = 30) -> OperatorProcess:
    def find():
        leaders = [r for r in replicas if (r.health() or {}).get("leader")]
        assert len(leaders) <= 1, [r.pod_name for r in leaders]
        return leaders[0] if leaders else None

    return wait_until(find, timeout=timeout, what="one leader")


def _holder(api_client, namespace: str, lease: str) -> str | None:
    return client.CoordinationV1Api(api_client).read_namespaced_lease(lease, namespace).spec.holder_identity


@pytest.fixture
def replicas(operator_env, tmp_path, request):
    """Two operator replicas (a and b) of the same deployment: same settings, same leader Lease."""
    started = [OperatorProcess(operator_env, tmp_path / f"operator-{n}.log", pod_name=f"replica-{n}-{request.node.name[-20:]}")
               for n in ("a", "b")]
    yield started
    for replica in started:
        replica.stop()
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            print(f"--- {replica.pod_name} ---\n" + replica.log_path.read_text()[-8000:])


def _timings() -> LeaseTimings:
    return LeaseTimings(lease_duration=2.0, renew_deadline=1.5, retry_period=0.5)


def test_an_elector_takes_over_only_after_the_leader_stops_renewing_for_the_lease_duration(
    api_client, namespace, uniq
):
    a = LeaderElector(api_client, namespace, f"elect-{uniq}", "a", _timings())
    b = LeaderElector(api_client, namespace, f"elect-{uniq}", "b", _timings())
    assert a.try_acquire_or_renew() and a.is_leading()
    assert not b.try_acquire_or_renew()  # b saw the record for the first time: it waits a whole lease duration
    assert a.try_acquire_or_renew()  # a renews: b's clock starts again
    time.sleep(1.0)
    assert not b.try_acquire_or_renew() and not b.is_leading()  # b first sees a's renewal now, not when it was made
    time.sleep(1.2)
    assert not a.is_leading()  # a renewed 2.2 s ago: past its renew deadline, it stops acting before b may start
    assert not b.try_acquire_or_renew()  # b saw that renewal only 1.2 s ago: less than a lease duration
    time.sleep(0.9)
    assert b.try_acquire_or_renew() and b.is_leading()
    assert _holder(api_client, namespace, f"elect-{uniq}") == "b"
    assert not a.try_acquire_or_renew()  # a comes back: b's record is fresh to it


def test_a_released_lease_is_taken_at_once(api_client, namespace, uniq):
    a = LeaderElector(api_client, namespace, f"release-{uniq}", "a", _timings())
    b = LeaderElector(api_client, namespace, f"release-{uniq}", "b", _timings())
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    assert not a.is_leading()
    assert b.try_acquire_or_renew()  # no wait: the holder is gone


def test_of_candidates_racing_for_a_free_lease_exactly_one_wins(api_client, namespace, uniq):
    for round_ in range(3):
        name = f"race-{uniq}-{round_}"
        electors = [LeaderElector(api_client, namespace, name, f"c{i}", _timings()) for i in range(6)]
        barrier = threading.Barrier(len(electors))
        won: list[str] = []

        def attempt(elector):
            barrier.wait()
            if elector.try_acquire_or_renew():
                won.append(elector.identity)

        threads = [threading.Thread(target=attempt, args=(e,)) for e in electors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, won
        assert _holder(api_client, namespace, name) == won[0]


def test_a_status_computed_from_a_stale_read_is_refused(api_client, namespace):
    """The check every status write makes: the resourceVersion it read (no operator runs in this test)."""
    create_restore(api_client, namespace, "stale", {"source": {"region": "us-east-1", "snapshotIdentifier": "s"},
                                                     "target": {"clusterIdentifier": "t"}})
    restores = AuroraRestores(api_client)
    read = get_restore(api_client, namespace, "stale")
    fresh = restores.patch_status(namespace, "stale", {"message": "newer writer"}, read["metadata"]["resourceVersion"])
    with pytest.raises(StatusConflict):
        restores.patch_status(namespace, "stale", {"message": "stale writer"}, read["metadata"]["resourceVersion"])
    assert get_restore(api_client, namespace, "stale")["status"]["message"] == "newer writer"
    restores.patch_status(namespace, "stale", {"message": "current"}, fresh["metadata"]["resourceVersion"])
    assert get_restore(api_client, namespace, "stale")["status"]["message"] == "current"


def test_the_standby_stays_idle_and_takes_over_when_the_leader_is_killed(
    api_client, aws, replicas, namespace, uniq, simulator, aws_calls, control_plane
):
    first, second = replicas
    first.start()
    assert _leader([first]) is first
    second.start()  # a standby answers /healthz too (start() waits for it)
    assert second.health() == {"identity": second.pod_name, "leader": False, "healthy": True}
    assert second.stop() == 0  # SIGTERM while standing by: a clean exit, nothing to hand over
    assert "Traceback" not in second.log_path.read_text()
    second.start()
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    simulator.set_delay(4)  # the restore is certainly mid-way when the leader dies
    create_restore(api_client, namespace, "ha", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
    })
    wait_for_phase(api_client, namespace, "ha", "RestoringCluster", timeout=60)
    assert _by(second, aws_calls.calls()) == []  # the standby did nothing while the leader lived
    first.kill()
    killed_at = time.time()

    status = wait_for_phase(api_client, namespace, "ha", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    calls = aws_calls.calls()
    by_first, by_second = _by(first, calls), _by(second, calls)
    assert by_first and by_second, "both replicas should have acted, one after the other"
    assert max(_ts(c["timestamp"]) for c in by_first) <= killed_at
    took_over = min(_ts(c["timestamp"]) for c in by_second) - killed_at
    assert 0 <= took_over <= LEASE_DURATION + float(OPERATOR_POLL_SECONDS) + STARTUP_ALLOWANCE, took_over
    # From the apiserver's side: every status write of the first replica precedes every one of the second.
    writes_first = _status_writes(control_plane, namespace, "ha", first)
    writes_second = _status_writes(control_plane, namespace, "ha", second)
    assert writes_first and writes_second
    assert max(writes_first) < min(writes_second)
    assert len([c for c in calls if c["action"] == "RestoreDBClusterFromSnapshot"]) == 1
    assert len([c for c in calls if c["action"] == "CreateDBInstance" and c["status"] < 400]) == 1
    assert _holder(api_client, OPERATOR_NAMESPACE, f"leader-{namespace}") == second.pod_name


def test_sigterm_lets_the_call_in_flight_finish_writes_its_outcome_and_hands_over(
    api_client, aws, replicas, namespace, uniq, simulator, aws_calls, control_plane
):
    first, second = replicas
    first.start()
    assert _leader([first]) is first
    second.start()
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    hold = 2.5 * LEASE_DURATION  # longer than the Lease: only renewing it during the drain keeps the standby out
    simulator.add_fault("rds", "RestoreDBClusterFromSnapshot", error=None, latency=hold, count=1)
    create_restore(api_client, namespace, "drain", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}"},
    })
    wait_for_phase(api_client, namespace, "drain", "RestoringCluster", timeout=60)
    time.sleep(1.0)  # the restore call is now held in the simulator
    assert not aws_calls.calls(action="RestoreDBClusterFromSnapshot")  # logged only once answered
    terminated_at = time.monotonic()
    first.process.terminate()  # SIGTERM, as the kubelet sends it
    first.process.wait(60)
    exited_at = time.time()
    took = time.monotonic() - terminated_at

    assert first.returncode == 0
    assert took >= hold - 1.5, f"exited {took:.1f}s after SIGTERM: it did not wait for the call in flight"
    restore_calls = aws_calls.calls(action="RestoreDBClusterFromSnapshot")
    assert len(restore_calls) == 1 and f"pod/{first.pod_name}" in restore_calls[0]["user_agent"]
    # Its outcome was written before the exit, by the replica that made the call.
    assert get_restore(api_client, namespace, "drain")["status"]["cluster"]["identifier"] == f"tgt-{uniq}"
    assert max(_status_writes(control_plane, namespace, "drain", first)) >= _ts(restore_calls[0]["timestamp"])
    log = first.log_path.read_text()
    assert "Traceback" not in log and "no turn in flight any more: stopping" in log
    # The standby did nothing while the first replica drained (it kept renewing the Lease), ...
    assert all(_ts(c["timestamp"]) >= exited_at - 0.5 for c in _by(second, aws_calls.calls()))
    assert all(t >= exited_at - 0.5 for t in _status_writes(control_plane, namespace, "drain", second))
    # ... and leads at once after the release, instead of waiting out the lease duration.
    assert _leader([second], timeout=LEASE_DURATION / 2) is second
    status = wait_for_phase(api_client, namespace, "drain", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    assert len(aws_calls.calls(action="RestoreDBClusterFromSnapshot")) == 1
