"""Kubernetes-style conditions (Ready, Progressing, Failed) derived from the phase."""

from datetime import datetime

from ..api.models import Condition
from ..api.phase import Phase


def conditions_for(
    phase: Phase, reason: str, message: str, generation: int | None, now: datetime, previous: list[Condition]
) -> list[Condition]:
    """The three conditions for `phase`; lastTransitionTime only moves when a condition's status changes."""
    wanted = {
        "Ready": "True" if phase == Phase.SUCCEEDED or phase == Phase.PLANNED else "False",
        "Progressing": "False" if phase.is_terminal else "True",
        "Failed": "True" if phase in (Phase.FAILED, Phase.CLEANING_UP_AFTER_FAILURE) else "False",
    }
    before = {c.type: c for c in previous}
    result = []
    for kind, status in wanted.items():
        old = before.get(kind)
        changed = old is None or old.status != status
        result.append(
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now if changed else old.last_transition_time,
                observed_generation=generation,
            )
        )
    return result
