"""The AWS request budget: a token bucket per account and region that every request of the operator passes.

RDS throttles each account and region with a token bucket of its own (about 12 requests per second sustained, a
burst of 300), shared with every other tool of the account. Staying under a smaller budget of our own keeps the
operator from spending all of it, and lets it choose which request goes first when it is short: the mutating
calls of restores under way (HIGH) before the describes of restores that wait (NORMAL), and those before the
first describes of restores that are only starting (LOW). docs/scale.md explains the choice. A LOW waiter that
has waited AGING_SECONDS is served as NORMAL, so that new restores still start when the budget stays saturated.

A request that finds no token waits for one, in its worker thread; the wait is bounded by the rate and the
queue ahead of it, and a waiter looks every second at most whether it should give up (its replica stopped
leading), so a fence is never stuck behind the budget.
"""

import itertools
import threading
import time
from collections.abc import Callable
from enum import IntEnum

from ..api.phase import Phase
from ..obs import audit

# The longest a waiter sleeps before it looks again whether it should give up.
MAX_SLEEP_SECONDS = 1.0
# The shortest: a waiter with enough tokens for everyone ahead waits for them to take theirs.
MIN_SLEEP_SECONDS = 0.01
# Float slack: a token refilled to 0.9999999 is a token.
_EPSILON = 1e-9
# A LOW waiter waiting longer than this is served as NORMAL (first come first served with those): under sustained
# saturation the describes of waiting restores would otherwise keep a starting restore waiting for ever. Long
# against a request's usual wait (a fraction of a second), short against a restore's duration. NORMAL waiters do not
# age into HIGH: mutating calls keep going first, and aged NORMAL ones would starve the aged LOW ones again.
AGING_SECONDS = 10.0
# Phases whose calls are a restore's first describes (no status phase yet counts too): they yield to the others.
STARTING_PHASES = frozenset({None, Phase.PENDING, Phase.RESOLVING_SNAPSHOT})


class Priority(IntEnum):
    """Who goes first when tokens are short: the lower value."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


def priority_of(service: str, operation: str, turn: audit.Turn | None) -> Priority:
    """HIGH for a mutating call (it moves a restore on, and there are few of them), LOW for the other calls of a
    restore that is only starting, NORMAL for everything else, calls outside any turn included (the batched
    describes shared by every waiting restore)."""
    if audit.is_audited(service, operation):
        return Priority.HIGH
    if turn is not None and turn.phase in STARTING_PHASES:
        return Priority.LOW
    return Priority.NORMAL


class GaveUp(Exception):
    """A waiter's `give_up` said to stop waiting before it got a token."""


class PriorityTokenBucket:
    """A token bucket (`rate` tokens a second, at most `burst` kept) whose waiters are served in priority order,
    first come first served within a priority: a request takes a token only when none ahead of it waits. A LOW
    waiter ages into NORMAL after AGING_SECONDS.

    Thread-safe. `clock` (monotonic seconds) and `sleep` are injectable so tests can run it on fake time."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        # (priority, arrival number, arrival time) of each waiter: the smallest rank (_rank) is served next.
        self._queue: list[tuple[int, int, float]] = []
        self._arrivals = itertools.count()
        self._lock = threading.Lock()
        self.granted = 0  # tokens handed out so far

    def acquire(self, priority: Priority = Priority.NORMAL, give_up: Callable[[], bool] = lambda: False) -> float:
        """Take one token, waiting until one is free and no waiter of a higher priority (or of the same one, come
        earlier) is queued. Returns the seconds waited; raises GaveUp when `give_up()` turns true meanwhile
        (looked at every MAX_SLEEP_SECONDS at most)."""
        with self._lock:
            start = self._clock()
            self._refill(start)
            if not self._queue and self._tokens >= 1 - _EPSILON:
                self._take()
                return 0.0
            me = (int(priority), next(self._arrivals), start)
            self._queue.append(me)
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    self._refill(now)
                    rank = _rank(me, now)
                    ahead = sum(1 for waiter in self._queue if _rank(waiter, now) < rank)
                    if ahead == 0 and self._tokens >= 1 - _EPSILON:
                        self._queue.remove(me)
                        self._take()
                        return now - start
                    # Enough tokens for everyone ahead and this waiter come in this long (if nobody jumps ahead).
                    delay = (ahead + 1 - self._tokens) / self.rate
                    if ahead:
                        delay = max(delay, MIN_SLEEP_SECONDS)
                if give_up():
                    raise GaveUp()
                self._sleep(min(delay, MAX_SLEEP_SECONDS))
        finally:
            with self._lock:
                if me in self._queue:  # it gave up, or the sleep raised
                    self._queue.remove(me)

    def waiting(self) -> int:
        """How many requests wait for a token now."""
        with self._lock:
            return len(self._queue)

    def _take(self) -> None:
        self._tokens -= 1
        self.granted += 1

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._updated) * self.rate)
        self._updated = now


def _rank(waiter: tuple[int, int, float], now: float) -> tuple[int, int]:
    """(priority served as, arrival number): a LOW waiter that has waited more than AGING_SECONDS counts as NORMAL."""
    priority, arrival, since = waiter
    if priority == Priority.LOW and now - since > AGING_SECONDS:
        priority = Priority.NORMAL
    return priority, arrival


class RequestBudget:
    """One PriorityTokenBucket per (account, region), made on first use; a rate of 0 turns the budget off."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[tuple[str, str], PriorityTokenBucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def bucket(self, account: str, region: str) -> PriorityTokenBucket | None:
        """The bucket of `account` (an account ID, or the identity's role ARN while its account is unknown) in
        `region`; None when the budget is off."""
        if not self.enabled:
            return None
        key = (account, region)
        with self._lock:
            if key not in self._buckets:
                self._buckets[key] = PriorityTokenBucket(self.rate, self.burst, self._clock, self._sleep)
            return self._buckets[key]

    def keys(self) -> list[tuple[str, str]]:
        """The (account, region) pairs that have a bucket."""
        with self._lock:
            return list(self._buckets)
