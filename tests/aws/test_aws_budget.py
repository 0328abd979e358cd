"""AwsClients against the simulator: every attempt of every client, the STS clients that assume roles included,
takes a token of its account's and region's bucket; a replica that stops leading while it waits sends nothing; and
every role's clients load their service models through the base session's one botocore loader."""

import uuid

import pytest

from aurora_restore.aws.budget import RequestBudget
from aurora_restore.aws.clients import AwsClients
from aurora_restore.errors import NotLeading
from aurora_restore.obs import metrics

REGION = "us-east-1"
ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"


class FrozenTime:
    """Time that never moves: a request finds a token in the burst or waits, and `on_sleep` says what a wait does."""

    def __init__(self, on_sleep=None):
        self.on_sleep = on_sleep or (lambda: pytest.fail("a request waited for the budget"))

    def clock(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        self.on_sleep()


def _clients(aws_session, simulator, monkeypatch, time, burst: int = 100, rate: float = 1.0, **kwargs) -> tuple:
    monkeypatch.setenv("AWS_ENDPOINT_URL", simulator.url)
    budget = RequestBudget(rate, burst, clock=time.clock, sleep=time.sleep)
    replica = f"budget-{uuid.uuid4().hex[:8]}"
    return AwsClients(session=aws_session, budget=budget, replica=replica, **kwargs), budget, replica


def _granted(budget: RequestBudget) -> dict[tuple[str, str], int]:
    return {key: budget.bucket(*key).granted for key in budget.keys()}


def _sent(simulator_client, replica: str, **criteria) -> list[dict]:
    return [call for call in simulator_client.calls(**criteria) if f"pod/{replica}" in call.get("user_agent", "")]


def test_every_call_takes_a_token_of_its_account_and_region(aws_session, simulator, simulator_client, monkeypatch):
    clients, budget, replica = _clients(aws_session, simulator, monkeypatch, FrozenTime())
    role_a, role_b = f"arn:aws:iam::{ACCOUNT_A}:role/restorer", f"arn:aws:iam::{ACCOUNT_B}:role/restorer"
    clients.client("rds", REGION, role_a).describe_db_clusters()
    clients.client("rds", REGION, role_b).describe_db_clusters()
    clients.client("rds", REGION, role_b).describe_db_cluster_snapshots()
    clients.client("rds", "eu-west-1", role_b).describe_db_clusters()  # the same role's session: no AssumeRole
    # The base identity's account is not known yet: its role ARN (none here) stands for it. It assumed both roles.
    assert _granted(budget) == {(ACCOUNT_A, REGION): 1, (ACCOUNT_B, REGION): 2, (ACCOUNT_B, "eu-west-1"): 1,
                                ("base-identity", REGION): 2}
    # Once GetCallerIdentity has named the base identity's account, its calls spend that account's tokens.
    account = clients.identity(REGION).account_id
    clients.client("rds", REGION).describe_db_clusters()
    assert _granted(budget)[(account, REGION)] == 1
    assert _granted(budget)[("base-identity", REGION)] == 3  # GetCallerIdentity, while the account was unknown
    assert sum(_granted(budget).values()) == len(_sent(simulator_client, replica))


def test_a_retry_takes_a_token_too(aws_session, simulator, simulator_client, monkeypatch):
    clients, budget, replica = _clients(aws_session, simulator, monkeypatch, FrozenTime())
    role = f"arn:aws:iam::{ACCOUNT_A}:role/restorer"
    rds = clients.client("rds", REGION, role)
    rds.describe_db_clusters()  # assumes the role first, so the fault below meets the describe
    simulator_client.add_fault("rds", "DescribeDBClusters", "Throttling", count=1, account=ACCOUNT_A)
    answer = rds.describe_db_clusters()
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert _granted(budget)[(ACCOUNT_A, REGION)] == 3  # two invocations, the second in two attempts
    assert len(_sent(simulator_client, replica, service="rds", action="DescribeDBClusters")) == 3


class LeaseLostWhileWaiting:
    """Fake time that moves on by the seconds slept; the replica loses its Lease during the first sleep."""

    def __init__(self, leads: dict):
        self.now, self.leads = 0.0, leads

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.leads["now"] = False


# At 1/s the token has come when the waiter looks again (the fence after the wait stops it); at 0.5/s it has not
# (the waiter gives up).
@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_a_replica_that_stops_leading_while_it_waits_sends_nothing(
    rate, aws_session, simulator, simulator_client, monkeypatch
):
    leads = {"now": True}
    clients, budget, replica = _clients(aws_session, simulator, monkeypatch, LeaseLostWhileWaiting(leads), burst=1,
                                        rate=rate, leading=lambda: leads["now"])
    rds = clients.client("rds", REGION)
    stopped_before = metrics.AWS_CALLS.labels(service="rds", operation="DescribeDBClusters",
                                              outcome="NotLeading")._value.get()
    rds.describe_db_clusters()  # the burst's one token
    with pytest.raises(NotLeading):
        rds.describe_db_clusters()
    assert len(_sent(simulator_client, replica)) == 1
    assert budget.bucket("base-identity", REGION).waiting() == 0
    # Not counted: nothing was sent (as when the fence stops a call before it is built).
    assert metrics.AWS_CALLS.labels(service="rds", operation="DescribeDBClusters",
                                    outcome="NotLeading")._value.get() == stopped_before


def test_every_role_loads_its_service_models_through_the_base_sessions_loader(
    aws_session, simulator, simulator_client, monkeypatch
):
    clients, _, replica = _clients(aws_session, simulator, monkeypatch, FrozenTime())
    loader = aws_session._session.get_component("data_loader")
    base = clients.client("rds", REGION)
    role_a = clients.client("rds", REGION, f"arn:aws:iam::{ACCOUNT_A}:role/restorer")
    role_b = clients.client("sts", REGION, f"arn:aws:iam::{ACCOUNT_B}:role/restorer", "external-id")
    assert base._loader is loader and role_a._loader is loader and role_b._loader is loader
    # ...and each still acts in its own account.
    assert role_b.get_caller_identity()["Account"] == ACCOUNT_B
    role_a.describe_db_clusters()
    base.describe_db_clusters()
    accounts = [call["account"] for call in _sent(simulator_client, replica, service="rds")]
    assert accounts[0] == ACCOUNT_A and accounts[1] not in (ACCOUNT_A, ACCOUNT_B)
