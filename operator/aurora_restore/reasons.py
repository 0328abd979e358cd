"""Every CamelCase reason the operator emits, what it means and what the user does about it.

Plain data: the code that raises errors does not import it. tests/unit/test_reasons.py scans the package's source
and fails when a reason is emitted but missing here, or listed here but emitted nowhere; docs/troubleshooting.md
is this table rendered (`aurora-restore reasons --markdown`, troubleshooting.py), kept equal by the same test.
"""

from dataclasses import dataclass

# What a reason is.
FAILURE = "failure"  # the restore fails (status.failure.reason, then CleaningUpAfterFailure and Failed), or a schedule
PREFLIGHT = "preflight"  # a failed check of status.preflight (with one problem, also the failure reason)
RETRY = "retry"  # retried with backoff until spec.timeout; the restore does not fail
EVENT = "event"  # an Event (and condition) reason of a transition or an action; nothing failed
KINDS = (FAILURE, PREFLIGHT, RETRY, EVENT)

# Where a reason shows.
STATUS_FAILURE = "status.failure.reason"
STATUS_PREFLIGHT = "status.preflight[].reason"
STATUS_MESSAGE = "status.message"  # a retry's reason is not in status, its message is (while it waits)
EVENT_REASON = "Event reason"
CONDITION_REASON = "status.conditions[].reason"
FINISHED_METRIC = "aurora_restore_finished_total{reason}"
RETRIES_METRIC = "aurora_restore_retries_total{reason}"
SCHEDULE_EVENT = "AuroraRestoreSchedule Event reason"
SCHEDULE_CONDITION = "AuroraRestoreSchedule status.conditions[].reason"
PLACES = (STATUS_FAILURE, STATUS_PREFLIGHT, STATUS_MESSAGE, EVENT_REASON, CONDITION_REASON, FINISHED_METRIC,
          RETRIES_METRIC, SCHEDULE_EVENT, SCHEDULE_CONDITION)

# A failure is recorded in status.failure and on the Warning Event of the move to CleaningUpAfterFailure and
# Failed, in the conditions, and in the finished counter.
FAILED = (STATUS_FAILURE, EVENT_REASON, CONDITION_REASON, FINISHED_METRIC)
# A preflight problem is a check in status.preflight; alone, it is also the failure's reason.
CHECK = (STATUS_PREFLIGHT, *FAILED)
RETRIED = (STATUS_MESSAGE, RETRIES_METRIC)
TRANSITION = (EVENT_REASON, CONDITION_REASON)
FINISHED = (*TRANSITION, FINISHED_METRIC)

# The entry for AWS error codes that have no entry of their own (they are passed on as the reason).
OTHER_AWS_CODE = "<AWS error code>"


@dataclass(frozen=True)
class Reason:
    kind: str
    #: One sentence: what happened.
    meaning: str
    #: What the user does.
    fix: str
    #: Where it shows (PLACES).
    appears: tuple[str, ...]
    #: An AWS error code that aws/errors.py passes on as the reason, not a literal of the operator's code.
    from_aws: bool = False


def _aws(meaning: str, fix: str) -> Reason:
    return Reason(FAILURE, meaning, fix, FAILED, from_aws=True)


_RDS_STATUS = ("RDS reports the restored cluster or an instance with a failure status (steps/rds_statuses.py); "
               "none passes by waiting, so the phase that sees it fails")
_NEW_RESTORE = "then create a new AuroraRestore (the spec is immutable)"
_STUCK = "if it stays here long, see the runbook's stuck restore procedure"

REASONS: dict[str, Reason] = {
    # --- failures: the restore cannot succeed --------------------------------------------------------------------
    "InvalidSpec": Reason(
        FAILURE, "The spec passed the CRD but not the operator's own validation, which is stricter in places "
        "(for example a timeout of 0s); for an AuroraRestoreSchedule, an invalid field other than schedule, "
        "timeZone, windows and template (those have reasons of their own).", "Fix the fields the message names, "
        "then create a new AuroraRestore (its spec is immutable), or edit the AuroraRestoreSchedule.",
        (*FAILED, SCHEDULE_CONDITION, SCHEDULE_EVENT)),
    "Timeout": Reason(
        FAILURE, "spec.timeout passed before the restore finished; the message names the phase and its last "
        "message (often the error being retried).", "Fix what the message says, or give a longer spec.timeout, "
        f"{_NEW_RESTORE}.", FAILED),
    "NotAllowedByPolicy": Reason(
        FAILURE, "No AuroraRestorePolicy covering the namespace allows the restore (checked in Pending, Preflight, "
        "before the first rename of a swap and before deleting a replaced cluster); the message names the field, "
        "its value and what each policy says.", "Change the spec to what a policy allows, or ask a cluster admin "
        "to change a policy (docs/security.md); a previous cluster kept this way is yours to delete.", FAILED),
    "SnapshotNotFound": Reason(
        FAILURE, "The source snapshot does not exist in spec.source.region (or the pinned one was deleted).",
        "Fix the snapshot name, region, account or source role.", FAILED),
    "NoMatchingSnapshot": Reason(
        FAILURE, "No snapshot of the source cluster passes the spec.source.latest filters.",
        "Relax the filters (maxAge, tags, type) or check the cluster name.", FAILED),
    "SnapshotFailed": Reason(
        FAILURE, "The source snapshot's status is failed or error.", "Use another snapshot.", FAILED),
    "SourceClusterNotFound": Reason(
        FAILURE, "spec.source.pointInTime.clusterIdentifier, or spec.source.clone.clusterIdentifier, does not exist "
        "in the source region (of source.accountId, seen by the source role); a clone's source that disappears "
        "before Preflight is also a preflight check.", "Fix the cluster name, region or account.", CHECK),
    "CloneSourceNotAvailable": Reason(
        PREFLIGHT, "spec.source.clone: the source cluster is not available (stopped, or in a failure status); only "
        "an available cluster can be cloned. A passing state (backing-up, modifying) is waited for instead.",
        "Start the cluster, or wait until it is available, then create a new AuroraRestore.", CHECK),
    "CloneSourceHasNoInstance": Reason(
        PREFLIGHT, "spec.source.clone: the source cluster has no DB instance; AWS clones only a cluster with at "
        "least one.", "Add an instance to the source cluster, or restore one of its snapshots.", CHECK),
    "CloneRegionMismatch": Reason(
        PREFLIGHT, "spec.source.clone with spec.target.region other than the source's: a clone is made in its "
        "source cluster's region.", "Leave spec.target.region unset, or restore a snapshot to cross regions.", CHECK),
    "CloneServerlessCrossAccount": Reason(
        PREFLIGHT, "spec.source.clone from another account of an Aurora Serverless v1 cluster (EngineMode "
        "serverless), which AWS does not clone across accounts.", "Restore a snapshot of it instead.", CHECK),
    "CloneKeyNotVisible": Reason(
        PREFLIGHT, "spec.source.clone from another account: the source role cannot describe the KMS key of the "
        "encrypted source cluster, so the operator cannot tell whether it can be shared.",
        "Grant the source role kms:DescribeKey on the key.", CHECK),
    "CloneKeyNotShareable": Reason(
        PREFLIGHT, "spec.source.clone from another account: the source cluster is encrypted with the AWS-managed "
        "key (aws/rds), which AWS does not let anyone share.", "Clone within the source account, or restore a "
        "snapshot copied with a customer-managed key whose policy allows the target account.", CHECK),
    "CloneSourceIsCrossAccountClone": Reason(
        PREFLIGHT, "spec.source.clone names a cluster that is itself a cross-account clone (CrossAccountClone): "
        "AWS neither clones it again nor shares it with another account.", "Clone the original cluster (from its "
        "owner's account), or restore a snapshot of this one.", CHECK),
    "CloneLimitReached": Reason(
        PREFLIGHT, "spec.source.clone: an AWS limit stops the clone: the target account's DBClusters quota is "
        "used up; across accounts AWS allows one clone of a source per account (so a Replace of an earlier "
        "cross-account clone of the same source cannot build the new clone beside it) and 15 per source (not "
        "visible to Preflight: AWS refuses it when the clone is made, in RestoringCluster).",
        "Delete the earlier clone or an unused cluster (or ask for a higher quota; the accounts holding the "
        "source's other clones must delete one of theirs), then create a new AuroraRestore; or restore a snapshot "
        "instead.", CHECK),
    "ClusterShareFailed": Reason(
        FAILURE, "SharingCluster: AWS RAM reports the share of the source cluster, or its association with the "
        "target account or the cluster, FAILED (the message gives RAM's statusMessage), or the invitation to the "
        "share was rejected or expired.",
        "Check that the source account may share the cluster through RAM (and allows external principals when "
        "the accounts are not in one organization); the share is deleted on the way out.", FAILED),
    "RestoreTimeOutOfRange": Reason(
        FAILURE, "spec.source.pointInTime.restoreTime is outside the cluster's restorable window (the message "
        "gives it) or in the future.", "Pick a time inside the window.", FAILED),
    "PreflightFailed": Reason(
        FAILURE, "Preflight found more than one problem; the message lists each with its field, status.preflight "
        "keeps each check with its own reason.", "Fix them all (each check's reason has its entry here).", FAILED),
    "ShareNameTaken": Reason(
        FAILURE, "The manual copy aurora-restore-<uid>-share needed to share an automated snapshot exists in the "
        "source account without this restore's UID tag.", "Rename or delete that snapshot yourself.", FAILED),
    "ShareCopyFailed": Reason(
        FAILURE, "AWS reports the manual copy made to share an automated snapshot as failed.",
        f"Look at the copy in the source account, {_NEW_RESTORE}.", FAILED),
    "CopyNameTaken": Reason(
        FAILURE, "A snapshot named like the restore's copy (aurora-restore-<uid>[-stage]) exists without this "
        "restore's UID tag.", "Rename or delete that snapshot yourself.", FAILED),
    "CopyFailed": Reason(
        FAILURE, "AWS reports the snapshot copy as failed (often a KMS key the target account may not use).",
        "Check the copy's KMS key policy and grants (runbook: KMS denied), then create a new AuroraRestore.",
        FAILED),
    "TargetTaken": Reason(
        FAILURE, "Someone else created a cluster at the target identifier while the restore was running; it is "
        "left untouched.", "Find out who made it; remove it or choose another target.", FAILED),
    "InstanceNameTaken": Reason(
        PREFLIGHT, "A DB instance with a name the restore needs (<target>-N, or <target>-<uid8>-N for a Replace) "
        "exists without this restore's UID tag.", "Rename or delete that instance yourself.", CHECK),
    "InvalidInstanceClass": Reason(
        FAILURE, "AWS refused spec.target.instances.instanceClass.",
        "Pick a class offered for the engine, version and region.", FAILED),
    "ClusterNotFound": Reason(
        FAILURE, "The restored cluster disappeared while the restore was still working on it.",
        "Find out who deleted it (CloudTrail), then create a new AuroraRestore.", FAILED),
    "TargetChanged": Reason(
        FAILURE, "The cluster at the target identifier is no longer the one Preflight found (its resource id "
        "differs); nothing was renamed.", "Find out who replaced it, then create a new AuroraRestore.", FAILED),
    "PreviousChanged": Reason(
        FAILURE, "The renamed-away previous cluster is no longer the one this restore renamed (its resource id "
        "differs); it is left untouched.", "Find out who replaced it; delete the previous cluster yourself when "
        "you no longer need it.", FAILED),
    "MasterPasswordRequired": Reason(
        FAILURE, "Database access (users, verification, connection Secret) is asked for without "
        "spec.masterPassword (the CRD normally refuses this).", f"Add spec.masterPassword, {_NEW_RESTORE}.",
        FAILED),
    "InvalidMasterPassword": Reason(
        FAILURE, "The master password from the Secret or Secrets Manager breaks RDS's rules (8 to 41 printable "
        "ASCII characters, no /, \", @ or space); the message names the field and the rule, never the password.",
        f"Put a valid password in the Secret, {_NEW_RESTORE}.", FAILED),
    "SecretKeyMissing": Reason(
        FAILURE, "A Secret named by the spec exists but lacks the key.",
        "Add the key to the Secret (the message names the Secret and the key).", FAILED),
    "SecretKeyEmpty": Reason(
        FAILURE, "A Secret's key named by the spec is empty.", "Put the value in the Secret.", FAILED),
    "SecretMalformed": Reason(
        FAILURE, "A Secret's value is not UTF-8 text, or a Secrets Manager secret is empty or a JSON object "
        "without a \"password\" string.", "Fix the secret (the message names it, never the value).", FAILED),
    "DatabaseRequired": Reason(
        FAILURE, "A user has no spec.users[].databases and the cluster has no default database.",
        "Set spec.users[].databases.", FAILED),
    "DatabaseNotFound": Reason(
        FAILURE, "A database named in spec.users[].databases or spec.verification.database does not exist.",
        "Fix the name.", FAILED),
    "HookFailed": Reason(
        FAILURE, "A post-restore hook (spec.hooks.postRestore[i], named in the message) failed or timed out: with "
        "onFailure Fail the restore fails and the later hooks do not run; with onFailure Continue it is only a "
        "Warning Event and status.hooks[] says why.", "Look at status.hooks[] (the statement or the Job at fault) "
        "and docs/hooks.md; fix the hook or its timeout.", FAILED),
    "InvalidHookJob": Reason(
        FAILURE, "The pod template of a Job hook has no spec.containers, or the apiserver refused the Job made from "
        "it.", "Fix spec.hooks.postRestore[i].job.template (docs/hooks.md).", FAILED),
    "HookResourceNotOurs": Reason(
        FAILURE, "A Job or Secret with the name of a Job hook's exists and was not made by this restore for it; it "
        "is left untouched.", "Delete or rename that object, or the AuroraRestore.", FAILED),
    "ConfigMapKeyMissing": Reason(
        FAILURE, "The ConfigMap of spec.hooks.postRestore[i].configMapRef exists but lacks the key, or the key is "
        "empty (a ConfigMap that does not exist yet is waited for).", "Add the key with the hook's SQL.", FAILED),
    "DatabaseRefused": Reason(
        FAILURE, "The database refused a statement in a way no retry changes (a name or password it rejects, a "
        "privilege the master user lacks); the message names the field, never the password.",
        "Fix the field, or the master user's privileges.", FAILED),
    "MaskingRuleInvalid": Reason(
        FAILURE, "A spec.masking rule names a table or column that does not exist, has a `where` the database "
        "will not plan (EXPLAIN), or a hash, email or fakeName rule a column that is not text or too short for "
        "what it writes; checked before any change, so no row "
        "was changed.", "Fix the rules (the message lists every problem).", FAILED),
    "MaskingKeyInvalid": Reason(
        FAILURE, "The hash key of spec.masking.hashKeySecretRef is shorter than 16 bytes.",
        "Put a longer random key in the Secret (the message never shows it).", FAILED),
    "MaskingKeyChanged": Reason(
        FAILURE, "The hash key of spec.masking.hashKeySecretRef changed while the tables were being masked "
        "(status.masking.keyFingerprint no longer matches), so the tables' hashes would not join.",
        "Put the earlier key back in the Secret, or restore afresh with the new key.", FAILED),
    "MaskingKeyWouldBeLogged": Reason(
        FAILURE, "On MySQL, a server log (general_log without permission to set sql_log_off, slow_query_log with "
        "long_query_time 0, Advanced Auditing with QUERY events, or the binary log in STATEMENT or MIXED format) "
        "would record the statement carrying the hash key, or the key itself, so the key was not sent.",
        "Turn that log off in the cluster parameter group (or let the master user set sql_log_off), or use "
        "strategies without the key.", FAILED),
    "MaskingFailed": Reason(
        FAILURE, "The database refused a masking statement for good (a constant the column cannot take, a truncate of rows other tables reference); that table's transaction was rolled "
        "back.", "Fix the rule the message names; tables masked before it stay masked.", FAILED),
    "DatabaseTlsError": Reason(
        FAILURE, "The TLS set-up for a database connection failed (for example an unreadable CA bundle).",
        "Fix AURORA_RESTORE_DB_CA_BUNDLE in the operator's settings.", FAILED),
    "UnsupportedEngine": Reason(
        FAILURE, "Database access works only for aurora-postgresql and aurora-mysql.",
        "Drop the database access fields (users, verification, connectionSecret).", FAILED),
    "VerificationFailed": Reason(
        FAILURE, "A verification query failed, or returned another number of rows than expectRows.",
        "Look at the query named (spec.verification.queries[i]) and at the data.", FAILED),
    "VerificationQueryRefused": Reason(
        FAILURE, "The database refused a verification query: several statements, a write in the read-only "
        "transaction, or anything the read-only verification user may not do.",
        "Make spec.verification.queries[i] one read-only statement (docs/database-access.md).", FAILED),
    "VerificationTimedOut": Reason(
        FAILURE, "A verification query ran longer than spec.verification.timeout.",
        "Make the query cheaper, or raise spec.verification.timeout.", FAILED),
    "SecretNotOurs": Reason(
        PREFLIGHT, "A Secret with the connection Secret's name exists and the operator did not write it (it is "
        "left untouched).", "Choose another name, or delete that Secret.", CHECK),
    "ConnectionSecretTaken": Reason(
        PREFLIGHT, "The connection Secret belongs to another AuroraRestore (named in the message) that has not "
        "finished, or finished with another target.", "Choose another name, or delete that AuroraRestore to hand "
        "the Secret over.", CHECK),
    "QuotaExceeded": Reason(
        FAILURE, "AWS refused a call because a quota of the account and region is used up (every RDS "
        "*QuotaExceeded* fault, such as SnapshotQuotaExceeded, SharedSnapshotQuotaExceeded, "
        "DBClusterQuotaExceededFault, InstanceQuotaExceeded, StorageQuotaExceeded); quotas do not free "
        "themselves, so the restore fails at once.", "Delete what uses the quota (old manual snapshots, unused "
        "clusters) or ask AWS for a higher limit (Service Quotas), then create a new AuroraRestore.", FAILED),
    "AwsError": Reason(
        FAILURE, "botocore refused to send a request (ParamValidationError: a bug of the operator) or is "
        "configured wrongly (no region, partial credentials).", "Check the operator's AWS configuration; report "
        "a ParamValidationError as a bug.", FAILED),
    # --- failures from the status RDS reports (steps/rds_statuses.py) ----------------------------------------------
    "EncryptionKeyInaccessible": Reason(
        FAILURE, f"{_RDS_STATUS}: inaccessible-encryption-credentials[-recoverable], RDS cannot use the KMS key "
        "(named in the message).", "Re-enable the key (or cancel its deletion) and let RDS use it (key policy, "
        "grants; runbook: KMS denied), then create a new AuroraRestore.", FAILED),
    "IncompatibleParameters": Reason(
        FAILURE, f"{_RDS_STATUS}: incompatible-parameters, a parameter group value keeps the database from "
        "starting.", "Fix the parameter groups (or their values), or pick a larger instance class.", FAILED),
    "IncompatibleRestore": Reason(
        FAILURE, f"{_RDS_STATUS}: incompatible-restore, RDS could not restore the data with these settings.",
        "Check the snapshot or time, spec.target.engineVersion and the parameter groups; AWS Support can tell "
        "the cause.", FAILED),
    "RestoreError": Reason(
        FAILURE, f"{_RDS_STATUS}: restore-error.", "Check the source snapshot or time; AWS Support can tell the "
        "cause.", FAILED),
    "MigrationFailed": Reason(
        FAILURE, f"{_RDS_STATUS}: migration-failed.", "Check the source snapshot and try again.", FAILED),
    "CloneFailed": Reason(
        FAILURE, f"{_RDS_STATUS}: cloning-failed.", "Check the source cluster and try again.", FAILED),
    "IncompatibleNetwork": Reason(
        FAILURE, f"{_RDS_STATUS}: incompatible-network, the subnet group has no free addresses or its subnets "
        "or VPC changed.", "Free addresses in (or fix) spec.target.dbSubnetGroupName's subnets; check "
        "spec.target.vpcSecurityGroupIds.", FAILED),
    "IncompatibleOptionGroup": Reason(
        FAILURE, f"{_RDS_STATUS}: incompatible-option-group.", "Use an option group that suits the engine "
        "version.", FAILED),
    "InsufficientCapacity": Reason(
        FAILURE, f"{_RDS_STATUS}: insufficient-capacity, AWS has no capacity for the instance class in the zone "
        "now.", "Try later, or another instance class or zone.", FAILED),
    "StorageFull": Reason(
        FAILURE, f"{_RDS_STATUS}: storage-full.", "Find what filled the storage; AWS Support can tell the cause.",
        FAILED),
    "ClusterFailed": Reason(
        FAILURE, f"{_RDS_STATUS}: the cluster is failed (or in a failure status the table does not know).",
        "Look at the RDS events of the cluster (aws rds describe-events).", FAILED),
    "InstanceFailed": Reason(
        FAILURE, f"{_RDS_STATUS}: an instance is failed (or in a failure status the table does not know).",
        "Look at the RDS events of the instance (aws rds describe-events).", FAILED),
    # --- an AuroraRestoreSchedule whose spec does not validate: it creates no runs until it is fixed ---------------
    "InvalidCron": Reason(
        FAILURE, "spec.schedule is not a five-field cron expression.", "Fix spec.schedule (the message says why).",
        (SCHEDULE_CONDITION, SCHEDULE_EVENT)),
    "InvalidTimeZone": Reason(
        FAILURE, "spec.timeZone is not an IANA time zone.", "Use a name such as Europe/Berlin or UTC.",
        (SCHEDULE_CONDITION, SCHEDULE_EVENT)),
    "InvalidWindow": Reason(
        FAILURE, "An entry of spec.windows cannot be parsed.", "Fix the window (docs/schedules.md).",
        (SCHEDULE_CONDITION, SCHEDULE_EVENT)),
    "InvalidTemplate": Reason(
        FAILURE, "spec.template would make runs whose spec is not a valid AuroraRestore spec (the message names "
        "the template's field).", "Fix the template's field.", (SCHEDULE_CONDITION, SCHEDULE_EVENT)),
    # --- preflight checks (status.preflight; with a single problem also the failure reason) -----------------------
    "InvalidEngineVersion": Reason(
        PREFLIGHT, "The snapshot cannot be restored to spec.target.engineVersion (found by Preflight, or refused "
        "by AWS when restoring).", "Use a version the message lists, or leave engineVersion unset.", CHECK),
    "KmsKeyRequired": Reason(
        PREFLIGHT, "An encrypted snapshot is copied and the copy's KMS key (spec.copy.kmsKeyId or "
        "spec.copy.sourceRegionKmsKeyId) is missing.", "Give a KMS key of the copy's region.", CHECK),
    "KmsKeyNotUsable": Reason(
        PREFLIGHT, "A KMS key does not exist in its region, or AWS refused to use it for the copy.",
        "Fix the key id or alias, or its key policy and grants (runbook: KMS denied).", CHECK),
    "SnapshotKeyNotVisible": Reason(
        PREFLIGHT, "The source role cannot describe the KMS key of the snapshot to share.",
        "Grant the source role kms:DescribeKey on that key (docs/cross-account.md).", CHECK),
    "InvalidOutputSnapshotIdentifier": Reason(
        PREFLIGHT, "spec.output.snapshot.identifier with {date}/{time} filled in is no valid snapshot identifier "
        "(1-63 letters, digits or hyphens, a letter first, no trailing or double hyphen).",
        "Shorten or fix the identifier.", CHECK),
    "OutputSnapshotTaken": Reason(
        PREFLIGHT, "A snapshot with the output snapshot's identifier (or its intermediate aurora-restore-<uid>-output) "
        "exists without this restore's UID tag; it is left untouched.",
        "Choose another spec.output.snapshot.identifier (e.g. with {date}) or delete that snapshot.", CHECK),
    "OutputSnapshotKeyNotShareable": Reason(
        PREFLIGHT, "The output snapshot would be encrypted with the AWS-managed key aws/rds (spec.output.snapshot."
        "kmsKeyId, or the cluster's key when it is unset), which AWS does not let anyone share.",
        "Set spec.output.snapshot.kmsKeyId to a customer-managed key whose key policy allows the shareWith "
        "accounts.", CHECK),
    "OutputSnapshotNotEncrypted": Reason(
        PREFLIGHT, "spec.output.snapshot.kmsKeyId is given for an unencrypted cluster: AWS cannot encrypt a "
        "snapshot by copying it.", "Set spec.target.kmsKeyId (the cluster is then encrypted), or leave "
        "spec.output.snapshot.kmsKeyId unset.", CHECK),
    "DeletionPolicyProtected": Reason(
        PREFLIGHT, "spec.deletionPolicy Delete with spec.target.deletionProtection: the cluster could never be deleted "
        "with the AuroraRestore.", "Turn one of them off.", CHECK),
    "DeletionProtected": Reason(
        FAILURE, "A cluster the operator was to delete has deletion protection on (turned on by someone after the "
        "restore made it, or on the previous cluster of a Replace after Preflight): it is left as it is (its "
        "instances too, when the describe before them showed it). CleaningUp with "
        "output.snapshot.deleteClusterAfter fails the restore; a cancel waits (status.message); a cleanup after a "
        "failure stops there; a Replace leaves the previous cluster (status.replacedCluster.retirementError) and "
        "still succeeds.",
        "Turn deletion protection off if the cluster should go (the operator then deletes it), or delete it "
        "yourself; the operator never turns it off.", (*FAILED, *RETRIED)),
    "OutputClusterProtected": Reason(
        PREFLIGHT, "spec.output.snapshot.deleteClusterAfter with spec.target.deletionProtection: the cluster could "
        "never be deleted.", "Turn one of them off.", CHECK),
    "OutputSnapshotFailed": Reason(
        FAILURE, "AWS reports the output snapshot (or its intermediate) as failed.",
        "Look at the cluster and the KMS key in the RDS console; create a new AuroraRestore.", FAILED),
    "OutputSnapshotNotShareable": Reason(
        FAILURE, "AWS refused to share the output snapshot with an account of spec.output.snapshot.shareWith "
        "(e.g. it is encrypted with the AWS-managed key aws/rds).", "Set spec.output.snapshot.kmsKeyId to a "
        "customer-managed key whose key policy allows those accounts.", FAILED),
    "SnapshotKeyNotShareable": Reason(
        PREFLIGHT, "The snapshot to share is encrypted with the AWS-managed key, which AWS does not let anyone "
        "share.", "Copy it with a customer-managed key whose policy allows the target account, and restore that "
        "copy.", CHECK),
    "SubnetGroupNotFound": Reason(
        PREFLIGHT, "spec.target.dbSubnetGroupName does not exist in the target region.", "Fix the name or "
        "region.", CHECK),
    "ClusterParameterGroupNotFound": Reason(
        PREFLIGHT, "spec.target.dbClusterParameterGroupName does not exist in the target region.",
        "Fix the name or region.", CHECK),
    "ParameterGroupNotFound": Reason(
        PREFLIGHT, "spec.target.instances.dbParameterGroupName does not exist in the target region.",
        "Fix the name or region.", CHECK),
    "SecurityGroupNotFound": Reason(
        PREFLIGHT, "A group of spec.target.vpcSecurityGroupIds does not exist in the target region.",
        "Fix the ids or region.", CHECK),
    "InvalidUserName": Reason(
        PREFLIGHT, "A spec.users[].name is longer than the engine allows (MySQL: 32 characters), or is the "
        "operator's verification user.", "Choose another name.", CHECK),
    "TooManyTags": Reason(
        PREFLIGHT, "spec.target.tags with the operator's default tags and its own would exceed AWS's 50 tags per "
        "resource.", "Drop tags.", CHECK),
    "TargetExists": Reason(
        PREFLIGHT, "The target cluster exists and spec.existingTarget.policy is Fail; nothing was changed.",
        "Set spec.existingTarget.policy to Replace, or choose another target.", CHECK),
    "SourceIsTarget": Reason(
        PREFLIGHT, "The source cluster is the target (same account and region) and the policy is Fail.",
        "Use Replace (restore, verify, then swap) or another target.", CHECK),
    "DrillClusterTaken": Reason(
        PREFLIGHT, "A drill's cluster identifier is taken by a cluster the drill did not make; a drill never "
        "touches an existing cluster.", "Remove that cluster, or give the drill another target "
        "(docs/drills.md).", CHECK),
    "TargetDeletionProtected": Reason(
        PREFLIGHT, "The target a Replace would replace has deletion protection: it could be renamed but never "
        "deleted.", "Turn deletion protection off, or use keepPrevious and delete it yourself.", CHECK),
    "TargetInGlobalDatabase": Reason(
        PREFLIGHT, "The target a Replace would replace is a member of a global database, which cannot be renamed "
        "away.", "Remove it from the global database first.", CHECK),
    "ClusterNameTaken": Reason(
        PREFLIGHT, "A name a Replace needs (<target>-previous-<uid8> or <target>-restore-<uid8>) is taken by a "
        "cluster the restore did not make.", "Rename or delete that cluster.", CHECK),
    "SnapshotNameTaken": Reason(
        PREFLIGHT, "The final snapshot name of the replaced cluster (<target>-final-<uid8>) is taken.",
        "Rename or delete that snapshot, or set spec.existingTarget.finalSnapshot to false.", CHECK),
    "InvalidName": Reason(
        PREFLIGHT, "A name the operator derives breaks RDS's rules (should not happen: names are shortened to "
        "fit).", "Report it as a bug, with the target identifier.", CHECK),
    # --- retried: the restore waits and tries again until spec.timeout ----------------------------------------------
    "AwsThrottling": Reason(
        RETRY, "AWS throttled a call.", "Nothing, unless it lasts: then spread restores out or ask for higher API "
        "limits.", RETRIED),
    "AwsServerError": Reason(
        RETRY, "AWS answered with a 5xx, or with an answer that could not be parsed.", "Nothing, unless it "
        "lasts: check the AWS Health Dashboard.", RETRIED),
    "AwsUnreachable": Reason(
        RETRY, "No answer from AWS: connection refused or closed, connect or read timeout.", "Check the "
        "operator's egress (NetworkPolicy egressCidrs, VPC endpoints, proxy) if it lasts.", RETRIED),
    "AwsCredentialsUnavailable": Reason(
        RETRY, "The operator's AWS credentials could not be fetched or refreshed (an STS blip, an IRSA token "
        "being rotated, no credentials at all).", "Fix the operator's credentials (aws.roleArn, the IRSA "
        "annotation); restores resume by themselves.", RETRIED),
    "AwsCredentialsExpired": Reason(
        RETRY, "The credentials expired between botocore's refresh and AWS's check.", "Nothing; if it lasts, "
        "check the node's clock.", RETRIED),
    "AwsResourceBusy": Reason(
        RETRY, "A resource is in a transitional state (Invalid*StateFault: modifying, backing up).",
        "Nothing: the same call works once it settles.", RETRIED),
    "TargetAppeared": Reason(
        RETRY, "The target cluster appeared between the describe and the restore call (often our own restore "
        "whose answer was lost); the next pass looks at its UID tag.", "Nothing.", RETRIED),
    "InstanceAppeared": Reason(
        RETRY, "An instance appeared between the describe and the create call (often our own create whose answer "
        "was lost); the next pass looks at its UID tag.", "Nothing.", RETRIED),
    "CopyAppeared": Reason(
        RETRY, "A snapshot copy appeared between the describe and the copy call; the next pass looks at its UID "
        "tag.", "Nothing.", RETRIED),
    "OutputSnapshotAppeared": Reason(
        RETRY, "The output snapshot (or its intermediate) appeared between the describe and the create or copy "
        "call; the next pass looks at its UID tag.", "Nothing.", RETRIED),
    "ClusterNotAvailable": Reason(
        RETRY, "The restored cluster is not available (modifying, backing up) when the output snapshot is to be "
        "taken; AWS snapshots only an available cluster.", "Nothing; it is taken once the cluster settles.",
        RETRIED),
    "RenamePending": Reason(
        RETRY, "AWS has not finished a rename of the swap yet.", "Nothing: the swap waits for it.", RETRIED),
    "ShareBeingRemoved": Reason(
        RETRY, "Another restore is removing the share of the same snapshot; this one shares it again afterwards.",
        "Nothing.", RETRIED),
    "ShareLeaseRace": Reason(
        RETRY, "Another restore changed the share Lease of the same snapshot at the same time.", "Nothing.",
        RETRIED),
    "ConnectionSecretChanged": Reason(
        RETRY, "A connection Secret was written by another restore while this one was writing it; it decides "
        "again.", "Nothing; if it lasts, two restores want the same Secret: give them different names.",
        RETRIED),
    "KubernetesError": Reason(
        RETRY, "The Kubernetes API refused or failed to list AuroraRestorePolicies or read the namespace.",
        "Check the apiserver and the operator's RBAC if it lasts.", RETRIED),
    "DatabaseUnreachable": Reason(
        RETRY, "The restored database does not accept connections (yet).", "Check security groups, the "
        "operator's NetworkPolicy and the database's status if it lasts (docs/database-access.md).", RETRIED),
    "DatabaseCertificateUnverified": Reason(
        RETRY, "The database's TLS certificate does not verify against the operator's CA bundle.",
        "Fix AURORA_RESTORE_DB_CA_BUNDLE; restores resume by themselves.", RETRIED),
    "DatabaseAuthenticationFailed": Reason(
        RETRY, "The database refused the credentials (a new master password not applied yet).", "Nothing, unless "
        "it lasts: check the master password's source.", RETRIED),
    "DatabaseError": Reason(
        RETRY, "An SQL error that may pass (a lost connection, a deadlock, a statement timeout).", "Nothing, "
        "unless it lasts: look at the database's logs.", RETRIED),
    "Unknown": Reason(
        RETRY, "A retried error without a reason of its own (the metric's fallback label).", "Look at the "
        "operator's logs for the restore's uid.", (RETRIES_METRIC,)),
    # --- events: transitions and actions ---------------------------------------------------------------------------
    "Accepted": Reason(
        EVENT, "The operator accepted a new AuroraRestore (status.startedAt set; spec.timeout counts from here).",
        "Nothing.", TRANSITION),
    "CleanupSkipped": Reason(
        EVENT, "The AuroraRestore was deleted with the annotation dbrestore.io/skip-cleanup: \"true\": the "
        "operator let go at once and left AWS as it was (Warning).", "Remove what the restore made yourself: "
        "everything carries the tag dbrestore.io/restore-uid (runbook: cancel).", (EVENT_REASON,)),
    "TtlDeletionHeld": Reason(
        EVENT, "spec.ttlSecondsAfterFinished expired, but the restore failed for good to delete a drill's cluster "
        "(status.drill.cleanupError) or a kept previous cluster (status.replacedCluster.retirementError): the "
        "AuroraRestore is kept as the only record of it (Warning; status.message names it).",
        "Delete the cluster yourself, then the AuroraRestore; or fix the cause (often an IAM policy refusing the "
        "deletion) and delete the AuroraRestore: a drill's teardown is tried again then, and the deletion waits "
        "until the cluster is gone (docs/drills.md).", (EVENT_REASON,)),
    "NotificationFailed": Reason(
        EVENT, "A notification of spec.notification (SNS or webhook) was not delivered after its last attempt, or "
        "its destination was refused (Warning; status.notifications says why). The restore is not affected.",
        "Fix the topic, its permissions (sns:Publish for the target side), the webhook Secret or the receiver; "
        "allow the destination in an AuroraRestorePolicy (snsTopics, webhookHosts); see docs/notifications.md.",
        (EVENT_REASON,)),
    "ObjectiveMissed": Reason(
        EVENT, "A drill succeeded but missed its rtoObjective or rpoObjective (Warning; the condition ObjectiveMet "
        "is False with reason RtoObjectiveMissed or RpoObjectiveMissed, status.drill has the measures).",
        "Find what took long (status.drill.leaseWaitSeconds, status.history) or why the snapshot was old "
        "(docs/drills.md).", (EVENT_REASON,)),
    "ObjectiveMet": Reason(
        EVENT, "A drill met every objective it was given (condition ObjectiveMet True).", "Nothing.",
        (CONDITION_REASON,)),
    "RtoObjectiveMissed": Reason(
        EVENT, "A drill took longer than spec.drill.rtoObjective, or its RTO could not be measured (condition "
        "ObjectiveMet False).", "Find the slow phase in status.history, or the wait for the target's Lease "
        "(status.drill.leaseWaitSeconds); see docs/drills.md.", (CONDITION_REASON,)),
    "RpoObjectiveMissed": Reason(
        EVENT, "A drill's data was older than spec.drill.rpoObjective, or its RPO could not be measured (condition "
        "ObjectiveMet False).", "Take snapshots more often, or pick a newer one (spec.source.latest); see "
        "docs/drills.md.", (CONDITION_REASON,)),
    "Pending": Reason(
        EVENT, "Entered Pending: waiting for the policies' decision and for the target's Lease.",
        "If it stays, another restore holds the target's Lease (the message names it).", TRANSITION),
    "ResolvingSnapshot": Reason(
        EVENT, "Entered ResolvingSnapshot: finding the source snapshot and waiting until it is available.",
        f"Nothing; {_STUCK}.", TRANSITION),
    "Preflight": Reason(
        EVENT, "Entered Preflight: read-only checks of everything the restore needs.", "Nothing.", TRANSITION),
    "SharingSnapshot": Reason(
        EVENT, "Entered SharingSnapshot: sharing the snapshot with the target account (after a manual copy of an "
        "automated one).", f"Nothing; {_STUCK}.", TRANSITION),
    "SharingCluster": Reason(
        EVENT, "Entered SharingCluster: sharing the clone's source cluster with the target account through AWS RAM "
        "and accepting the invitation.", f"Nothing; {_STUCK}.", TRANSITION),
    "CopyingSnapshot": Reason(
        EVENT, "Entered CopyingSnapshot: copying the snapshot into the target account and region; the message "
        "shows the copy's percentage.", f"Nothing; copies take minutes to hours; {_STUCK}.", TRANSITION),
    "RestoringCluster": Reason(
        EVENT, "Entered RestoringCluster: restoring the cluster and waiting until it is available.",
        f"Nothing; {_STUCK}.", TRANSITION),
    "CreatingInstances": Reason(
        EVENT, "Entered CreatingInstances: creating the DB instances and waiting until they are available.",
        f"Nothing; {_STUCK}.", TRANSITION),
    "ConfiguringAccess": Reason(
        EVENT, "Entered ConfiguringAccess: setting the master password and the database users.",
        "Nothing.", TRANSITION),
    "Masking": Reason(
        EVENT, "Entered Masking: masking the data table by table (spec.masking), then rewriting the masked tables; "
        "status.masking shows the progress.", "Nothing.", TRANSITION),
    "RunningHooks": Reason(
        EVENT, "Entered RunningHooks: running the post-restore SQL and Job hooks in order (status.hooks).",
        "Nothing.", TRANSITION),
    "Verifying": Reason(
        EVENT, "Entered Verifying: running SELECT 1 and the verification queries as a read-only user.",
        "Nothing.", TRANSITION),
    "SnapshottingOutput": Reason(
        EVENT, "Entered SnapshottingOutput: taking the output snapshot of the verified cluster, copying it with "
        "spec.output.snapshot.kmsKeyId and sharing it (status.outputSnapshot).", "Nothing; snapshots take minutes.",
        TRANSITION),
    "SwappingTarget": Reason(
        EVENT, "Entered SwappingTarget: renaming the existing target away and the new cluster to its name; "
        "clients lose the endpoint until the second rename is done.", "Nothing; a swap is never interrupted "
        "halfway.", TRANSITION),
    "RetiringPrevious": Reason(
        EVENT, "Entered RetiringPrevious: deleting the replaced cluster with a final snapshot.", "Nothing.",
        TRANSITION),
    "Publishing": Reason(
        EVENT, "Entered Publishing: writing the connection Secrets.", "Nothing.", TRANSITION),
    "CleaningUp": Reason(
        EVENT, "Entered CleaningUp: deleting the copies and the share this restore made.", "Nothing.",
        TRANSITION),
    "Cancelling": Reason(
        EVENT, "Entered Cancelling: the AuroraRestore is being deleted before it finished; what it made is "
        "removed.", "Nothing; if it cannot finish, see the runbook's cancel procedure.", TRANSITION),
    "Succeeded": Reason(
        EVENT, "The restore succeeded: the cluster and its instances are available.", "Nothing.", FINISHED),
    "Failed": Reason(
        EVENT, "Entered Failed; the Event and conditions carry status.failure.reason instead, and this phase "
        "name only when no failure was recorded.", "Read status.message and status.failure.", FINISHED),
    "Planned": Reason(
        EVENT, "A dry run finished; status.plan lists what a real run would do.", "Nothing.", FINISHED),
    "Cancelled": Reason(
        EVENT, "The cancel finished; the resource disappears.", "Nothing.", FINISHED),
    "RunCreated": Reason(
        EVENT, "A schedule created the AuroraRestore of a due run (named <schedule>-<minutes since the epoch>).",
        "Nothing.", (SCHEDULE_EVENT,)),
    "RunReplaced": Reason(
        EVENT, "A schedule with concurrencyPolicy Replace deleted (so cancelled) an unfinished run because a newer "
        "one is due.", "Nothing; use concurrencyPolicy Forbid to let runs finish.", (SCHEDULE_EVENT,)),
    "Scheduled": Reason(
        EVENT, "The schedule is valid and creates runs on schedule (condition Ready).", "Nothing.",
        (SCHEDULE_CONDITION,)),
    "Suspended": Reason(
        EVENT, "spec.suspend is true: the schedule creates no runs (runs already made go on).",
        "Set spec.suspend to false to resume.", (SCHEDULE_CONDITION,)),
    "NotSuspended": Reason(
        EVENT, "The schedule is not suspended (condition Suspended False).", "Nothing.", (SCHEDULE_CONDITION,)),
    "Valid": Reason(
        EVENT, "The schedule's spec is valid (condition InvalidSchedule False).", "Nothing.", (SCHEDULE_CONDITION,)),
    "MissedWindow": Reason(
        EVENT, "A schedule skipped a run: it was due outside every window and the next window opens after "
        "startingDeadlineSeconds.", "Widen spec.windows or raise startingDeadlineSeconds (docs/schedules.md).",
        (SCHEDULE_EVENT,)),
    "RunNameTaken": Reason(
        EVENT, "A schedule skipped a run: an AuroraRestore of the run's name (<schedule>-<minutes>) exists that the "
        "schedule does not own, so it is not counted as the run.", "Rename or delete that AuroraRestore; the "
        "schedule's next due time makes its run as usual.", (SCHEDULE_EVENT,)),
    "RunRefused": Reason(
        EVENT, "The apiserver refused to create a schedule's run (403: a ResourceQuota exceeded, RBAC, a "
        "terminating namespace; or a 409 conflict); the message is the apiserver's. The schedule retries at each "
        "turn while the run is still due.", "Raise the quota or fix what the message names.",
        (SCHEDULE_CONDITION, SCHEDULE_EVENT)),
    "MissedDeadline": Reason(
        EVENT, "A schedule skipped a run that could not start within startingDeadlineSeconds (the operator was "
        "down, or the previous run was still active).", "Check the operator's health and the schedule's active "
        "runs, or raise startingDeadlineSeconds (docs/schedules.md).", (SCHEDULE_EVENT,)),
    # --- AWS error codes passed on as the reason (aws/errors.py TERMINAL_CODES) -----------------------------------
    "AccessDenied": _aws(
        "An AWS call was refused for lack of permission.", "Compare the role's policy with `aurora-restore "
        "iam-policy` (docs/security.md); for a source role, `--source-role`."),
    "AccessDeniedException": _aws(
        "An AWS call (KMS, STS, Secrets Manager) was refused for lack of permission.", "Compare the role's policy "
        "with `aurora-restore iam-policy`, and the KMS key policy (runbook: KMS denied)."),
    "UnauthorizedOperation": _aws(
        "An EC2 call was refused for lack of permission.", "Compare the role's policy with `aurora-restore "
        "iam-policy`."),
    "InvalidClientTokenId": _aws(
        "AWS does not know the operator's access key.", "Fix the operator's credentials."),
    "UnrecognizedClientException": _aws(
        "AWS does not recognise the operator's security token.", "Fix the operator's credentials."),
    "SignatureDoesNotMatch": _aws(
        "AWS rejected the request signature.", "Fix the operator's credentials and the node's clock."),
    "AuthFailure": _aws(
        "EC2 could not validate the operator's credentials.", "Fix the operator's credentials."),
    "OptInRequired": _aws(
        "The account is not subscribed to the service, or the region is not enabled.", "Enable the region or "
        "service for the account."),
    "InvalidParameterValue": _aws(
        "AWS refused a parameter value; the message names the call, AWS's words and, where known, the spec field.",
        "Fix the field AWS names."),
    "InvalidParameterCombination": _aws(
        "AWS refused a combination of parameters (such as an engine version or instance class the source cannot "
        "take).", "Fix the fields AWS names."),
    "MissingParameter": _aws(
        "AWS found a required parameter missing.", "Report it as a bug, with the message."),
    "ValidationError": _aws(
        "AWS refused the request's parameters.", "Fix the field AWS names."),
    "ValidationException": _aws(
        "AWS refused the request's parameters.", "Fix the field AWS names."),
    "InvalidRestoreFault": _aws(
        "AWS cannot restore the snapshot or point in time with these settings.", "Check the source, the engine "
        "version and the network settings the message names."),
    "KMSKeyNotAccessibleFault": _aws(
        "RDS cannot use a KMS key (spec.target.kmsKeyId, or spec.copy.kmsKeyId when it encrypts the restore of "
        "an unencrypted snapshot).", "Fix the key policy or grants (runbook: KMS denied)."),
    "DBClusterAlreadyExistsFault": _aws(
        "A cluster of that name exists (outside the cases the operator retries).", "Remove it or choose another "
        "name."),
    "DBClusterSnapshotAlreadyExistsFault": _aws(
        "A snapshot of that name exists (outside the cases the operator retries).", "Remove it or choose another "
        "name."),
    "DBInstanceAlreadyExists": _aws(
        "A DB instance of that name exists (outside the cases the operator retries).", "Remove it or choose "
        "another name."),
    "InsufficientDBInstanceCapacity": _aws(
        "AWS has no capacity for the instance class now.", "Try later, or another instance class."),
    "InsufficientDBClusterCapacityFault": _aws(
        "AWS has no capacity for the cluster now.", "Try later, or other settings."),
    "InvalidVPCNetworkStateFault": _aws(
        "The subnet group or security groups do not fit (spec.target.vpcSecurityGroupIds).", "Fix the network "
        "settings the message names."),
    "InvalidSubnet": _aws(
        "A subnet of the subnet group cannot be used.", "Fix spec.target.dbSubnetGroupName's subnets."),
    # AWS RAM (the share of a cross-account clone, steps/clone.py)
    "OperationNotPermittedException": _aws(
        "AWS RAM refused the share of the source cluster (for example sharing with external principals is off, "
        "or the cluster cannot be shared).", "Let the source account share the cluster through RAM."),
    "InvalidParameterException": _aws(
        "AWS RAM refused a parameter of the share (the message says which).", "Fix what the message names."),
    "MalformedArnException": _aws(
        "AWS RAM refused an ARN (the source cluster's, or an invitation's).", "Check spec.source.clone and the "
        "source account."),
    "IdempotentParameterMismatchException": _aws(
        "AWS RAM saw the restore's client token with other parameters (a share made by an earlier spec).",
        "Delete the share tagged with the restore's UID and create a new AuroraRestore."),
    "ResourceShareInvitationExpiredException": _aws(
        "The RAM invitation to the target account expired before it was accepted.",
        "Create a new AuroraRestore (a new share and invitation)."),
    "ResourceShareInvitationArnNotFoundException": _aws(
        "The RAM invitation the target side tried to accept does not exist.", "Create a new AuroraRestore."),
    "ResourceShareInvitationAlreadyRejectedException": _aws(
        "The RAM invitation to the target account was rejected by someone.", "Create a new AuroraRestore."),
    OTHER_AWS_CODE: _aws(
        "Any other AWS error code is terminal and passed on as the reason; the message names the call, AWS's "
        "words and, where a spec field is at fault, the field (e.g. DBSubnetGroupNotFoundFault, "
        "DBClusterParameterGroupNotFound).", "Fix what AWS names; the AWS API reference explains each code."),
}
