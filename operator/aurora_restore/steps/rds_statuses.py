"""The failure statuses of clusters and instances: what RDS means by each, the failure reason, what to do.

RDS reports these in DescribeDBClusters/DescribeDBInstances ("Viewing DB cluster status", "DB instance status"
in the Aurora user guide). None of them passes by waiting, so a restore that meets one fails with the reason
of this table and a message saying what RDS reported and what the user can do, instead of waiting until
spec.timeout. `aws/rds.py` FAILED_STATUSES lists the same statuses (a unit test keeps them equal).
"""

from dataclasses import dataclass

from ..errors import TerminalError


@dataclass(frozen=True)
class StatusFailure:
    reason: str
    #: What RDS means by the status, completing "cluster 'x' is <status>: ".
    meaning: str
    #: What to do before trying again.
    advice: str


_KEY = (
    "re-enable the KMS key (or cancel its deletion) and let RDS use it (key policy or grants for the target "
    "role and the RDS service)"
)
FAILURE_STATUSES: dict[str, StatusFailure] = {
    "inaccessible-encryption-credentials": StatusFailure(
        "EncryptionKeyInaccessible",
        "RDS cannot use the KMS key that encrypts it; this state is terminal",
        _KEY,
    ),
    "inaccessible-encryption-credentials-recoverable": StatusFailure(
        "EncryptionKeyInaccessible",
        "RDS cannot use the KMS key that encrypts it (recoverable for 7 days once the key is usable again)",
        _KEY,
    ),
    "incompatible-parameters": StatusFailure(
        "IncompatibleParameters",
        "a value of its parameter group keeps the database from starting (such as memory settings too large "
        "for the instance class)",
        "fix spec.target.dbClusterParameterGroupName or spec.target.instances.dbParameterGroupName (or the "
        "groups' values), or pick a larger spec.target.instances.instanceClass",
    ),
    "incompatible-restore": StatusFailure(
        "IncompatibleRestore",
        "RDS could not restore the data into it (the snapshot or point in time cannot be restored with these "
        "settings)",
        "check the source snapshot or time, spec.target.engineVersion and the parameter groups; AWS Support "
        "can tell the cause",
    ),
    "incompatible-network": StatusFailure(
        "IncompatibleNetwork",
        "RDS cannot set up its network: the subnet group has no free addresses or its subnets or VPC changed",
        "free addresses in (or fix) spec.target.dbSubnetGroupName's subnets and check "
        "spec.target.vpcSecurityGroupIds",
    ),
    "incompatible-option-group": StatusFailure(
        "IncompatibleOptionGroup",
        "its option group cannot be applied",
        "use an option group that suits the engine version",
    ),
    "insufficient-capacity": StatusFailure(
        "InsufficientCapacity",
        "AWS has no capacity for the instance class in this availability zone now",
        "try again later, or with another spec.target.instances.instanceClass or availability zone",
    ),
    "storage-full": StatusFailure(
        "StorageFull",
        "its storage is full",
        "look at what filled the storage; AWS Support can tell the cause",
    ),
    "restore-error": StatusFailure(
        "RestoreError",
        "an error happened while restoring it",
        "check the source snapshot or time; AWS Support can tell the cause",
    ),
    "cloning-failed": StatusFailure(
        "CloneFailed",
        "cloning the source cluster failed",
        "check the source cluster and try again",
    ),
    "migration-failed": StatusFailure(
        "MigrationFailed",
        "restoring the data into it failed",
        "check the source snapshot and try again",
    ),
    "failed": StatusFailure(
        "{Kind}Failed",  # ClusterFailed, InstanceFailed
        "RDS reports it as failed and cannot recover it",
        "look at the RDS events of the {kind} for the cause",
    ),
}


def status_failure(kind: str, identifier: str, status: str, left: str, key: str | None = None) -> TerminalError:
    """The TerminalError for a `kind` ("cluster" or "instance") that reached a failure status of the table.

    `left` says what happens to the broken object (left for inspection, or removed by the cleanup), so the user
    knows what to delete before a new restore; `key` names the cluster's KMS key for the encryption statuses.
    """
    failure = FAILURE_STATUSES.get(status) or StatusFailure(
        "{Kind}Failed", "RDS reports a failure status", "look at the RDS events of the {kind} for the cause"
    )
    reason = failure.reason.format(Kind=kind.capitalize(), kind=kind)
    meaning = failure.meaning
    if key and failure.reason == "EncryptionKeyInaccessible":
        meaning = f"{meaning} (key {key})"
    advice = failure.advice.format(Kind=kind.capitalize(), kind=kind)
    return TerminalError(
        reason,
        f"RDS reports {kind} {identifier!r} as {status}: {meaning}. What to do: {advice}; {left}, then create a "
        f"new AuroraRestore",
    )
