"""Install every RDS extension into moto, in the order the hooks must run.

ARNs are rewritten first so that the later checks see plain identifiers; validation runs
before the state checks of the lifecycle, as AWS checks parameters before state. Around
hooks nest in registration order: pagination pages what the shared-snapshot lookup returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import arns, automated_backups, aws_managed_keys, engine_versions, pagination, shared_snapshots, validation
from .rds_hooks import RdsHooks
from .rds_lifecycle import RdsLifecycle
from .settings import SimulatorSettings

if TYPE_CHECKING:
    from .databases import DatabaseFleet


def install(settings: SimulatorSettings, databases: DatabaseFleet | None = None) -> RdsLifecycle:
    """Patch moto's RDS for this process; returns the lifecycle (its `sweep()` must run
    before each RDS request). With `databases`, clusters get real database servers; their
    statuses wrap the lifecycle's, so they are installed after it."""
    hooks = RdsHooks()
    arns.register(hooks)
    validation.register(hooks)
    lifecycle = RdsLifecycle(settings)
    lifecycle.install(hooks)
    pagination.register(hooks, settings)
    shared_snapshots.register(hooks)
    if databases is not None:
        from .databases.rds_actions import RdsDatabases

        RdsDatabases(databases, settings).install(hooks)
    automated_backups.install()
    engine_versions.install()
    aws_managed_keys.install()  # KMS, but only RDS snapshots care who manages a key
    hooks.install()
    return lifecycle
