"""Pending: check the roles the spec names, then take the target's lock so two restores never share a target."""

from fnmatch import fnmatchcase

from ..api.phase import Phase
from ..errors import TerminalError
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait


def acquire_target(ctx: RestoreContext) -> Outcome:
    """Runs first, before any AWS call. Fails for a role this namespace may not use; holds in Pending while
    another restore holds the target; then ResolvingSnapshot."""
    check_roles(ctx)
    holder = ctx.target_lock.acquire()
    target = f"{ctx.spec.target_region}/{ctx.spec.target.cluster_identifier}"
    if holder is not None:
        return Wait(f"waiting: restore {holder} is working on target cluster {target}")
    return Advance(Phase.RESOLVING_SNAPSHOT, f"target cluster {target} reserved for this restore")


def check_roles(ctx: RestoreContext) -> None:
    """Which roles a namespace may assume is the operator's configuration, never the user's choice."""
    for field, role in (("spec.source.roleArn", ctx.spec.source.role_arn), ("spec.target.roleArn", ctx.spec.target.role_arn)):
        if role and not any(fnmatchcase(role, pattern) for pattern in ctx.allowed_roles):
            raise TerminalError(
                "RoleNotAllowed",
                f"{field} {role!r} is not allowed in namespace {ctx.namespace}: the operator's allowedRoles "
                f"setting decides which roles each namespace may use",
            )
