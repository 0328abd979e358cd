"""Pending: check the restore against the AuroraRestorePolicies, then take the target's lock so two restores
never share a target."""

from ..api.phase import Phase
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait
from .policy import allowing_policy


def acquire_target(ctx: RestoreContext) -> Outcome:
    """Runs first, before any AWS call. Fails NotAllowedByPolicy unless a policy covering the namespace allows
    what the spec asks (steps/policy.py); holds in Pending while another restore holds the target; then
    ResolvingSnapshot, recording the policy that allowed it in status.policy."""
    policy = allowing_policy(ctx)
    holder = ctx.target_lock.acquire()
    target = f"{ctx.spec.target_region}/{ctx.target_identifier}"
    if holder is not None:
        return Wait(f"waiting: restore {holder} is working on target cluster {target}")
    return Advance(Phase.RESOLVING_SNAPSHOT, f"target cluster {target} reserved for this restore (allowed by "
                   f"AuroraRestorePolicy {policy})", updates={"policy": policy})
