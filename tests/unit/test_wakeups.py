"""Event-driven wake-ups: which messages are RDS events of ours, which restores an event wakes, and when a
restore relies on events (the longer safety interval) instead of polling."""

import asyncio
import json
import logging

import pytest

from aurora_restore import driver
from aurora_restore.aws import transitions
from aurora_restore.aws.rds_events import QueueAddress, long_poll_seconds, parse_event
from aurora_restore.driver import Runtime, waits_on_rds_events
from aurora_restore.errors import NotLeading
from aurora_restore.settings import Settings
from aurora_restore.steps.outcomes import Advance, Fail, Wait
from aurora_restore.wakeups import Wakeups

CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:tgt-a"
INSTANCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:tgt-a-1"
SNAPSHOT_ARN = "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:copy-a"


def rds_event(detail_type: str, arn: str, event_id: str, source_type: str, message: str) -> dict:
    """An RDS event as EventBridge delivers it to an SQS target (the body is the event itself), in the shape
    of the samples of the RDS User Guide ("Amazon RDS events in EventBridge")."""
    return {
        "version": "0",
        "id": "68f6e973-1a0c-d37b-f2f2-94a7f62ffd4e",
        "detail-type": detail_type,
        "source": "aws.rds",
        "account": "123456789012",
        "time": "2026-12-02T06:00:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "EventCategories": ["creation"],
            "SourceType": source_type,
            "SourceArn": arn,
            "Date": "2026-12-02T06:00:00.123Z",
            "Message": message,
            "SourceIdentifier": arn.rsplit(":", 1)[-1],
            "EventID": event_id,
        },
    }


SAMPLES = {
    "cluster": rds_event("RDS DB Cluster Event", CLUSTER_ARN, "RDS-EVENT-0170", "CLUSTER", "DB cluster created"),
    "instance": rds_event("RDS DB Instance Event", INSTANCE_ARN, "RDS-EVENT-0005", "DB_INSTANCE",
                          "DB instance created"),
    "snapshot": rds_event("RDS DB Cluster Snapshot Event", SNAPSHOT_ARN, "RDS-EVENT-0060", "CLUSTER_SNAPSHOT",
                          "Manual cluster snapshot copy completed"),
}


@pytest.mark.parametrize("kind, arn", [("cluster", CLUSTER_ARN), ("instance", INSTANCE_ARN),
                                       ("snapshot", SNAPSHOT_ARN)])
def test_rds_events_of_clusters_instances_and_snapshots_name_their_resource(kind, arn):
    event = parse_event(json.dumps(SAMPLES[kind]))
    assert event is not None and event.source_arn == arn
    assert event.detail_type == SAMPLES[kind]["detail-type"] and event.event_id == SAMPLES[kind]["detail"]["EventID"]


def _with(event: dict, top: dict | None = None, detail: dict | None = None) -> str:
    """The event as JSON with some of its top-level and detail fields changed."""
    changed = json.loads(json.dumps(event))
    changed.update(top or {})
    if detail:
        changed["detail"].update(detail)
    return json.dumps(changed)


@pytest.mark.parametrize("body", [
    "", "not json", "[]", "null", "42", json.dumps({"source": "aws.rds"}),
    _with(SAMPLES["cluster"], top={"source": "aws.ec2"}),
    _with(SAMPLES["cluster"], top={"detail-type": "RDS DB Parameter Group Event"}),
    _with(SAMPLES["cluster"], top={"detail": "not a dict"}),
    _with(SAMPLES["cluster"], detail={"SourceArn": None}),
    _with(SAMPLES["cluster"], detail={"SourceArn": "tgt-a"}),
    _with(SAMPLES["cluster"], detail={"SourceArn": ["arn:aws:rds:x"]}),
    # An S3 event notification or an SNS envelope around an RDS event: not what the rule delivers.
    json.dumps({"Records": [{"eventSource": "aws:s3"}]}),
    json.dumps({"Type": "Notification", "Message": json.dumps(SAMPLES["cluster"])}),
], ids=lambda body: body[:40] or "empty")
def test_anything_else_is_not_an_rds_event(body):
    assert parse_event(body) is None


def test_an_event_id_that_is_not_a_string_is_left_out():
    event = parse_event(_with(SAMPLES["instance"], detail={"EventID": 5}))
    assert event is not None and event.source_arn == INSTANCE_ARN and event.event_id is None


@pytest.mark.parametrize("url, region, partition, arn", [
    ("https://sqs.eu-west-1.amazonaws.com/123456789012/rds-events", "eu-west-1", "aws",
     "arn:aws:sqs:eu-west-1:123456789012:rds-events"),
    ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "cn-north-1", "aws-cn",
     "arn:aws-cn:sqs:cn-north-1:123456789012:q"),
    ("https://eu-west-2.queue.amazonaws.com/123456789012/q", "eu-west-2", "aws",
     "arn:aws:sqs:eu-west-2:123456789012:q"),
    ("https://vpce-0abc-1234.sqs.us-west-2.vpce.amazonaws.com/123456789012/q", "us-west-2", "aws",
     "arn:aws:sqs:us-west-2:123456789012:q"),
    ("http://127.0.0.1:4566/123456789012/q", None, None, "arn:aws:sqs:*:123456789012:q"),
])
def test_a_queue_url_names_its_region_account_and_name(url, region, partition, arn):
    address = QueueAddress.parse(url)
    assert (address.region, address.partition, address.arn()) == (region, partition, arn)


@pytest.mark.parametrize("url", ["https://sqs.us-east-1.amazonaws.com/q", "https://sqs.us-east-1.amazonaws.com/",
                                 "https://sqs.us-east-1.amazonaws.com/12345/q", "https://x/123456789012/q/extra"])
def test_a_url_that_is_no_queue_url_is_refused(url):
    with pytest.raises(ValueError, match="12-digit account"):
        QueueAddress.parse(url)


@pytest.mark.parametrize("read_timeout, wait", [(60, 20), (40, 20), (30, 15), (10, 5), (1, 1)])
def test_a_long_poll_never_outlasts_the_read_timeout(read_timeout, wait):
    assert long_poll_seconds(read_timeout) == wait


# --- the registry ------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def registry() -> tuple[Wakeups, dict[str, int]]:
    woken: dict[str, int] = {}
    wakeups = Wakeups(clock=Clock())
    for key in ("ns/a", "ns/b", "ns/c"):
        wakeups.subscribe(key, lambda key=key: woken.__setitem__(key, woken.get(key, 0) + 1))
    return wakeups, woken


def test_an_event_wakes_exactly_the_restores_waiting_on_its_resource():
    wakeups, woken = registry()
    wakeups.watch("ns/a", {CLUSTER_ARN})
    wakeups.watch("ns/b", {INSTANCE_ARN, SNAPSHOT_ARN})
    wakeups.watch("ns/c", set())
    assert wakeups.wake(INSTANCE_ARN) == 1
    assert woken == {"ns/b": 1}
    assert wakeups.wake("arn:aws:rds:us-east-1:123456789012:cluster:nobodys") == 0
    assert woken == {"ns/b": 1}


def test_restores_waiting_on_one_resource_are_all_woken_and_a_duplicate_only_wakes_again():
    wakeups, woken = registry()
    wakeups.watch("ns/a", {CLUSTER_ARN})
    wakeups.watch("ns/b", {CLUSTER_ARN})
    assert wakeups.wake(CLUSTER_ARN) == 2
    assert wakeups.wake(CLUSTER_ARN) == 2  # the same event delivered twice: one more turn each, nothing else
    assert woken == {"ns/a": 2, "ns/b": 2}


def test_a_new_turn_replaces_what_the_restore_waits_on():
    wakeups, woken = registry()
    wakeups.watch("ns/a", {CLUSTER_ARN})
    wakeups.watch("ns/a", {INSTANCE_ARN})
    assert wakeups.wake(CLUSTER_ARN) == 0
    wakeups.watch("ns/a", ())  # a turn that waits on no event (it advanced, or backs off)
    assert wakeups.wake(INSTANCE_ARN) == 0
    assert woken == {} and wakeups.waiting_on("ns/a") == frozenset()


def test_an_ended_daemon_is_forgotten_but_not_the_newer_daemon_of_the_same_name():
    wakeups, woken = registry()
    wakeups.watch("ns/a", {CLUSTER_ARN})
    wakeups.unsubscribe("ns/a", lambda: None)  # not the signal ns/a subscribed with: an older daemon's end
    assert wakeups.wake(CLUSTER_ARN) == 1
    newer = []
    wakeups.subscribe("ns/a", lambda: newer.append(1))
    wakeups.unsubscribe("ns/a", newer.append)  # an older daemon's end again
    assert wakeups.wake(CLUSTER_ARN) == 1 and newer == [1]
    signal = wakeups._signals["ns/a"]
    wakeups.unsubscribe("ns/a", signal)
    assert wakeups.wake(CLUSTER_ARN) == 0 and wakeups.waiting_on("ns/a") == frozenset()


def test_an_event_that_came_during_the_turn_wakes_the_restore_as_it_registers():
    wakeups, woken = registry()
    clock = wakeups._clock
    turn_started = wakeups.now()
    clock.now += 1
    wakeups.wake(CLUSTER_ARN)  # nobody waits yet: the turn that saw the cluster creating is still writing
    clock.now += 1
    wakeups.watch("ns/a", {CLUSTER_ARN}, since=turn_started)
    assert woken == {"ns/a": 1}
    wakeups.watch("ns/b", {CLUSTER_ARN}, since=wakeups.now())  # a turn that started after that event
    assert woken == {"ns/a": 1}


def test_a_closed_event_loop_does_not_break_the_listener():
    wakeups = Wakeups()

    def closed():
        raise RuntimeError("Event loop is closed")

    wakeups.subscribe("ns/a", closed)
    wakeups.watch("ns/a", {CLUSTER_ARN})
    assert wakeups.wake(CLUSTER_ARN) == 1


def test_the_listener_counts_as_listening_only_for_a_while_after_a_receive():
    wakeups, _ = registry()
    assert not wakeups.listening()
    wakeups.heard_from_queue(45)
    assert wakeups.listening()
    wakeups._clock.now += 46
    assert not wakeups.listening()


def test_a_lost_queue_wakes_the_restores_relying_on_events_and_ends_listening_at_once():
    wakeups, woken = registry()
    wakeups.heard_from_queue(45)
    wakeups.watch("ns/a", {CLUSTER_ARN})  # sleeping the safety interval
    wakeups.watch("ns/b", set())  # polling anyway
    wakeups.lost_queue()
    assert woken == {"ns/a": 1} and not wakeups.listening()


# --- what a turn waits on -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("item, counts", [
    ({"DBClusterArn": CLUSTER_ARN, "Status": "creating"}, True),
    ({"DBClusterArn": CLUSTER_ARN, "Status": "resetting-master-credentials"}, True),
    ({"DBClusterArn": CLUSTER_ARN, "Status": "available"}, False),  # settled: no transition to end
    ({"DBClusterArn": CLUSTER_ARN, "Status": "modifying"}, False),  # RDS announces no end of it
    ({"DBInstanceArn": INSTANCE_ARN, "DBInstanceStatus": "creating"}, True),
    ({"DBInstanceArn": INSTANCE_ARN, "DBInstanceStatus": "deleting"}, True),
    ({"DBInstanceArn": INSTANCE_ARN, "DBInstanceStatus": "failed"}, False),
    ({"DBClusterSnapshotArn": SNAPSHOT_ARN, "Status": "creating"}, True),
    ({"DBClusterSnapshotArn": SNAPSHOT_ARN, "Status": "copying"}, False),  # a copy's end has no event
])
def test_a_turn_waits_on_events_only_for_transitions_whose_end_rds_announces(item, counts):
    with transitions.collecting() as seen:
        transitions.note(item)
    assert seen == ({next(value for key, value in item.items() if key.endswith("Arn"))} if counts else set())


def test_the_resource_a_mutating_call_answers_with_counts_too():
    with transitions.collecting() as seen:
        transitions.note_answer({"DBCluster": {"DBClusterArn": CLUSTER_ARN, "Status": "creating"}})
        transitions.note_answer({"DBInstance": {"DBInstanceArn": INSTANCE_ARN, "DBInstanceStatus": "creating"}})
        transitions.note_answer({"ResponseMetadata": {}})
    assert seen == {CLUSTER_ARN, INSTANCE_ARN}


# --- the driver's choice of delay --------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome, delay, in_transition, listening, expected", [
    (Wait("creating"), 30.0, {CLUSTER_ARN}, True, True),
    (Wait("creating"), 30.0, {CLUSTER_ARN}, False, False),  # the listener is down: poll as without events
    (Wait("creating"), 30.0, set(), True, False),  # waits on nothing in transition (a hook Job, a Lease)
    (Wait("throttled", backoff=True), 12.0, {CLUSTER_ARN}, True, False),
    (Wait("window", delay=5.0), 5.0, {CLUSTER_ARN}, True, False),
    (Advance(driver.Phase.CREATING_INSTANCES, "next"), 0, {CLUSTER_ARN}, True, False),
    (Fail("X", "x"), 0, {CLUSTER_ARN}, True, False),
    (None, 0, {CLUSTER_ARN}, True, False),  # an acceptance or a TTL expiry
    (Wait("creating"), None, {CLUSTER_ARN}, True, False),  # finished
])
def test_only_a_plain_wait_on_something_in_transition_with_a_live_listener_relies_on_events(
        outcome, delay, in_transition, listening, expected):
    assert waits_on_rds_events(delay, outcome, in_transition, listening) is expected


def _runtime(settings: Settings) -> Runtime:
    return Runtime(settings=settings, aws=None, restores=None, events=None, api_client=None, policies=None)


def _obj(name="a"):
    return {"metadata": {"name": name, "namespace": "ns"}, "status": {"phase": "RestoringCluster"}}


@pytest.mark.parametrize("listening", [True, False])
def test_step_once_waits_the_safety_interval_and_registers_only_with_a_live_listener(monkeypatch, listening):
    settings = Settings(poll_interval_seconds=30, events_safety_poll_seconds=300)
    rt = _runtime(settings)
    if listening:
        rt.wakeups.heard_from_queue(45)

    def step(runtime, obj, logger, errors):
        transitions.note({"DBClusterArn": CLUSTER_ARN, "Status": "creating"})
        transitions.note({"DBInstanceArn": INSTANCE_ARN, "DBInstanceStatus": "available"})  # settled: no event due
        return 30.0, 0, Wait("the cluster is creating")

    monkeypatch.setattr(driver, "_step_once", step)
    assert driver.step_once(rt, _obj(), logging.getLogger("t")) == ((300, 0) if listening else (30.0, 0))
    assert rt.wakeups.waiting_on("ns/a") == (frozenset({CLUSTER_ARN}) if listening else frozenset())


def test_step_once_keeps_backoffs_and_drops_the_last_registration(monkeypatch):
    rt = _runtime(Settings(poll_interval_seconds=30, events_safety_poll_seconds=300))
    rt.wakeups.heard_from_queue(45)
    rt.wakeups.watch("ns/a", {CLUSTER_ARN})

    def step(runtime, obj, logger, errors):
        transitions.note({"DBClusterArn": CLUSTER_ARN, "Status": "creating"})
        return 7.5, 1, Wait("Throttling", backoff=True)

    monkeypatch.setattr(driver, "_step_once", step)
    assert driver.step_once(rt, _obj(), logging.getLogger("t")) == (7.5, 1)
    assert rt.wakeups.waiting_on("ns/a") == frozenset()


class Stopped:
    """kopf's stop flag that never fires by itself; `wait` sleeps for real (the wake-up must end it)."""

    def __init__(self):
        self.stop, self.waits = False, []

    def __bool__(self):
        return self.stop

    async def wait(self, timeout=None):
        self.waits.append(timeout)
        await asyncio.sleep(timeout)


class StopsInAnEarlyWait(Stopped):
    """Stops the daemon half a second into the wait `ends` picks (from the waits so far): a turn started before
    then came too early."""

    def __init__(self, ends):
        super().__init__()
        self.ends = ends

    async def wait(self, timeout=None):
        self.waits.append(timeout)
        if self.ends(self.waits):
            await asyncio.sleep(0.5)
            self.stop = True
        else:
            await asyncio.sleep(timeout)


def _daemon_runtime() -> Runtime:
    """Polling and the safety interval an hour each, a live listener; the restore ns/a is new (no phase yet): its
    first turn comes without the jitter of one found under way."""
    rt = _runtime(Settings(poll_interval_seconds=3600, events_safety_poll_seconds=3600))
    rt.wakeups.heard_from_queue(3600)
    rt.restores = type("Restores", (), {"get": staticmethod(lambda namespace, name: {
        "metadata": {"name": name, "namespace": namespace}, "status": {}})})()
    return rt


def _woken_in_its_second_turn(turns, second_turn_ends):
    """A `_step_once` whose first turn waits on the cluster and whose second ends as `second_turn_ends()` does.
    Each turn appends its number to `turns`."""

    def step(runtime, obj, logger, errors):
        turns.append(len(turns) + 1)
        if len(turns) == 1:
            transitions.note({"DBClusterArn": CLUSTER_ARN, "Status": "creating"})
            return 3600.0, 0, Wait("creating")
        if len(turns) == 3:  # a turn too early: end the daemon (the test's assertion says what went wrong)
            return None, 0, Advance(driver.Phase.SUCCEEDED, "done")
        runtime.wakeups.wake(CLUSTER_ARN)  # the cluster's event, delivered while this turn runs
        return second_turn_ends()

    return step


def _drive_and_wake(rt, stopped) -> int:
    """Runs the daemon of ns/a; once it waits on the cluster, wakes the cluster from another thread as the listener
    does, then waits (at most a minute) for the daemon's end. Returns how many restores the wake-up woke."""

    async def scenario():
        daemon = asyncio.ensure_future(driver.drive(rt, "ns", "a", stopped, logging.getLogger("t")))
        while rt.wakeups.waiting_on("ns/a") != {CLUSTER_ARN}:
            await asyncio.sleep(0.01)
        woke = await asyncio.to_thread(rt.wakeups.wake, CLUSTER_ARN)
        await asyncio.wait_for(daemon, timeout=60)
        return woke

    return asyncio.run(scenario())


def test_an_event_ends_the_daemons_wait_and_the_daemons_end_forgets_it(monkeypatch):
    """The daemon waits the safety interval (an hour here); the event, sent from another thread as the
    listener does, makes the second turn happen at once. When the daemon ends, events wake nobody."""
    rt = _daemon_runtime()
    stopped, turns = Stopped(), []

    def step(runtime, obj, logger, errors):
        turns.append(obj["metadata"]["name"])
        if len(turns) == 2:
            return None, 0, Advance(driver.Phase.SUCCEEDED, "done")  # finished: the daemon returns
        transitions.note({"DBClusterArn": CLUSTER_ARN, "Status": "creating"})
        return 3600.0, 0, Wait("creating")

    monkeypatch.setattr(driver, "_step_once", step)
    assert _drive_and_wake(rt, stopped) == 1  # without the wake-up, the daemon would wait an hour
    assert turns == ["a", "a"] and stopped.waits == [3600]
    assert rt.wakeups.wake(CLUSTER_ARN) == 0 and "ns/a" not in rt.wakeups._signals


def test_an_event_during_a_turn_that_backs_off_does_not_cut_the_backoff_short(monkeypatch):
    """The first turn waits on the cluster; the event for it comes while the second turn runs, which ends in a
    backoff (throttled): the daemon sleeps the backoff instead of starting a third turn at once."""
    rt, turns = _daemon_runtime(), []
    stopped = StopsInAnEarlyWait(lambda waits: waits[-1] == 7.5)  # the backoff
    step = _woken_in_its_second_turn(turns, lambda: (7.5, 1, Wait("Throttling", backoff=True)))
    monkeypatch.setattr(driver, "_step_once", step)
    _drive_and_wake(rt, stopped)
    assert turns == [1, 2] and stopped.waits == [3600, 7.5]


@pytest.mark.parametrize("raised", [RuntimeError("a bug"), NotLeading("the Lease was lost")], ids=type)
def test_a_turn_that_raises_drops_the_last_registration_so_no_event_cuts_its_wait_short(monkeypatch, raised):
    """The first turn waits on the cluster; the second raises (its retry waits a backoff, or the poll interval
    without the Lease) while the cluster's event comes: the daemon waits that out instead of starting a third
    turn at once."""
    rt, turns = _daemon_runtime(), []
    stopped = StopsInAnEarlyWait(lambda waits: len(waits) == 2)  # the wait after the turn that raised

    def raises():
        raise raised

    monkeypatch.setattr(driver, "_step_once", _woken_in_its_second_turn(turns, raises))
    _drive_and_wake(rt, stopped)
    assert turns == [1, 2] and len(stopped.waits) == 2


OTHER_REGION_ARN = "arn:aws:rds:eu-west-1:123456789012:cluster:tgt-a"
OTHER_ACCOUNT_ARN = "arn:aws:rds:us-east-1:210987654321:cluster:tgt-a"


def _waiting_turn(*arns):
    def step(runtime, obj, logger, errors):
        for arn in arns:
            transitions.note({"DBClusterArn": arn, "Status": "creating"})
        return 30.0, 0, Wait("the cluster is creating")
    return step


@pytest.mark.parametrize("arns, delay", [
    ((CLUSTER_ARN,), 300),
    ((OTHER_REGION_ARN,), 30.0),
    ((OTHER_ACCOUNT_ARN,), 30.0),
    ((CLUSTER_ARN, OTHER_REGION_ARN), 30.0),  # one of them has no event coming: poll for it
], ids=["queue's", "other region", "other account", "both"])
def test_only_resources_in_the_queues_account_and_region_are_left_to_events(monkeypatch, arns, delay):
    """The queue receives the events of its own account and region: a restore waiting on a resource elsewhere
    polls at the poll interval (an event, forwarded there by a rule of one's own, still ends the wait early)."""
    rt = _runtime(Settings(poll_interval_seconds=30, events_safety_poll_seconds=300))
    rt.wakeups.heard_from_queue(45, "123456789012", "us-east-1")
    monkeypatch.setattr(driver, "_step_once", _waiting_turn(*arns))
    assert driver.step_once(rt, _obj(), logging.getLogger("t")) == (delay, 0)
    assert rt.wakeups.waiting_on("ns/a") == frozenset(arns)


def test_a_resource_still_in_transition_after_its_event_is_polled_for_a_while(monkeypatch):
    """The event woke the restore, but the describe still shows the cluster creating (RDS describes are
    eventually consistent): that event will not come again, so the next look is after the poll interval, not the
    safety interval. Once the event is older than the poll interval, the restore relies on the next one."""
    clock = Clock()
    rt = _runtime(Settings(poll_interval_seconds=30, events_safety_poll_seconds=300))
    rt.wakeups = Wakeups(clock=clock)
    rt.wakeups.heard_from_queue(3600)
    monkeypatch.setattr(driver, "_step_once", _waiting_turn(CLUSTER_ARN))
    rt.wakeups.wake(CLUSTER_ARN)
    clock.now += 1  # the turn the event caused
    assert driver.step_once(rt, _obj(), logging.getLogger("t")) == (30.0, 0)
    assert rt.wakeups.waiting_on("ns/a") == {CLUSTER_ARN}
    clock.now += 30
    assert driver.step_once(rt, _obj(), logging.getLogger("t")) == (300, 0)


def test_the_safety_interval_never_shortens_a_longer_poll_interval(monkeypatch):
    rt = _runtime(Settings(poll_interval_seconds=600, events_safety_poll_seconds=300))
    rt.wakeups.heard_from_queue(45)

    def step(runtime, obj, logger, errors):
        transitions.note({"DBClusterArn": CLUSTER_ARN, "Status": "creating"})
        return 600.0, 0, Wait("the cluster is creating")

    monkeypatch.setattr(driver, "_step_once", step)
    assert driver.step_once(rt, _obj(), logging.getLogger("t")) == (600.0, 0)
    assert rt.wakeups.waiting_on("ns/a") == {CLUSTER_ARN}


# --- the queue's permissions ---------------------------------------------------------------------------------------


def test_the_policy_grants_reading_and_deleting_only_the_events_queue_when_one_is_set():
    from aurora_restore.aws.iam_policy import compare, operator_policy

    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/rds-events"
    without = operator_policy("123456789012")
    assert not any(action.startswith("sqs:") for statement in without["Statement"] for action in statement["Action"])
    [statement] = [statement for statement in operator_policy("123456789012", events_queue_url=url)["Statement"]
                   if any(action.startswith("sqs:") for action in statement["Action"])]
    assert statement["Action"] == ["sqs:DeleteMessage", "sqs:ReceiveMessage"]
    assert statement["Resource"] == ["arn:aws:sqs:eu-west-1:123456789012:rds-events"]
    # What the listener calls, as the simulator's request log names it: DeleteMessageBatch needs sqs:DeleteMessage.
    policy = {"Statement": [statement]}
    assert compare(policy, {"sqs:ReceiveMessage", "sqs:DeleteMessageBatch"}) == (set(), set())
    assert compare(policy, {"sqs:ReceiveMessage", "sqs:DeleteMessageBatch", "sqs:GetQueueAttributes"}) == (
        {"sqs:GetQueueAttributes"}, set())


def test_the_policy_refuses_an_events_queue_url_that_is_no_queue_url():
    from aurora_restore.aws.iam_policy import operator_policy

    with pytest.raises(ValueError, match="12-digit account"):
        operator_policy(events_queue_url="https://sqs.eu-west-1.amazonaws.com/rds-events")
