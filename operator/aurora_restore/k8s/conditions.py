"""Kubernetes-style conditions: Ready, Progressing and Failed derived from the phase, and ObjectiveMet (drills:
whether the RTO and RPO objectives were met, reason ObjectiveMet, RtoObjectiveMissed or RpoObjectiveMissed), set
by the step that measures and kept through later transitions."""

from datetime import datetime

from ..api.models import Condition
from ..api.phase import Phase

OBJECTIVE_MET = "ObjectiveMet"
PHASE_CONDITIONS = ("Ready", "Progressing", "Failed")


def conditions_for(
    phase: Phase, reason: str, message: str, generation: int | None, now: datetime, previous: list[Condition]
) -> list[Condition]:
    """The three conditions for `phase`, then any other condition of `previous` (ObjectiveMet) as it was;
    lastTransitionTime only moves when a condition's status changes."""
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
    return result + [c for c in previous if c.type not in PHASE_CONDITIONS]


def with_condition(
    previous: list[Condition], kind: str, status: str, reason: str, message: str, generation: int | None,
    now: datetime,
) -> list[Condition]:
    """`previous` with the condition `kind` set (added, or replaced in place); lastTransitionTime only moves when
    its status changes."""
    old = next((c for c in previous if c.type == kind), None)
    condition = Condition(type=kind, status=status, reason=reason, message=message, observed_generation=generation,
                          last_transition_time=old.last_transition_time if old and old.status == status else now)
    if old is None:
        return [*previous, condition]
    return [condition if c.type == kind else c for c in previous]
