"""What a step returns: move to the next phase, wait and look again, or fail for good."""

from dataclasses import dataclass, field
from typing import Any

from ..api.phase import Phase


@dataclass(frozen=True)
class Advance:
    """The phase's work is done: go to `to`, recording `updates` (status fields) and `message`."""

    to: Phase
    message: str
    updates: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Not done yet: look again after `delay` seconds (None: the configured poll interval).

    `backoff` marks a wait caused by a retryable error: the driver then waits longer after each one in a row.
    """

    message: str
    delay: float | None = None
    updates: dict[str, Any] = field(default_factory=dict)
    backoff: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Fail:
    """The restore cannot succeed: `reason` is CamelCase, `message` says what to fix."""

    reason: str
    message: str
    updates: dict[str, Any] = field(default_factory=dict)


Outcome = Advance | Wait | Fail
