"""Knobs of a running simulator that tests may turn while it serves requests.

One `SimulatorSettings` object is shared by the middleware, the control API and the RDS
extensions. Plain attribute reads and writes are atomic in CPython, so no lock is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SimulatorSettings:
    """How long RDS transitions take and how large describe pages are."""

    #: Seconds each RDS transition (creating, copying, deleting, ...) takes. 0 = at once, as
    #: plain moto. Read at every status computation, so a change also affects objects that
    #: are already in transition.
    delay: float = 0.0
    #: Server-wide cap on items per page of the paginated RDS describe calls, or None for
    #: AWS's own limit (MaxRecords, default 100).
    page_size: int | None = None
    #: Seconds LatestRestorableTime trails the present (RDS: about 5 minutes); tests use seconds.
    restorable_lag: float = 300.0
    #: The values given at start-up, restored by a reset.
    initial: tuple[float, int | None] = field(init=False)
    initial_restorable_lag: float = field(init=False)

    def __post_init__(self) -> None:
        validate_delay(self.delay)
        validate_page_size(self.page_size)
        self.initial = (self.delay, self.page_size)
        self.initial_restorable_lag = validate_restorable_lag(self.restorable_lag)

    def restore_initial(self) -> None:
        self.delay, self.page_size = self.initial
        self.restorable_lag = self.initial_restorable_lag


def validate_delay(seconds: float) -> float:
    """Refuse a negative or non-numeric delay before it breaks status computations."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"delay must be a number of seconds >= 0, not {seconds!r}")
    return float(seconds)


def validate_restorable_lag(seconds: float) -> float:
    """Refuse a negative or non-numeric lag of LatestRestorableTime."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"restorable lag must be a number of seconds >= 0, not {seconds!r}")
    return float(seconds)


def validate_page_size(size: int | None) -> int | None:
    """Refuse a page size that could not make progress (0 or negative)."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"page size must be an integer >= 1 or null, not {size!r}")
    return size
