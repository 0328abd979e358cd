"""Install every RDS extension into moto, in the order the hooks must run.

Actions moto lacks are added first, so that hooks can be registered on them. ARNs are
rewritten next so that the later checks see plain identifiers; validation (including a
rename's new identifier) runs before the state checks of the lifecycle, as AWS checks
parameters before state. Around hooks nest in registration order: pagination pages what the
shared-snapshot lookup returns; the clone hook finds another account's shared cluster for
moto's copy and the database servers' copy inside it; a rename carries the instances over after moto (and the
database servers) have handled the modification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import (
    account_quotas,
    arns,
    automated_backups,
    aws_managed_keys,
    clones,
    engine_versions,
    pagination,
    renames,
    restore_encryption,
    shared_snapshots,
    validation,
)
from .ram import ResourceShares
from .rds_hooks import RdsHooks
from .rds_lifecycle import RdsLifecycle
from .settings import SimulatorSettings

if TYPE_CHECKING:
    from .databases import DatabaseFleet


def install(
    settings: SimulatorSettings, databases: DatabaseFleet | None = None, shares: ResourceShares | None = None
) -> RdsLifecycle:
    """Patch moto's RDS for this process; returns the lifecycle (its `sweep()` must run
    before each RDS request). With `databases`, clusters get real database servers; their
    statuses wrap the lifecycle's, so they are installed after it. `shares` are the RAM shares
    through which other accounts' clusters are described and cloned."""
    automated_backups.install()  # adds DescribeDBClusterAutomatedBackups
    account_quotas.install()  # adds DescribeAccountAttributes
    hooks = RdsHooks()
    arns.register(hooks)
    validation.register(hooks, settings)
    lifecycle = RdsLifecycle(settings)
    renames.register(hooks, lifecycle)
    validation.register_password_resets(hooks, lifecycle)
    lifecycle.install(hooks)
    lifecycle.faults.register(hooks)  # hides young objects from what pagination pages
    pagination.register(hooks, settings)
    shared_snapshots.register(hooks)
    sharing = clones.ClusterSharing(shares if shares is not None else ResourceShares())
    sharing.register(hooks)  # outside the database servers' hook: their copy of a clone's source finds it too
    restore_encryption.register(hooks)
    if databases is not None:
        from .databases.rds_actions import RdsDatabases

        RdsDatabases(databases, settings, sharing.find_cluster).install(hooks)
    engine_versions.install()
    aws_managed_keys.install()  # KMS, but only RDS snapshots care who manages a key
    hooks.install()
    return lifecycle
