"""/metrics while a restore runs: transitions, phase durations and the in-progress gauges move with it, also across
an operator restart, and nothing is left in progress at the end; the AWS call counter counts each invocation the
simulator saw once, with its final outcome."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from restores import create_restore, delete_and_wait_gone, make_source, wait_for_phase, wait_until

IN_PROGRESS = "aurora_restore_in_progress"
OLDEST_AGE = "aurora_restore_oldest_phase_age_seconds"
TRANSITIONS = "aurora_restore_phase_transitions_total"
PHASE_DURATION_COUNT = "aurora_restore_phase_duration_seconds_count"
AWS_CALLS = "aurora_restore_aws_api_calls_total"


def scrape(operator) -> dict[tuple[str, str], float] | None:
    """The operator's aurora_restore_* samples by (name, phase label), or None while nothing answers (kopf starts
    the metrics server once this replica leads)."""
    try:
        with urllib.request.urlopen(operator.metrics_url, timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return {(sample.name, sample.labels.get("phase", "")): sample.value
            for family in text_string_to_metric_families(text) if family.name.startswith("aurora_restore_")
            for sample in family.samples}


def aws_call_counts(operator) -> dict[tuple[str, str, str], float]:
    """aurora_restore_aws_api_calls_total by (service, operation, outcome)."""
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as answer:
        text = answer.read().decode()
    return {(sample.labels["service"], sample.labels["operation"], sample.labels["outcome"]): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == AWS_CALLS}


def restore_calls_counted(operator) -> dict[str, float]:
    return {outcome: value for (service, operation, outcome), value in aws_call_counts(operator).items()
            if (service, operation) == ("rds", "RestoreDBClusterFromSnapshot")}


def final_outcomes(calls: list[dict], pod_name: str, service: str, action: str) -> list[str]:
    """One entry per SDK invocation of `action` this operator sent (the simulator's log, by User-Agent and
    invocation id): its last attempt's injected fault, Success if moto answered it, else Refused."""
    attempts: dict[str, dict] = {}
    for call in calls:
        if (call["service"], call["action"]) == (service, action) \
                and f"aurora-restore-operator pod/{pod_name}" in call["user_agent"]:
            assert call["invocation_id"], call
            attempts[call["invocation_id"]] = call  # the log is oldest first: the last one stays
    return [last["fault"] or ("Success" if last["status"] < 400 else "Refused") for last in attempts.values()]


def in_progress(samples: dict) -> dict[str, float]:
    return {phase: value for (name, phase), value in samples.items() if name == IN_PROGRESS and value}


def test_metrics_follow_a_restore_through_its_phases_and_a_restart(api_client, aws, operator, namespace, uniq,
                                                                   simulator, aws_calls):
    assert operator.metrics_url
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    # The first restore call stays throttled through all of botocore's attempts (one invocation, counted once as
    # Throttling); the operator's next turn sends it again and it succeeds.
    simulator.add_fault("rds", "RestoreDBClusterFromSnapshot", "Throttling", count=4)
    quick = simulator.set_delay(600)  # the restored cluster stays `creating` until the test lets it go on
    create_restore(api_client, namespace, "measured", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
    })
    wait_for_phase(api_client, namespace, "measured", {"RestoringCluster"})

    # The operator counts right after its write, so the status can be seen a moment earlier.
    waiting = wait_until(lambda: (s := scrape(operator)) and in_progress(s) == {"RestoringCluster": 1} and s,
                         what="the restore counted in RestoringCluster")
    assert waiting[(OLDEST_AGE, "RestoringCluster")] >= 0
    assert {phase for name, phase in waiting if name == OLDEST_AGE} == {"RestoringCluster"}
    for phase in ("Pending", "ResolvingSnapshot", "Preflight"):  # entered and left once each
        assert waiting[(PHASE_DURATION_COUNT, phase)] == 1, phase
    assert waiting[(TRANSITIONS, "RestoringCluster")] == 1
    assert (PHASE_DURATION_COUNT, "RestoringCluster") not in waiting  # not left yet

    # RestoringCluster is written before its call: once the call is counted a success, no more are sent.
    counted = wait_until(lambda: (c := restore_calls_counted(operator)).get("Success") and c,
                         what="RestoreDBClusterFromSnapshot counted a success")
    outcomes = final_outcomes(aws_calls.calls(), operator.pod_name, "rds", "RestoreDBClusterFromSnapshot")
    attempts = aws_calls.calls(service="rds", action="RestoreDBClusterFromSnapshot")
    assert sorted(outcomes) == ["Success", "Throttling"] and len(attempts) == 5, attempts
    assert counted == {outcome: outcomes.count(outcome) for outcome in outcomes}

    # A restarted operator counts the restore from its first read of it, before any transition of its own.
    operator.kill()
    operator.start()
    resumed = wait_until(lambda: (s := scrape(operator)) and in_progress(s) == {"RestoringCluster": 1} and s,
                         what="the restarted operator counting the restore in RestoringCluster")
    assert (TRANSITIONS, "RestoringCluster") not in resumed
    assert resumed[(OLDEST_AGE, "RestoringCluster")] >= 0

    simulator.set_delay(quick)
    status = wait_for_phase(api_client, namespace, "measured", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Succeeded", status
    later = [entry["phase"] for entry in status["history"]]
    later = later[later.index("RestoringCluster") + 1:-1]  # the phases the restarted operator saw start and end
    assert later, status["history"]

    final = wait_until(lambda: (s := scrape(operator)) and (PHASE_DURATION_COUNT, later[-1]) in s
                       and not in_progress(s) and s, what="the last phase's duration observed, nothing in progress")
    assert [phase for name, phase in final if name == IN_PROGRESS]  # still exported, at 0
    assert not [phase for name, phase in final if name == OLDEST_AGE]
    assert final[(PHASE_DURATION_COUNT, "RestoringCluster")] == 1
    assert final[(TRANSITIONS, "Succeeded")] == 1
    for phase in later:
        assert final[(TRANSITIONS, phase)] == 1, phase
        assert final[(PHASE_DURATION_COUNT, phase)] == 1, phase


def test_a_cancelled_restore_is_counted_while_cancelling_and_then_no_more(api_client, aws, operator, namespace, uniq,
                                                                         simulator):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    quick = simulator.set_delay(600)
    create_restore(api_client, namespace, "cancelled", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
    })
    wait_for_phase(api_client, namespace, "cancelled", {"RestoringCluster"})
    wait_until(lambda: (s := scrape(operator)) and in_progress(s) == {"RestoringCluster": 1},
               what="the restore counted in RestoringCluster")

    simulator.set_delay(quick)  # the cancel deletes the cluster once it can
    delete_and_wait_gone(api_client, namespace, "cancelled")
    final = wait_until(lambda: (s := scrape(operator)) and (TRANSITIONS, "Cancelled") in s and not in_progress(s)
                       and s, what="the cancel counted, nothing in progress")
    assert final[(TRANSITIONS, "Cancelling")] == 1
    assert final[(PHASE_DURATION_COUNT, "RestoringCluster")] == 1
    assert final[(PHASE_DURATION_COUNT, "Cancelling")] == 1
