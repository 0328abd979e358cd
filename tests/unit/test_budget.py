"""The AWS request budget (aws/budget.py) on fake time: rate and burst, priorities, one bucket per account and
region, giving up while waiting, and exact token accounting with real threads racing for tokens."""

import threading

import pytest

from aurora_restore.aws.budget import (
    AGING_SECONDS, MAX_SLEEP_SECONDS, GaveUp, Priority, PriorityTokenBucket, RequestBudget, priority_of,
)
from aurora_restore.obs import audit

# Seconds a test waits for its threads to reach the state it needs before it fails (never reached when it works).
SETTLE_TIMEOUT = 10.0


class AdvancingTime:
    """Fake time for one thread: sleeping moves the clock on at once."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class SteppedTime:
    """Fake time for several threads: a sleeper blocks until the test has moved the clock past its wake-up."""

    def __init__(self):
        self.now = 0.0
        self._asleep: dict[int, float] = {}  # thread ident -> wake-up time
        self._condition = threading.Condition()

    def clock(self) -> float:
        with self._condition:
            return self.now

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self._condition:
            wake_up = self.now + seconds
            self._asleep[me] = wake_up
            self._condition.notify_all()
            woken = self._condition.wait_for(lambda: self.now >= wake_up, timeout=SETTLE_TIMEOUT)
            del self._asleep[me]
        if not woken:
            raise TimeoutError("the test never moved the clock on")

    def advance(self, seconds: float) -> None:
        with self._condition:
            self.now += seconds
            self._condition.notify_all()

    def settle(self, threads: list[threading.Thread]) -> None:
        """Wait until every thread has finished or sleeps until a time still to come."""
        def settled() -> bool:
            return all(not thread.is_alive() or self._asleep.get(thread.ident, -1.0) > self.now for thread in threads)

        with self._condition:
            for _ in range(int(SETTLE_TIMEOUT / 0.01)):  # a thread that ends notifies nobody: look again often
                if settled():
                    return
                self._condition.wait(0.01)
        raise AssertionError("threads did not settle")


def _bucket(rate: float, burst: int, time) -> PriorityTokenBucket:
    return PriorityTokenBucket(rate, burst, clock=time.clock, sleep=time.sleep)


def _thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# --- rate and burst ------------------------------------------------------------------------------------------------


def test_a_full_bucket_lets_the_burst_through_then_one_request_per_token():
    time = AdvancingTime()
    bucket = _bucket(rate=2.0, burst=5, time=time)
    waits = [bucket.acquire() for _ in range(11)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.5] * 6)
    assert time.now == pytest.approx(3.0)  # (11 - 5) tokens at 2 a second
    assert bucket.granted == 11


def test_a_quiet_spell_refills_the_bucket_only_up_to_the_burst():
    time = AdvancingTime()
    bucket = _bucket(rate=2.0, burst=3, time=time)
    for _ in range(3):
        bucket.acquire()
    time.now += 100.0
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.5])


def test_a_waiter_looks_again_at_least_every_second_however_slow_the_rate():
    time = AdvancingTime()
    bucket = _bucket(rate=0.1, burst=1, time=time)
    bucket.acquire()
    assert bucket.acquire() == pytest.approx(10.0)
    assert time.sleeps and max(time.sleeps) <= MAX_SLEEP_SECONDS
    assert sum(time.sleeps) == pytest.approx(10.0)


def test_a_waiter_that_gives_up_leaves_the_queue_and_takes_no_token():
    time = SteppedTime()
    bucket = _bucket(rate=0.5, burst=1, time=time)
    bucket.acquire()
    stop = threading.Event()
    outcome = []

    def wait():
        try:
            bucket.acquire(give_up=stop.is_set)
            outcome.append("token")
        except GaveUp:
            outcome.append("gave up")

    waiter = _thread(wait)
    time.settle([waiter])
    assert bucket.waiting() == 1
    stop.set()
    time.advance(MAX_SLEEP_SECONDS)  # it looks again after a second, before its token has come
    waiter.join(SETTLE_TIMEOUT)
    assert outcome == ["gave up"]
    assert bucket.waiting() == 0
    time.advance(1.0)
    assert bucket.acquire() == 0.0  # the token it waited for is still there
    assert bucket.granted == 2


# --- priorities ----------------------------------------------------------------------------------------------------


def test_a_high_priority_waiter_queued_after_a_low_one_is_served_first():
    time = SteppedTime()
    bucket = _bucket(rate=1.0, burst=1, time=time)
    bucket.acquire()
    served: list[str] = []

    def request(priority: Priority):
        bucket.acquire(priority)
        served.append(priority.name)

    low = _thread(lambda: request(Priority.LOW))
    time.settle([low])
    high = _thread(lambda: request(Priority.HIGH))
    time.settle([low, high])
    assert bucket.waiting() == 2
    time.advance(1.0)  # one token: for HIGH, though LOW came first
    time.settle([low, high])
    assert served == ["HIGH"]
    time.advance(1.0)
    time.settle([low, high])
    assert served == ["HIGH", "LOW"]


def test_waiters_of_one_priority_are_served_in_the_order_they_came():
    time = SteppedTime()
    bucket = _bucket(rate=1.0, burst=1, time=time)
    bucket.acquire()
    served: list[int] = []
    threads: list[threading.Thread] = []
    for number in range(3):
        threads.append(_thread(lambda number=number: (bucket.acquire(Priority.NORMAL), served.append(number))))
        time.settle(threads)
    for _ in range(3):
        time.advance(1.0)
        time.settle(threads)
    assert served == [0, 1, 2]


def test_a_low_waiter_is_served_as_normal_once_it_has_waited_long_enough():
    """Sustained saturation: a NORMAL request keeps arriving as fast as the tokens come, so one always waits ahead
    of the LOW one. Strict priority would never serve it; aged past AGING_SECONDS, it goes before the NORMAL
    requests that came after it (though not before those that came first), and it never overtakes a HIGH one."""
    time = SteppedTime()
    bucket = _bucket(rate=1.0, burst=1, time=time)
    bucket.acquire()
    served: list[str] = []
    threads: list[threading.Thread] = []

    def request(name: str, priority: Priority):
        threads.append(_thread(lambda: (bucket.acquire(priority), served.append(name))))
        time.settle(threads)

    request("normal-0", Priority.NORMAL)
    request("low", Priority.LOW)
    for second in range(1, int(AGING_SECONDS) + 3):
        request(f"normal-{second}", Priority.NORMAL)
        if second == int(AGING_SECONDS) + 1:
            request("high", Priority.HIGH)
        time.advance(1.0)
        time.settle(threads)
    # One token a second: normal-0 first, then the NORMAL ones that came since, until the LOW one has waited more
    # than AGING_SECONDS (at 11 s); the HIGH one, come then too, goes first.
    assert served[:1] == ["normal-0"] and "low" in served
    assert served.index("high") < served.index("low") == int(AGING_SECONDS) + 1
    assert served[1:served.index("high")] == [f"normal-{second}" for second in range(1, int(AGING_SECONDS))]
    while any(thread.is_alive() for thread in threads):  # serve the rest, so no thread outlives the test
        time.advance(1.0)
        time.settle(threads)


def test_mutating_calls_go_first_and_the_first_describes_of_a_starting_restore_last():
    def turn(phase):
        return audit.Turn("ns", "r", "uid", phase)

    assert priority_of("rds", "RestoreDBClusterFromSnapshot", turn("Pending")) is Priority.HIGH
    assert priority_of("rds", "DeleteDBCluster", None) is Priority.HIGH
    for phase in (None, "Pending", "ResolvingSnapshot"):
        assert priority_of("rds", "DescribeDBClusterSnapshots", turn(phase)) is Priority.LOW
    assert priority_of("rds", "DescribeDBClusters", turn("RestoringCluster")) is Priority.NORMAL
    assert priority_of("rds", "DescribeDBClusters", None) is Priority.NORMAL  # outside any turn


# --- one bucket per account and region -----------------------------------------------------------------------------


def test_each_account_and_region_has_a_bucket_of_its_own():
    time = AdvancingTime()
    budget = RequestBudget(1.0, 1, clock=time.clock, sleep=time.sleep)
    bucket = budget.bucket("111111111111", "eu-west-1")
    assert budget.bucket("111111111111", "eu-west-1") is bucket
    assert bucket.acquire() == 0.0
    assert budget.bucket("111111111111", "us-east-1").acquire() == 0.0
    assert budget.bucket("222222222222", "eu-west-1").acquire() == 0.0
    assert bucket.acquire() == pytest.approx(1.0)  # only this pair has spent its token
    assert sorted(budget.keys()) == [("111111111111", "eu-west-1"), ("111111111111", "us-east-1"),
                                     ("222222222222", "eu-west-1")]


def test_a_rate_of_zero_turns_the_budget_off():
    budget = RequestBudget(0.0, 20)
    assert not budget.enabled
    assert budget.bucket("111111111111", "eu-west-1") is None
    with pytest.raises(ValueError):
        PriorityTokenBucket(0.0, 20)


# --- thread safety -------------------------------------------------------------------------------------------------


def test_threads_racing_for_tokens_get_exactly_the_burst_then_one_per_token():
    """Eight threads ask for 40 tokens at once; after each 1/rate of fake time exactly one more is handed out, never
    two (a bucket whose check and take are not atomic hands out more)."""
    time = SteppedTime()
    rate, burst, threads_count, each = 8.0, 4, 8, 5  # 1/8 s steps: exact in binary floating point
    bucket = _bucket(rate, burst, time)
    granted: list[int] = []
    lock = threading.Lock()

    def worker():
        for _ in range(each):
            bucket.acquire(Priority.NORMAL)
            with lock:
                granted.append(1)

    threads = [_thread(worker) for _ in range(threads_count)]
    time.settle(threads)
    assert len(granted) == burst
    for step in range(1, threads_count * each - burst + 1):
        time.advance(1 / rate)
        time.settle(threads)
        assert len(granted) == burst + step
    assert bucket.granted == threads_count * each
    for thread in threads:
        thread.join(SETTLE_TIMEOUT)
        assert not thread.is_alive()


def test_the_runtime_gives_its_clients_the_budget_of_the_settings(monkeypatch):
    from kubernetes import client

    from aurora_restore import driver
    from aurora_restore.settings import Settings

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:1"
    runtime = driver.Runtime.create(Settings(aws_requests_per_second=3.5, aws_request_burst=7),
                                    client.ApiClient(configuration))
    budget = runtime.aws._budget
    assert (budget.rate, budget.burst) == (3.5, 7)
