"""Which waiting restores an RDS event should wake: ARN -> restores, shared by the daemons and the events listener.

A restore's daemon subscribes a signal for its whole life (driver.drive); each of its turns then says which ARNs
it waits on (`watch`, from the turn's thread: the resources it saw in transition, aws/transitions.py), or none.
The events listener (aws/rds_events.py) calls `wake(arn)` from its own thread for every RDS event it receives,
and `heard_from_queue` after every successful receive, which is what `listening` reports: only a restore whose
listener is alive, waiting on resources in the queue's account and region, may rely on an event and wait the
longer safety interval (docs/scale.md). A failed receive (`lost_queue`) wakes the restores that rely on events,
so they poll again instead of sleeping the safety interval.

Events are hints: a wake-up only ends a wait early, so a duplicate or stale one costs one turn and a lost one
the rest of the safety interval. An event that arrives while the turn that would register for it still runs
(between its describe and its `watch`) is remembered for a while and wakes the restore as it registers.
"""

import threading
import time
from collections.abc import Callable, Iterable

from .aws.arn import Arn

# How long an event is remembered for a turn still running when it came (a turn lasts seconds; its AWS calls
# time out within minutes).
RECENT_EVENT_SECONDS = 600.0
_PRUNE_ABOVE = 1000  # remembered events before old ones are dropped


class Wakeups:
    """Thread-safe registry: restore key ("namespace/name") -> its signal and the ARNs its current wait is on."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._signals: dict[str, Callable[[], None]] = {}
        self._arns_of: dict[str, frozenset[str]] = {}
        self._waiting_on: dict[str, set[str]] = {}  # ARN -> keys
        self._recent: dict[str, float] = {}  # ARN -> when its last event came
        self._listening_until = float("-inf")
        self._queue_scope: tuple[str | None, str | None] = (None, None)  # (account, region) the queue hears of

    def subscribe(self, key: str, signal: Callable[[], None]) -> None:
        """The daemon of `key` is alive: `signal()` (callable from any thread) ends its current wait."""
        with self._lock:
            self._signals[key] = signal

    def unsubscribe(self, key: str, signal: Callable[[], None]) -> None:
        """The daemon ended: drop its signal and its ARNs (unless a newer daemon of that key subscribed since)."""
        with self._lock:
            if self._signals.get(key) is not signal:
                return
            del self._signals[key]
            self._set_arns(key, frozenset())

    def watch(self, key: str, arns: Iterable[str], since: float | None = None) -> None:
        """The wait of `key` now ends on an event for any of `arns` (empty: on none). When one of them had an
        event at or after `since` (the clock value when the turn started), the restore is signalled at once."""
        arns = frozenset(arns)
        with self._lock:
            self._set_arns(key, arns)
            missed = since is not None and any(self._recent.get(arn, float("-inf")) >= since for arn in arns)
            signal = self._signals.get(key) if missed else None
        if signal is not None:
            _call(signal)

    def waiting_on(self, key: str) -> frozenset[str]:
        with self._lock:
            return self._arns_of.get(key, frozenset())

    def wake(self, arn: str) -> int:
        """An event for `arn` came: signal every restore waiting on it; returns how many."""
        with self._lock:
            now = self._clock()
            self._recent[arn] = now
            if len(self._recent) > _PRUNE_ABOVE:
                self._recent = {known: at for known, at in self._recent.items() if now - at < RECENT_EVENT_SECONDS}
            signals = [self._signals[key] for key in self._waiting_on.get(arn, ()) if key in self._signals]
        for signal in signals:
            _call(signal)
        return len(signals)

    def heard_from_queue(self, for_seconds: float, account: str | None = None, region: str | None = None) -> None:
        """The listener received (an answer, even an empty one): it counts as listening for `for_seconds`, to the
        events of the resources in `account` and `region` (None: any), those its queue receives."""
        with self._lock:
            self._listening_until = self._clock() + for_seconds
            self._queue_scope = (account, region)

    def lost_queue(self) -> None:
        """The listener could not receive: no restore may rely on events any more, so every one waiting on some
        (for the safety interval) is woken, and its next turn, no longer `listening`, waits the poll interval."""
        with self._lock:
            self._listening_until = float("-inf")
            signals = [self._signals[key] for key in self._arns_of if key in self._signals]
        for signal in signals:
            _call(signal)

    def listening(self, arns: Iterable[str] = ()) -> bool:
        """Whether an events listener received successfully recently enough for a restore to rely on it, for
        the events of every one of `arns`: one queue receives those of its own account and region only (an
        EventBridge rule sees the bus of its account and region), so a resource elsewhere is polled."""
        with self._lock:
            account, region = self._queue_scope
            return self._clock() < self._listening_until and all(
                _in_scope(arn, account, region) for arn in arns)

    def heard_of_lately(self, arns: Iterable[str], seconds: float) -> bool:
        """Whether one of `arns` had an event within the last `seconds`."""
        with self._lock:
            now = self._clock()
            return any(now - self._recent.get(arn, float("-inf")) <= seconds for arn in arns)

    def now(self) -> float:
        return self._clock()

    def _set_arns(self, key: str, arns: frozenset[str]) -> None:
        for arn in self._arns_of.pop(key, frozenset()) - arns:
            keys = self._waiting_on.get(arn)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._waiting_on[arn]
        if arns:
            self._arns_of[key] = arns
            for arn in arns:
                self._waiting_on.setdefault(arn, set()).add(key)


def _in_scope(arn: str, account: str | None, region: str | None) -> bool:
    """Whether arn:<partition>:<service>:<region>:<account>:... is in `account` and `region` (None: any)."""
    parsed = Arn.parse(arn)
    return parsed is not None and region in (None, parsed.region) and account in (None, parsed.account)


def _call(signal: Callable[[], None]) -> None:
    try:
        signal()
    except RuntimeError:  # the daemon's event loop is closed (shutting down): nobody is waiting any more
        pass
