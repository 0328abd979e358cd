"""Restarts at scale: the operator killed with 200 restores in flight, started again, must not hit AWS in a herd.

200 AuroraRestores in the test namespace, same region, each to its own target, no instances, all waiting on RDS
when the operator is killed (SIGKILL) and started again:

- 190 wait in ResolvingSnapshot for a snapshot that stays `creating` (the simulator forces that status);
- 10 wait in RestoringCluster for their cluster, held `creating` by a long simulated transition delay.

Most wait for the snapshot rather than for a cluster because every restored cluster gets a real PostgreSQL
server in the e2e simulator: 200 of them would cost minutes of CPU on a small machine and would measure the
servers, not the operator. A waiting restore makes one AWS call per turn in either phase, so the two look alike
in the request log.

After the restart each daemon, finding its restore under way, first waits a random part of the poll interval
(driver.first_turn_delay), then polls once per interval. From the simulator's request log (the operator's calls
only, by user agent) the test takes the first 60 s after the restart and checks:

- the busiest second holds at most 3 * N / poll interval + 10 calls (N / poll interval is the steady rate);
- the first round (the first N RDS calls after the restart: one per restore, since a restore's second turn comes
  a whole poll interval after its first) is spread: no 1-second window holds more than FIRST_ROUND_FRACTION of it.
  Uniform over the 15 s interval, a 1-second window expects a fifteenth of the round; without the jitter every
  restore's first turn comes as soon as its daemon starts and the round bunches into the three to five seconds
  the operator takes to start 200 daemons and make their calls (40 % of the round or more in one second);
- every restore kept polling (at least N RDS calls in the window), and the 10 restores held in RestoringCluster
  reach Succeeded once the delay is lowered.

The poll interval is 15 s here (0.3 s in the other e2e tests): with 0.3 s the jitter window is far shorter than
the time the operator needs to start 200 daemons, and nothing could tell a spread round from a bunched one. It is
also long against the new process's first second or so, before its first AWS client and credentials are ready,
when the restores whose wait is already over go together (more so on a busy machine). Sixty seconds are four
poll intervals: the first round and three more, enough to see whether restores stay in lock-step. The test prints
the figures; docs/reliability.md ("Restarts at scale") records them.
"""

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from kubernetes import client
from restores import CallWindow, create_restore, make_source, wait_for_phase, wait_until

from aurora_restore.api import GROUP, PLURAL, VERSION

RESTORES = 200
# Restores of an available snapshot, held in RestoringCluster by the delay; they are the ones let finish.
FINISHING = 10
POLL_SECONDS = 15.0
# The simulated RDS transition delay while the restart is measured: far longer than the test.
HOLD_SECONDS = 900.0
# The delay once the measurement is over, which lets the held clusters become available.
RELEASE_SECONDS = 1.0
WINDOW_SECONDS = 60
# 200 restores at once load the apiserver (more so beside another pytest-xdist worker): with the session's tight
# leader timings, made for the election tests, one slow Lease renewal ends the leader. This test is about the
# spread of the calls after a restart, not the election: Lease timings a slow apiserver does not break.
LEADER_TIMINGS = {
    "AURORA_RESTORE_LEADER_LEASE_DURATION_SECONDS": "10",
    "AURORA_RESTORE_LEADER_RENEW_DEADLINE_SECONDS": "7",
    "AURORA_RESTORE_LEADER_RETRY_PERIOD_SECONDS": "1",
}
# At most this share of the first round in any 1-second window (uniform over POLL_SECONDS expects 1/15).
FIRST_ROUND_FRACTION = 0.25
# The steady rate is N / POLL_SECONDS; the busiest second may be this many times that, plus PEAK_SLACK calls.
PEAK_FACTOR = 3
PEAK_SLACK = 10
OPERATOR_USER_AGENT = "aurora-restore-operator"
REGION = "us-east-1"


@pytest.fixture
def held_snapshot(simulator, aws, uniq):
    """A source cluster with one available snapshot and one that stays `creating` until the test ends."""
    rds = aws.client("rds", region_name=REGION)
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    held = f"snap-{uniq}-held"
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=held, DBClusterIdentifier=f"src-{uniq}")
    simulator.set_rds_status("cluster-snapshot", held, "creating", region=REGION)
    yield f"snap-{uniq}", held
    simulator.set_rds_status("cluster-snapshot", held, None, region=REGION)


@pytest.fixture
def restored_clusters(aws):
    """Clusters to delete after the test (best effort): their database servers would run for the whole session."""
    identifiers: list[str] = []
    yield identifiers
    rds = aws.client("rds", region_name=REGION)
    for identifier in identifiers:
        try:
            rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)
        except rds.exceptions.ClientError:  # never restored (the test failed earlier) or already gone
            pass


@pytest.fixture
def operator_env(operator_env, held_snapshot, restored_clusters):
    """The session's operator environment with a poll interval long enough for its jitter to be measured.

    It depends on the held snapshot and the clusters to delete so that the operator starts after them and stops
    before their teardown: released while the operator still ran, the snapshot would let the 190 restores waiting
    for it restore 190 clusters (and start as many database servers)."""
    return {**operator_env, "AURORA_RESTORE_POLL_INTERVAL_SECONDS": str(POLL_SECONDS), **LEADER_TIMINGS}


def test_restart_with_200_restores_in_flight_spreads_aws_calls(
    api_client, aws, operator, namespace, uniq, simulator, held_snapshot, restored_clusters
):
    available, held = held_snapshot
    simulator.set_delay(HOLD_SECONDS)  # the simulator fixture puts the previous delay back
    names = [f"r-{index:03d}" for index in range(RESTORES)]
    finishing = names[:FINISHING]
    restored_clusters.extend(f"tgt-{uniq}-{name}" for name in finishing)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: create_restore(api_client, namespace, name, {
            "source": {"region": REGION, "snapshotIdentifier": available if name in finishing else held},
            "target": {"clusterIdentifier": f"tgt-{uniq}-{name}", "instances": {"count": 0}},
        }), names))
    wait_until(lambda: all_waiting(api_client, namespace, finishing), timeout=120, interval=1,
               what=f"all {RESTORES} restores waiting on RDS")

    operator.kill()
    window = CallWindow(simulator)
    restarted = datetime.now(timezone.utc)
    operator.start()
    time.sleep(max(0.0, WINDOW_SECONDS + 1 - (datetime.now(timezone.utc) - restarted).total_seconds()))

    calls = [call for call in window.calls() if OPERATOR_USER_AGENT in call["user_agent"]]
    offsets = sorted(seconds_after(restarted, call) for call in calls)
    offsets = [offset for offset in offsets if 0 <= offset < WINDOW_SECONDS]
    per_second = Counter(int(offset) for offset in offsets)
    rates = [per_second[second] for second in range(WINDOW_SECONDS)]
    peak, mean = max(rates), len(offsets) / WINDOW_SECONDS
    rds_offsets = sorted(seconds_after(restarted, call) for call in calls if call["service"] == "rds")
    rds_offsets = [offset for offset in rds_offsets if offset >= 0]  # not the killed process's last calls
    assert len(rds_offsets) >= RESTORES, f"{len(rds_offsets)} RDS calls after the restart: not every restore polled"
    first_round = rds_offsets[:RESTORES]
    busiest_window = max(sum(1 for other in first_round if start <= other < start + 1) for start in first_round)
    spread = first_round[-1] - first_round[0]
    steady = RESTORES / POLL_SECONDS
    peak_bound = PEAK_FACTOR * steady + PEAK_SLACK
    print(
        f"\nrestart with {RESTORES} restores in flight, poll interval {POLL_SECONDS:g} s "
        f"(steady rate {steady:.1f} calls/s), first {WINDOW_SECONDS} s after the restart:\n"
        f"  AWS calls: {len(offsets)}, mean {mean:.1f}/s, peak {peak}/s (bound {peak_bound:.0f})\n"
        f"  first round ({len(first_round)} RDS calls): from {first_round[0]:.1f} s to {first_round[-1]:.1f} s "
        f"(spread {spread:.1f} s), busiest 1-second window {busiest_window} "
        f"({busiest_window / RESTORES:.0%}, bound {FIRST_ROUND_FRACTION:.0%})\n"
        f"  calls per second: {rates}"
    )

    assert busiest_window <= FIRST_ROUND_FRACTION * RESTORES, (
        f"{busiest_window} of the first {RESTORES} RDS calls after the restart fell within one second: the restores' "
        f"first turns were not spread over the poll interval")
    assert peak <= peak_bound, f"{peak} AWS calls in one second after the restart: {rates}"

    # The restores held by the delay carry on: lowering it makes their clusters available.
    simulator.set_delay(RELEASE_SECONDS)
    for name in finishing:
        status = wait_for_phase(api_client, namespace, name, {"Succeeded", "Failed"}, timeout=90)["status"]
        assert status["phase"] == "Succeeded", status


def all_waiting(api_client, namespace: str, finishing: list[str]) -> bool:
    """Every restore in the phase it is held in, having made the call it waits on (its status shows the result)."""
    items = client.CustomObjectsApi(api_client).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    waiting = 0
    for item in items["items"]:
        status = item.get("status") or {}
        if item["metadata"]["name"] in finishing:
            waiting += status.get("phase") == "RestoringCluster" and "cluster" in status
        else:
            waiting += status.get("phase") == "ResolvingSnapshot" and "snapshot" in status
    return waiting == RESTORES


def seconds_after(moment: datetime, call: dict) -> float:
    return (datetime.fromisoformat(call["timestamp"]) - moment).total_seconds()
