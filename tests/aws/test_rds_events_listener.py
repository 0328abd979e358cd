"""The operator's events listener against the simulator's SQS: the RDS event a transition's end publishes wakes the
restore waiting on that resource, and every message received is deleted, what the operator cannot use included."""

from __future__ import annotations

import json
import time
import uuid

from aurora_restore.aws import transitions
from aurora_restore.aws.clients import AwsClients
from aurora_restore.aws.rds_events import RdsEventsListener
from aurora_restore.wakeups import Wakeups
from aurora_restore_devenv.rds_events import create_events_queue

REGION = "us-east-1"


def _in_account(client, account: str):
    client.meta.events.register(f"before-sign.{client.meta.service_model.service_id.hyphenize()}.*",
                                lambda request, **_: request.headers.add_header("x-moto-account-id", account))
    return client


def _messages_left(sqs, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_a_published_rds_event_wakes_the_restore_waiting_on_it_and_every_message_is_deleted(simulator, aws_client):
    account = str(uuid.uuid4().int)[:12].rjust(12, "1")  # an account of its own: its queue gets only these events
    rds, sqs = (_in_account(aws_client(service, region_name=REGION), account) for service in ("rds", "sqs"))
    queue_url = create_events_queue(simulator.url, account, REGION)
    cluster = rds.create_db_cluster(DBClusterIdentifier=f"c-{uuid.uuid4().hex[:6]}", Engine="aurora-postgresql",
                                    MasterUsername="admin_user", MasterUserPassword="listener-test-1")["DBCluster"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="not an event")

    woken = []
    wakeups = Wakeups()
    wakeups.subscribe("ns/waiting", lambda: woken.append("ns/waiting"))
    wakeups.subscribe("ns/other", lambda: woken.append("ns/other"))
    wakeups.watch("ns/waiting", {cluster["DBClusterArn"]})
    wakeups.watch("ns/other", {cluster["DBClusterArn"].replace(":cluster:", ":db:")})
    listener = RdsEventsListener(sqs, queue_url, wakeups, wait_seconds=1)

    deadline = time.monotonic() + 30
    while not woken and time.monotonic() < deadline:  # the event follows the cluster's creation (the delay)
        listener.poll_once()
    assert woken == ["ns/waiting"]
    assert wakeups.listening()
    assert _messages_left(sqs, queue_url) == 0  # the event and the message that is none: both deleted
    body = json.dumps({"source": "aws.rds", "detail-type": "RDS DB Cluster Event",
                       "detail": {"SourceArn": cluster["DBClusterArn"]}})
    sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    sqs.send_message(QueueUrl=queue_url, MessageBody=body)  # the same event twice: two wake-ups, no harm
    while len(woken) < 3 and time.monotonic() < deadline:
        listener.poll_once()
    assert woken == ["ns/waiting"] * 3 and _messages_left(sqs, queue_url) == 0


def test_a_turn_waits_on_what_its_own_create_calls_set_in_transition(aws_session, simulator, monkeypatch):
    """The operator's clients note the resource a mutating RDS call answers with (the new cluster, `creating`):
    the turn that created it waits on its event; a call answering with no resource (tagging) adds nothing, nor
    does a describe outside the gateway."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", simulator.url)
    rds = AwsClients(aws_session).client("rds", REGION)
    identifier = f"c-{uuid.uuid4().hex[:6]}"
    with transitions.collecting() as seen:
        cluster = rds.create_db_cluster(DBClusterIdentifier=identifier, Engine="aurora-postgresql",
                                        MasterUsername="admin_user", MasterUserPassword="listener-test-1")
    assert cluster["DBCluster"]["Status"] == "creating" and seen == {cluster["DBCluster"]["DBClusterArn"]}
    deadline = time.monotonic() + 30
    while rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"] != "available":
        assert time.monotonic() < deadline, "the cluster never became available"
        time.sleep(0.2)
    with transitions.collecting() as seen:
        rds.add_tags_to_resource(ResourceName=cluster["DBCluster"]["DBClusterArn"], Tags=[{"Key": "k", "Value": "v"}])
        rds.describe_db_clusters(DBClusterIdentifier=identifier)  # a raw describe: the gateway notes those
    assert seen == set()


def test_a_failed_receive_wakes_the_restores_relying_on_events_to_poll_again(simulator, simulator_client, aws_client):
    """A restore that chose the safety interval while the listener was healthy must not sleep it out once the
    queue cannot be read: the failed receive wakes it, and its next turn sees no live listener."""
    account = str(uuid.uuid4().int)[:12].rjust(12, "3")
    sqs = _in_account(aws_client("sqs", region_name=REGION), account)
    queue_url = create_events_queue(simulator.url, account, REGION)
    woken = []
    wakeups = Wakeups()
    wakeups.subscribe("ns/r", lambda: woken.append("ns/r"))
    wakeups.heard_from_queue(45)
    wakeups.watch("ns/r", {f"arn:aws:rds:{REGION}:{account}:cluster:c-{uuid.uuid4().hex[:6]}"})
    simulator_client.add_fault("sqs", "ReceiveMessage", "AccessDenied", status=403, count=1, account=account)
    listener = RdsEventsListener(sqs, queue_url, wakeups, wait_seconds=1).start()
    try:
        deadline = time.monotonic() + 20
        while not woken and time.monotonic() < deadline:
            time.sleep(0.05)
        assert woken == ["ns/r"]
    finally:
        listener.stop(timeout=5)


def test_the_listener_reads_only_while_its_replica_may_act(simulator, aws_client):
    """A standby (or a replica shutting down) leaves the queue's messages to the leader; once it may act, its
    thread receives them, the first time without a long poll."""
    account = str(uuid.uuid4().int)[:12].rjust(12, "2")
    sqs = _in_account(aws_client("sqs", region_name=REGION), account)
    queue_url = create_events_queue(simulator.url, account, REGION)
    arn = f"arn:aws:rds:{REGION}:{account}:cluster:c-{uuid.uuid4().hex[:6]}"
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({
        "source": "aws.rds", "detail-type": "RDS DB Cluster Event", "detail": {"SourceArn": arn}}))
    woken, may_act = [], {"now": False}
    wakeups = Wakeups()
    wakeups.subscribe("ns/r", lambda: woken.append(arn))
    wakeups.watch("ns/r", {arn})
    listener = RdsEventsListener(sqs, queue_url, wakeups, active=lambda: may_act["now"], wait_seconds=1).start()
    try:
        time.sleep(1.5)  # the thread looked at least once whether it may act
        assert _messages_left(sqs, queue_url) == 1 and not wakeups.listening()
        may_act["now"] = True
        deadline = time.monotonic() + 20
        while not woken and time.monotonic() < deadline:
            time.sleep(0.05)
        assert woken == [arn] and wakeups.listening()
    finally:
        listener.stop(timeout=5)


def test_the_listener_is_relied_on_only_for_resources_of_its_queues_account_and_region(simulator, aws_client):
    """The queue receives the events of its own account and region (an EventBridge rule sees only its own bus):
    a restore waiting on a cluster elsewhere cannot rely on it. The simulator's queue URL names no region: the
    listener is told the one it reads in, as the operator does."""
    account = str(uuid.uuid4().int)[:12].rjust(12, "4")
    sqs = _in_account(aws_client("sqs", region_name=REGION), account)
    queue_url = create_events_queue(simulator.url, account, REGION)
    wakeups = Wakeups()
    RdsEventsListener(sqs, queue_url, wakeups, wait_seconds=1, region=REGION).poll_once(0)
    name = f"c-{uuid.uuid4().hex[:6]}"
    assert wakeups.listening({f"arn:aws:rds:{REGION}:{account}:cluster:{name}"})
    assert not wakeups.listening({f"arn:aws:rds:eu-west-1:{account}:cluster:{name}"})
    assert not wakeups.listening({f"arn:aws:rds:{REGION}:{'5' * 12}:cluster:{name}"})


def test_a_replica_that_stopped_acting_during_a_receive_leaves_the_messages_for_the_next_leader(simulator, aws_client):
    """Shutting down (still leading) while a long poll is in flight: what it brings is neither acted on nor
    deleted, so it comes back after the visibility timeout and the next leader wakes the restore."""
    account = str(uuid.uuid4().int)[:12].rjust(12, "6")
    sqs = _in_account(aws_client("sqs", region_name=REGION), account)
    queue_url = create_events_queue(simulator.url, account, REGION)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    arn = f"arn:aws:rds:{REGION}:{account}:cluster:c-{uuid.uuid4().hex[:6]}"
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({
        "source": "aws.rds", "detail-type": "RDS DB Cluster Event", "detail": {"SourceArn": arn}}))
    woken = []
    wakeups = Wakeups()
    wakeups.subscribe("ns/r", lambda: woken.append(arn))
    wakeups.watch("ns/r", {arn})
    draining = RdsEventsListener(sqs, queue_url, wakeups, active=lambda: False, wait_seconds=1)
    assert draining.poll_once(1) == 0
    assert woken == [] and _messages_left(sqs, queue_url) == 1
    next_leader = RdsEventsListener(sqs, queue_url, wakeups, wait_seconds=1)
    deadline = time.monotonic() + 20
    while not woken and time.monotonic() < deadline:  # the message is invisible for the visibility timeout
        next_leader.poll_once()
    assert woken == [arn] and _messages_left(sqs, queue_url) == 0
