"""The order of the phases between the new cluster's instances and Publishing, in one place: each step asks here
which phase comes after it, so an optional phase (masking, hooks, an output snapshot, a swap) is skipped without
the steps knowing about one another."""

from collections.abc import Callable

from ..api.phase import Phase
from .context import RestoreContext

# After CreatingInstances, in order; a phase whose test is false for the restore is skipped.
SEQUENCE: tuple[tuple[Phase, Callable[[RestoreContext], bool]], ...] = (
    (Phase.CONFIGURING_ACCESS, lambda ctx: True),
    (Phase.MASKING, lambda ctx: ctx.spec.masking is not None),
    (Phase.RUNNING_HOOKS, lambda ctx: bool(ctx.spec.post_restore_hooks)),
    (Phase.VERIFYING, lambda ctx: True),
    (Phase.SNAPSHOTTING_OUTPUT, lambda ctx: ctx.spec.output_snapshot is not None),
    (Phase.SWAPPING_TARGET, lambda ctx: ctx.replacing),
    (Phase.PUBLISHING, lambda ctx: True),
)


def next_phase(ctx: RestoreContext, done: Phase) -> Phase:
    """The phase after `done` (one of SEQUENCE's) that this restore needs."""
    phases = [phase for phase, _ in SEQUENCE]
    for phase, wanted in SEQUENCE[phases.index(done) + 1:]:
        if wanted(ctx):
            return phase
    raise ValueError(f"no phase follows {done}")  # unreachable: Publishing is always wanted
