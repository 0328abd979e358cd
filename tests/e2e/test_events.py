"""Event-driven wake-ups end to end: the simulator publishes the end of every RDS transition as the EventBridge event
AWS sends, a rule delivers it to an SQS queue, and the operator (AURORA_RESTORE_EVENTS_QUEUE_URL) wakes the
restore the event concerns.

The poll interval is an hour in these tests, so a restore that finishes within the usual timeout was moved on by
events (or, where the test says so, by a short safety interval)."""

import pytest
from restores import create_restore, get_restore, make_source, wait_for_phase, wait_until

from aurora_restore_devenv.operator_process import OperatorProcess
from aurora_restore_devenv.rds_events import create_events_queue

ACCOUNT, REGION, OTHER_REGION = "123456789012", "us-east-1", "us-west-2"
AN_HOUR = "3600"
LISTENING = "receiving RDS events from the events queue"  # logged once the listener's first receive succeeded


@pytest.fixture
def events_queue(simulator_url, aws, uniq):
    """A queue the simulator's RDS events of the operator's account in us-east-1 reach (queue, rule, target and
    policy as in AWS); removed afterwards, so that later tests' events are not delivered to it."""
    name = f"rds-events-{uniq}"
    url = create_events_queue(simulator_url, ACCOUNT, REGION, name=name)
    yield url
    events = aws.client("events", region_name=REGION)
    events.remove_targets(Rule=name, Ids=["sqs"])
    events.delete_rule(Name=name)
    aws.client("sqs", region_name=REGION).delete_queue(QueueUrl=url)


@pytest.fixture
def events_operator(operator_env, events_queue, tmp_path, request):
    """Start the operator with the events queue and the given settings; stopped after the test."""
    started = []

    def start(**settings: str) -> OperatorProcess:
        env = {**operator_env, "AURORA_RESTORE_EVENTS_QUEUE_URL": events_queue,
               **{f"AURORA_RESTORE_{key.upper()}": value for key, value in settings.items()}}
        process = OperatorProcess(env, tmp_path / "operator.log", namespace=None).start()
        started.append(process)
        wait_until(lambda: LISTENING in process.log_path.read_text(), what="the events listener's first receive")
        return process

    yield start
    for process in started:
        process.stop()
        failed = request.node.rep_call.failed if hasattr(request.node, "rep_call") else False
        if failed:
            print(f"--- operator log ({process.log_path}) ---\n" + process.log_path.read_text()[-20000:])


def same_region_spec(region: str, uniq: str, suffix: str) -> dict:
    return {"source": {"region": region, "snapshotIdentifier": f"snap-{suffix}-{uniq}"},
            "target": {"clusterIdentifier": f"tgt-{suffix}-{uniq}", "instances": {"count": 1}}}


def operator_rds_calls(aws_calls, region: str) -> list[dict]:
    return [call for call in aws_calls.calls(service="rds", region=region)
            if "aurora-restore-operator" in call.get("user_agent", "")]


def test_events_wake_the_restore_they_concern_and_no_other(api_client, aws, events_operator, namespace, uniq,
                                                           aws_calls, simulator):
    """Poll and safety intervals of an hour: the us-east-1 restore finishes on events alone. The us-west-2 one
    waits on its own cluster, whose events reach no queue (the rule is in us-east-1): the other restore's events
    never wake it, so the operator never looks at us-west-2 again while it waits."""
    events_operator(poll_interval_seconds=AN_HOUR, events_safety_poll_seconds=AN_HOUR)
    make_source(aws.client("rds", region_name=OTHER_REGION), f"src-b-{uniq}", [f"snap-b-{uniq}"])
    make_source(aws.client("rds", region_name=REGION), f"src-a-{uniq}", [f"snap-a-{uniq}"])

    create_restore(api_client, namespace, "unwoken", same_region_spec(OTHER_REGION, uniq, "b"))
    wait_until(lambda: (get_restore(api_client, namespace, "unwoken").get("status") or {}).get("cluster", {}).get(
        "status") == "creating", what="the us-west-2 restore waiting on its cluster")
    # The status write ends the turn: whatever the operator asks of us-west-2 from now on, a wake-up caused.
    calls_while_waiting = len(operator_rds_calls(aws_calls, OTHER_REGION))

    create_restore(api_client, namespace, "woken", same_region_spec(REGION, uniq, "a"))
    status = wait_for_phase(api_client, namespace, "woken", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Succeeded", status

    published = [t for t in simulator.transitions() if t["arn"] in (
        f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:tgt-a-{uniq}", f"arn:aws:rds:{REGION}:{ACCOUNT}:db:tgt-a-{uniq}-1")]
    assert {t["event_id"] for t in published} >= {"RDS-EVENT-0170", "RDS-EVENT-0005"}, published
    unwoken = get_restore(api_client, namespace, "unwoken")["status"]
    # As last seen: nobody looked again, though AWS says available by now.
    assert unwoken["phase"] == "RestoringCluster" and unwoken["cluster"]["status"] == "creating"
    assert aws.client("rds", region_name=OTHER_REGION).describe_db_clusters(
        DBClusterIdentifier=f"tgt-b-{uniq}")["DBClusters"][0]["Status"] == "available"
    assert len(operator_rds_calls(aws_calls, OTHER_REGION)) == calls_while_waiting


def test_a_lost_event_costs_only_the_safety_interval(api_client, aws, events_operator, namespace, uniq, simulator):
    """The simulator publishes no event at all (AWS delivers best-effort): the restore still finishes, by the
    safety interval (a short one here; the poll interval is short too, since the longer of the two applies)."""
    events_operator(poll_interval_seconds="1", events_safety_poll_seconds="2")
    make_source(aws.client("rds", region_name=REGION), f"src-l-{uniq}", [f"snap-l-{uniq}"])
    previous = simulator.set_events_enabled(False)
    try:
        create_restore(api_client, namespace, "lost", same_region_spec(REGION, uniq, "l"))
        status = wait_for_phase(api_client, namespace, "lost", {"Succeeded", "Failed"})["status"]
    finally:
        simulator.set_events_enabled(previous)
    assert status["phase"] == "Succeeded", status
    ours = [t for t in simulator.transitions() if f"tgt-l-{uniq}" in t["arn"]]
    assert ours and not any(t.get("published") for t in ours), ours


def test_a_duplicated_event_causes_no_duplicate_aws_action(api_client, aws, events_operator, namespace, uniq,
                                                           simulator, aws_calls):
    """Each event delivered three times (the simulator publishes the last one again; SQS also delivers at least
    once): the restore only looks once more each time; it creates its instance once and succeeds."""
    events_operator(poll_interval_seconds=AN_HOUR, events_safety_poll_seconds=AN_HOUR)
    make_source(aws.client("rds", region_name=REGION), f"src-d-{uniq}", [f"snap-d-{uniq}"])
    simulator.set_delay(3.0)  # the duplicates come while the restore still waits
    create_restore(api_client, namespace, "duplicated", same_region_spec(REGION, uniq, "d"))
    republished = []
    for phase in ("CreatingInstances", "ConfiguringAccess"):
        wait_for_phase(api_client, namespace, "duplicated", {phase, "Succeeded", "Failed"})
        republished += [simulator.republish_last_event(), simulator.republish_last_event()]
    status = wait_for_phase(api_client, namespace, "duplicated", {"Succeeded", "Failed"})["status"]
    assert status["phase"] == "Succeeded", status
    assert all(republished), republished

    created = [call["parameters"].get("DBInstanceIdentifier")
               for call in aws_calls.calls(service="rds", action="CreateDBInstance")]
    assert created == [f"tgt-d-{uniq}-1"]
    restored = aws_calls.calls(service="rds", action="RestoreDBClusterFromSnapshot")
    assert [call["parameters"].get("DBClusterIdentifier") for call in restored] == [f"tgt-d-{uniq}"]
