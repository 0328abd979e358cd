"""Pending: take the target's lock so two restores never work on one target cluster at once."""

from ..api.phase import Phase
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait


def acquire_target(ctx: RestoreContext) -> Outcome:
    """Runs first. Holds in Pending while another restore holds the target; then ResolvingSnapshot."""
    holder = ctx.target_lock.acquire()
    target = f"{ctx.spec.target_region}/{ctx.spec.target.cluster_identifier}"
    if holder is not None:
        return Wait(f"waiting: restore {holder} is working on target cluster {target}")
    return Advance(Phase.RESOLVING_SNAPSHOT, f"target cluster {target} reserved for this restore")
