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
    SHARING_CLUSTER = "SharingCluster"
    """Cross-account clone: sharing the source cluster with the target account through AWS RAM, and accepting
    the invitation on the target side when the accounts are not in one organization."""
    COPYING_SNAPSHOT = "CopyingSnapshot"
    """Copying the snapshot into the target region, re-encrypting with spec.copy.kmsKeyId."""
    RESTORING_CLUSTER = "RestoringCluster"
    """Restoring the cluster from the snapshot (or cloning the source cluster, spec.source.clone) and waiting
    until it is available (under a temporary identifier when an existing target is being replaced)."""
    CREATING_INSTANCES = "CreatingInstances"
    """Creating the DB instances (the first is the writer) and waiting until they are available."""
    CONFIGURING_ACCESS = "ConfiguringAccess"
    """Setting the master password and database users (passes straight on when none are asked for)."""
    MASKING = "Masking"
    """spec.masking: masking the data as the master user, one transaction per table, then rewriting the masked
    tables so no old row version stays in their pages; the database users are configured after it."""
    RUNNING_HOOKS = "RunningHooks"
    """spec.hooks.postRestore: running the SQL hooks and Job hooks in order."""
    VERIFYING = "Verifying"
    """Running verification queries (passes on when none are asked for)."""
    SNAPSHOTTING_OUTPUT = "SnapshottingOutput"
    """spec.output.snapshot: taking a manual snapshot of the verified cluster, copying it with the consumers' KMS
    key and sharing it with spec.output.snapshot.shareWith."""
    SWAPPING_TARGET = "SwappingTarget"
    """Replace only, once the new cluster is verified: renaming the existing target away, then the new cluster
    to the target identifier. Never interrupted halfway by spec.timeout or a cancel."""
    RETIRING_PREVIOUS = "RetiringPrevious"
    """Replace without keepPrevious: deleting the previous cluster's instances, then the cluster with a final
    snapshot, keeping its automated backups."""
    PUBLISHING = "Publishing"
    """Writing the connection Secrets, with the endpoints the cluster has now (after any swap)."""
    CLEANING_UP = "CleaningUp"
    """Deleting what the restore created only for itself (copies, a share grant, a RAM share, the cluster itself
    with spec.output.snapshot.deleteClusterAfter)."""
    CLEANING_UP_AFTER_FAILURE = "CleaningUpAfterFailure"
    """The restore failed: removing its copies, its share grant and a temporary cluster, then Failed."""
    CANCELLING = "Cancelling"
    """The AuroraRestore is being deleted before it finished: finishing a swap in progress, then removing what
    this restore created and did not finish; the resource then disappears."""
    SUCCEEDED = "Succeeded"
    """Terminal: the cluster and its instances are available."""
    FAILED = "Failed"
    """Terminal: status.failure says in which phase, why, and what to do."""
    PLANNED = "Planned"
    """Terminal: a dry run finished; status.plan says what a real run would do."""
    CANCELLED = "Cancelled"
    """Terminal: the AuroraRestore was deleted before it finished and what it made is removed; the resource
    disappears right after."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.PLANNED, Phase.CANCELLED})
