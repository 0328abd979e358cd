"""The phases an AuroraRestore goes through, in order; the graph itself lives in machine.py."""

from enum import StrEnum


class Phase(StrEnum):
    """Where a restore is. Stored in status.phase; every value is part of the public API."""

    PENDING = "Pending"
    """Accepted, waiting for the target's lease (another restore may hold it)."""
    RESOLVING_SNAPSHOT = "ResolvingSnapshot"
    """Finding the source snapshot (by name, ARN or newest match) and waiting until it is available;
    for a point-in-time restore, checking the source cluster and the time."""
    PREFLIGHT = "Preflight"
    """Checking, before anything is copied or deleted, that every part of the restore can work."""
    SHARING_SNAPSHOT = "SharingSnapshot"
    """Cross-account: sharing the snapshot from the source account with the target account."""
    COPYING_SNAPSHOT = "CopyingSnapshot"
    """Copying the snapshot into the target region, re-encrypting with spec.copy.kmsKeyId."""
    REPLACING_TARGET = "ReplacingTarget"
    """The target cluster exists: refusing (policy Fail) or snapshotting and deleting it (policy Replace)."""
    RESTORING_CLUSTER = "RestoringCluster"
    """Restoring the cluster from the snapshot and waiting until it is available."""
    CREATING_INSTANCES = "CreatingInstances"
    """Creating the DB instances (the first is the writer) and waiting until they are available."""
    CONFIGURING_ACCESS = "ConfiguringAccess"
    """Setting the master password and database users (passes straight on when none are asked for)."""
    VERIFYING = "Verifying"
    """Running verification queries, then writing connection Secrets (passes on when none are asked for)."""
    CLEANING_UP = "CleaningUp"
    """Deleting what the restore created only for itself (the copied snapshot)."""
    SUCCEEDED = "Succeeded"
    """Terminal: the cluster and its instances are available."""
    FAILED = "Failed"
    """Terminal: status.failure says in which phase, why, and what to do."""
    PLANNED = "Planned"
    """Terminal: a dry run finished; status.plan says what a real run would do."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.PLANNED})
