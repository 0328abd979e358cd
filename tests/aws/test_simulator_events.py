"""The simulator publishes the end of every RDS transition as AWS does: an RDS event on the EventBridge default
bus of the resource's account and region, which a rule delivers to an SQS queue (rds_events.create_events_queue).

Each test works in an account of its own, so that its queue and its transitions are its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from aurora_restore_devenv.rds_events import create_events_queue
from aurora_restore_devenv.simulator import SimulatorClient, SimulatorProcess
from tests.aws.conftest import new_account, poll_until, unique

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ENGINE = "aurora-postgresql"
ENGINE_VERSION = "15.4"
DELAY = 1.0


wait_until = partial(poll_until, timeout=15.0, interval=0.05)  # this module's patience and pace


class Account:
    """Clients of one account and region of the simulator, and the queue its RDS events go to."""

    def __init__(self, simulator: SimulatorProcess, aws_client: Callable[..., Any], account: str, region: str) -> None:
        self.account, self.region = account, region
        self.rds = self._client(aws_client, "rds")
        self.sqs = self._client(aws_client, "sqs")
        self.queue_url = create_events_queue(simulator.url, account, region)

    def _client(self, aws_client: Callable[..., Any], service: str) -> Any:
        client = aws_client(service, region_name=self.region)
        client.meta.events.register(
            f"before-sign.{service}.*",
            lambda request, **_: request.headers.add_header("x-moto-account-id", self.account),
        )
        return client

    def receive(self, wait_seconds: int = 1) -> list[dict[str, Any]]:
        """The events in the queue now (waiting up to `wait_seconds` for a first one), removed from it."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(message["Body"]) for message in messages]

    def event_of(self, arn: str, event_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait for the event `event_id` of `arn`; other events are dropped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.receive():
                if event["detail"]["SourceArn"] == arn and event["detail"]["EventID"] == event_id:
                    return event
        raise AssertionError(f"no {event_id} for {arn} within {timeout}s")

    def create_cluster(self) -> dict[str, Any]:
        return self.rds.create_db_cluster(
            DBClusterIdentifier=unique("cluster"),
            Engine=ENGINE,
            EngineVersion=ENGINE_VERSION,
            MasterUsername="postgres",
            MasterUserPassword="not-a-secret-1",
        )["DBCluster"]

    def cluster_status(self, identifier: str) -> str:
        return self.rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"]


def transition_of(sim: SimulatorClient, arn: str, to: str | None = "available") -> dict[str, Any] | None:
    found = [item for item in sim.transitions() if item["arn"] == arn and item["to"] == to]
    return found[-1] if found else None


@pytest.fixture(autouse=True)
def transition_delay(simulator_client: SimulatorClient) -> Iterator[None]:
    """Transitions of DELAY seconds; events on; both put back afterwards."""
    previous = simulator_client.set_delay(DELAY)
    try:
        yield
    finally:
        simulator_client.set_events_enabled(True)
        simulator_client.set_delay(previous)


@pytest.fixture
def sim(simulator_client: SimulatorClient) -> SimulatorClient:
    return simulator_client


@pytest.fixture
def account(simulator: SimulatorProcess, aws_client: Callable[..., Any]) -> Account:
    return Account(simulator, aws_client, new_account(), REGION)


def test_a_restored_cluster_becoming_available_arrives_in_the_queue(account: Account, sim: SimulatorClient) -> None:
    source = account.create_cluster()
    wait_until(lambda: account.cluster_status(source["DBClusterIdentifier"]) == "available")
    snapshot = account.rds.create_db_cluster_snapshot(
        DBClusterIdentifier=source["DBClusterIdentifier"], DBClusterSnapshotIdentifier=unique("snap")
    )["DBClusterSnapshot"]
    snapshot_event = account.event_of(snapshot["DBClusterSnapshotArn"], "RDS-EVENT-0075")
    restored = account.rds.restore_db_cluster_from_snapshot(
        DBClusterIdentifier=unique("restored"),
        SnapshotIdentifier=snapshot["DBClusterSnapshotIdentifier"],
        Engine=ENGINE,
    )["DBCluster"]

    event = account.event_of(restored["DBClusterArn"], "RDS-EVENT-0170")

    assert event["source"] == "aws.rds"
    assert event["detail-type"] == "RDS DB Cluster Event"
    assert event["account"] == account.account and event["region"] == REGION
    assert event["resources"] == [restored["DBClusterArn"]]
    assert event["detail"]["SourceType"] == "CLUSTER"
    assert event["detail"]["SourceIdentifier"] == restored["DBClusterIdentifier"]
    assert event["detail"]["EventCategories"] == ["creation"]
    assert event["detail"]["Message"] == "DB cluster created"
    assert account.cluster_status(restored["DBClusterIdentifier"]) == "available"
    ended = transition_of(sim, restored["DBClusterArn"])
    assert ended is not None
    assert ended["kind"] == "cluster" and ended["from"] == "creating" and ended["event_id"] == "RDS-EVENT-0170"
    assert (ended["account"], ended["region"]) == (account.account, REGION)
    assert ended["ended_at"] == pytest.approx(ended["started_at"] + DELAY, abs=1e-6)

    assert snapshot_event["detail-type"] == "RDS DB Cluster Snapshot Event"
    assert snapshot_event["detail"]["SourceType"] == "CLUSTER_SNAPSHOT"
    assert snapshot_event["detail"]["EventCategories"] == ["backup"]
    snapshot_ended = transition_of(sim, snapshot["DBClusterSnapshotArn"])
    assert snapshot_ended is not None and snapshot_ended["kind"] == "cluster-snapshot"


def test_an_instance_creation_and_deletion_each_publish_their_event(account: Account, sim: SimulatorClient) -> None:
    cluster = account.create_cluster()
    instance = account.rds.create_db_instance(
        DBInstanceIdentifier=unique("instance"),
        DBClusterIdentifier=cluster["DBClusterIdentifier"],
        Engine=ENGINE,
        DBInstanceClass="db.r6g.large",
    )["DBInstance"]
    created = account.event_of(instance["DBInstanceArn"], "RDS-EVENT-0005")
    assert created["detail-type"] == "RDS DB Instance Event"
    assert created["detail"]["SourceType"] == "DB_INSTANCE"
    assert created["detail"]["EventCategories"] == ["creation"]

    account.rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True)
    deleted = account.event_of(instance["DBInstanceArn"], "RDS-EVENT-0003")

    assert deleted["detail"]["EventCategories"] == ["deletion"]
    with pytest.raises(account.rds.exceptions.DBInstanceNotFoundFault):
        account.rds.describe_db_instances(DBInstanceIdentifier=instance["DBInstanceIdentifier"])
    gone = transition_of(sim, instance["DBInstanceArn"], to=None)
    assert gone is not None and gone["from"] == "deleting" and gone["event_id"] == "RDS-EVENT-0003"


def test_a_cluster_deletion_and_a_rename_publish_their_events(account: Account) -> None:
    cluster = account.create_cluster()
    old_name = cluster["DBClusterIdentifier"]
    account.event_of(cluster["DBClusterArn"], "RDS-EVENT-0170")
    new_name = unique("renamed")
    renamed = account.rds.modify_db_cluster(
        DBClusterIdentifier=old_name, NewDBClusterIdentifier=new_name, ApplyImmediately=True
    )["DBCluster"]
    event = account.event_of(renamed["DBClusterArn"], "RDS-EVENT-0172")
    assert event["detail"]["Message"] == f"Renamed cluster from {old_name} to {new_name}"

    account.rds.delete_db_cluster(DBClusterIdentifier=new_name, SkipFinalSnapshot=True)
    deleted = account.event_of(renamed["DBClusterArn"], "RDS-EVENT-0171")
    assert deleted["detail"]["EventCategories"] == ["deletion"]


def test_no_event_before_the_transition_ends_and_statuses_stay_computed(
    account: Account, sim: SimulatorClient
) -> None:
    cluster = account.create_cluster()

    assert account.cluster_status(cluster["DBClusterIdentifier"]) == "creating"
    assert transition_of(sim, cluster["DBClusterArn"]) is None
    assert [event for event in account.receive(wait_seconds=0) if event["resources"] == [cluster["DBClusterArn"]]] == []

    account.event_of(cluster["DBClusterArn"], "RDS-EVENT-0170")
    ended = transition_of(sim, cluster["DBClusterArn"])
    assert ended is not None and ended["ended_at"] <= time.time()
    assert account.cluster_status(cluster["DBClusterIdentifier"]) == "available"


def test_disabled_events_are_lost_but_the_end_is_still_listed(account: Account, sim: SimulatorClient) -> None:
    assert sim.set_events_enabled(False) is True
    assert sim.events_enabled() is False
    cluster = account.create_cluster()

    ended = wait_until(lambda: transition_of(sim, cluster["DBClusterArn"]))

    assert ended["event_id"] == "RDS-EVENT-0170" and ended["published"] is False
    assert [event for event in account.receive(wait_seconds=1) if event["resources"] == [cluster["DBClusterArn"]]] == []


def test_the_last_event_can_be_published_again(account: Account, sim: SimulatorClient) -> None:
    cluster = account.create_cluster()
    account.event_of(cluster["DBClusterArn"], "RDS-EVENT-0170")
    wait_until(lambda: transition_of(sim, cluster["DBClusterArn"]))
    time.sleep(0.2)  # the automated snapshot's end, which may follow, is published by now
    account.receive(wait_seconds=0)

    detail = sim.republish_last_event()

    assert detail is not None
    assert account.event_of(detail["SourceArn"], detail["EventID"])["detail"] == detail


def test_an_event_goes_to_the_account_and_region_of_its_resource_only(
    simulator: SimulatorProcess, aws_client: Callable[..., Any], account: Account
) -> None:
    other_account = Account(simulator, aws_client, new_account(), REGION)
    other_region = Account(simulator, aws_client, account.account, OTHER_REGION)
    cluster = account.create_cluster()

    account.event_of(cluster["DBClusterArn"], "RDS-EVENT-0170")

    assert other_account.receive(wait_seconds=1) == []
    assert other_region.receive(wait_seconds=0) == []


def test_transitions_can_be_cleared(account: Account, sim: SimulatorClient) -> None:
    cluster = account.create_cluster()
    wait_until(lambda: transition_of(sim, cluster["DBClusterArn"]))

    assert sim.clear_transitions() >= 1

    assert transition_of(sim, cluster["DBClusterArn"]) is None


def test_creating_the_queue_again_changes_nothing(
    simulator: SimulatorProcess, aws_client: Callable[..., Any], account: Account
) -> None:
    assert create_events_queue(simulator.url, account.account, REGION) == account.queue_url
    cluster = account.create_cluster()

    account.event_of(cluster["DBClusterArn"], "RDS-EVENT-0170")

    assert [event for event in account.receive(wait_seconds=1) if event["resources"] == [cluster["DBClusterArn"]]] == []


def test_a_creation_whose_database_server_failed_ends_failed_and_publishes_no_event() -> None:
    """A status read shows `failed` for a cluster whose server did not start (databases/): its end says so, and
    RDS's "DB cluster created" is not published for it."""
    from types import SimpleNamespace

    from moto.rds.models import DBCluster

    from aurora_restore_devenv.simulator.rds_lifecycle import Transition
    from aurora_restore_devenv.simulator.settings import SimulatorSettings
    from aurora_restore_devenv.simulator.transition_events import TransitionEvents

    cluster = DBCluster.__new__(DBCluster)  # only what an end's record reads
    cluster.db_cluster_identifier = "c-failed"
    cluster.backend = SimpleNamespace(account_id="123456789012", region_name=REGION, partition="aws")
    events = TransitionEvents(SimulatorSettings(delay=DELAY))
    events.failures.append(lambda obj: True)
    published: list[Any] = []
    events._publish = lambda *event: published.append(event)  # no EventBridge needed to see that none is sent
    events.watch(cluster, Transition(("creating",), "available", started_at=time.monotonic() - 2 * DELAY))

    [record] = events.publish_ended()

    assert (record["to"], record["event_id"], published) == ("failed", None, [])


def test_a_reset_while_ends_are_published_leaves_none_of_them_recorded() -> None:
    """The thread's pass that found ends before a reset must not record them after it (their objects are gone)."""
    from types import SimpleNamespace

    from moto.rds.models import DBCluster

    from aurora_restore_devenv.simulator.rds_lifecycle import Transition
    from aurora_restore_devenv.simulator.settings import SimulatorSettings
    from aurora_restore_devenv.simulator.transition_events import TransitionEvents

    events = TransitionEvents(SimulatorSettings(delay=DELAY))
    resets = iter([events.reset])
    events._publish = lambda *_: next(resets, lambda: None)()  # a reset while the first end is being published
    for name in ("c-first", "c-second"):
        cluster = DBCluster.__new__(DBCluster)  # only what an end's record reads
        cluster.db_cluster_identifier = name
        cluster.backend = SimpleNamespace(account_id="123456789012", region_name=REGION, partition="aws")
        events.watch(cluster, Transition(("creating",), "available", started_at=time.monotonic() - 2 * DELAY))

    events.publish_ended()

    assert events.ended() == []
