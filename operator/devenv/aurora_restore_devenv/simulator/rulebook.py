"""The documented RDS and KMS rules the operator depends on: one list, one check per rule.

Each `Rule` names the calls it applies to, the sentence of the AWS documentation it comes from (the RDS API
reference unless it says otherwise) and the error code RDS answers with. Where the documentation names no code,
the rule says which one the simulator answers and why.

The checks are plain functions over plain values (no moto, no boto3), so that the simulator (validation.py adapts
moto's objects to them) and the unit tests' fake RDS raise the same `RuleViolation` for the same request. A few
rules are stateful and enforced where that state lives (renames.py, rds_lifecycle.py, moto itself); they are
listed here too, with `enforced_by` saying where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Rule:
    name: str
    calls: str
    quote: str
    code: str
    #: Where the simulator enforces it, when not through a check of this module.
    enforced_by: str = "validation.py"
    #: The function of this module that checks it (None: enforced only where `enforced_by` says).
    check: str | None = None


class RuleViolation(Exception):
    """A request a rule refuses: the RDS error code, its HTTP status and a message in RDS's words."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


RULES: tuple[Rule, ...] = (
    Rule(
        "unencrypted-copy-with-key",
        "CopyDBClusterSnapshot",
        "KmsKeyId: \"If you copy an unencrypted DB cluster snapshot and specify a value for the KmsKeyId "
        "parameter, an error is returned.\" (no code named; an unencrypted snapshot is encrypted at restore)",
        "InvalidParameterCombination",
        check="check_copy_encryption",
    ),
    Rule(
        "cross-region-encrypted-copy-needs-key",
        "CopyDBClusterSnapshot",
        "KmsKeyId: \"To copy an encrypted DB cluster snapshot to another Amazon Web Services Region, you must set "
        "KmsKeyId to the Amazon Web Services KMS key identifier you want to use to encrypt the copy of the DB "
        "cluster snapshot in the destination Amazon Web Services Region.\" (no code named)",
        "InvalidParameterValue",
        check="check_copy_encryption",
    ),
    Rule(
        "key-in-request-region",
        "CopyDBClusterSnapshot, RestoreDBClusterFromSnapshot",
        "KmsKeyId: \"KMS keys are specific to the Amazon Web Services Region that they are created in, and you "
        "can't use KMS keys from one Amazon Web Services Region in another Amazon Web Services Region.\" A key "
        "that does not exist, is disabled or is of another region is refused",
        "KMSKeyNotAccessibleFault",
        check="check_kms_key_usable",
    ),
    Rule(
        "shared-encrypted-copy-needs-key",
        "CopyDBClusterSnapshot",
        "KmsKeyId: \"If you copy an encrypted DB cluster snapshot that is shared from another Amazon Web Services "
        "account, then you must specify a value for KmsKeyId.\" (no code named)",
        "InvalidParameterValue",
        check="check_copy_encryption",
    ),
    Rule(
        "shared-encrypted-needs-key-access",
        "CopyDBClusterSnapshot, RestoreDBClusterFromSnapshot",
        "Aurora User Guide, Sharing encrypted snapshots: the owner creates a customer managed key and \"give[s] "
        "access to it for another AWS account\" (the key policy names the account, or a grant exists)",
        "KMSKeyNotAccessibleFault",
        check="check_key_access",
    ),
    Rule(
        "aws-managed-key-not-shareable",
        "ModifyDBClusterSnapshotAttribute",
        "Aurora User Guide: \"You can't share a snapshot that has been encrypted using the default KMS key of the "
        "AWS account that shared the snapshot.\" (no code named)",
        "InvalidParameterValue",
        check="check_shareable",
    ),
    Rule(
        "encrypted-not-public",
        "ModifyDBClusterSnapshotAttribute",
        "\"If a manual DB cluster snapshot is encrypted, it can be shared, but only by specifying a list of "
        "authorized Amazon Web Services account IDs for the ValuesToAdd parameter. You can't use all as a value "
        "for that parameter in this case.\" (no code named)",
        "InvalidParameterValue",
        check="check_shareable",
    ),
    Rule(
        "identifier",
        "CreateDBCluster, RestoreDBClusterFromSnapshot, RestoreDBClusterToPointInTime (DBClusterIdentifier); "
        "CreateDBInstance (DBInstanceIdentifier); CreateDBClusterSnapshot (DBClusterSnapshotIdentifier); "
        "CopyDBClusterSnapshot (TargetDBClusterSnapshotIdentifier); ModifyDBCluster (NewDBClusterIdentifier)",
        "\"Must contain from 1 to 63 letters, numbers, or hyphens. First character must be a letter. Can't end "
        "with a hyphen or contain two consecutive hyphens.\"",
        "InvalidParameterValue",
        check="check_identifier",
    ),
    Rule(
        "final-snapshot-identifier",
        "DeleteDBCluster (FinalDBSnapshotIdentifier)",
        "\"Must be 1 to 255 letters, numbers, or hyphens. First character must be a letter Can't end with a "
        "hyphen or contain two consecutive hyphens\" (255, not 63: the reference's own number for this parameter)",
        "InvalidParameterValue",
        check="check_identifier",
    ),
    Rule(
        "tag",
        "every call with Tags; AddTagsToResource",
        "Tag.Key: \"The string value can be from 1 to 128 Unicode characters in length and can't be prefixed with "
        "aws: or rds:. The string can only contain only the set of Unicode letters, digits, white-space, '_', '.', "
        "':', '/', '=', '+', '-', '@'\"; Tag.Value: the same with up to 256 characters (no code named)",
        "InvalidParameterValue",
        check="check_tags",
    ),
    Rule(
        "tag-limit",
        "every call with Tags; AddTagsToResource",
        "RDS User Guide, Tagging Amazon RDS resources: \"Each Amazon RDS resource has a tag set, which contains all "
        "the tags that are assigned to that Amazon RDS resource. A tag set can contain as many as 50 tags, or it can "
        "be empty. If you add a tag to an RDS resource with the same key as an existing resource tag, the new value "
        "overwrites the old.\" (no code named)",
        "InvalidParameterValue",
        check="check_tags",
    ),
    Rule(
        "restore-engine-version",
        "RestoreDBClusterFromSnapshot (EngineVersion)",
        "EngineVersion: \"The version of the database engine to use for the new DB cluster.\" The simulator's "
        "simplified rule: the snapshot's version, or a known version of the same major version and not lower "
        "(the unit fake: its table of DescribeDBEngineVersions' ValidUpgradeTarget, `check_upgrade_target`)",
        "InvalidParameterCombination",
        check="check_restore_engine_version",
    ),
    Rule(
        "describe-snapshots-cluster-exists",
        "DescribeDBClusterSnapshots (DBClusterIdentifier)",
        "DBClusterIdentifier: \"Constraints: If supplied, must match the identifier of an existing DBCluster.\"",
        "DBClusterNotFoundFault",
        check="check_snapshot_listing_cluster",
    ),
    Rule(
        "describe-snapshots-shared",
        "DescribeDBClusterSnapshots (IncludeShared, SnapshotType)",
        "SnapshotType: \"If you don't specify a SnapshotType value, then both automated and manual DB cluster "
        "snapshots are returned. You can include shared DB cluster snapshots with these results by enabling the "
        "IncludeShared parameter.\" and \"shared - Return all manual DB cluster snapshots that have been shared "
        "to my Amazon Web Services account.\" (a behaviour, not an error)",
        "-",
        check="includes_shared",
    ),
    Rule(
        "describe-snapshots-filters",
        "DescribeDBClusterSnapshots (Filters)",
        "Filters: \"Supported filters: db-cluster-id ... db-cluster-snapshot-id ... snapshot-type ... engine\"; "
        "another name is refused (moto's own check)",
        "InvalidParameterValue",
        enforced_by="moto",
    ),
    Rule(
        "describe-max-records",
        "DescribeDBClusters, DescribeDBInstances, DescribeDBClusterSnapshots, DescribeDBClusterAutomatedBackups "
        "(MaxRecords)",
        "MaxRecords: \"Default: 100 Constraints: Minimum 20, maximum 100.\"; more records than MaxRecords come "
        "with a Marker for the next page (no code named; a value out of range is an invalid value)",
        "InvalidParameterValue",
        enforced_by="pagination.py",
        check="check_max_records",
    ),
    Rule(
        "restorable-window",
        "DescribeDBClusters (LatestRestorableTime); RestoreDBClusterToPointInTime (RestoreToTime)",
        "RestoreDBClusterToPointInTime: \"Users can restore to any point in time before LatestRestorableTime for "
        "up to BackupRetentionPeriod days.\" RestoreToTime: \"Must be before the latest restorable time for the "
        "DB instance\". LatestRestorableTime trails the present (about 5 minutes; `restorable_lag`)",
        "InvalidRestoreFault",
        check="check_restore_time",
    ),
    Rule(
        "existing-cluster-identifier",
        "CreateDBCluster, RestoreDBClusterFromSnapshot, RestoreDBClusterToPointInTime",
        "CreateDBCluster's and the restores' errors: DBClusterAlreadyExistsFault \"The user already has a DB "
        "cluster with the given identifier.\"",
        "DBClusterAlreadyExistsFault",
        check="check_cluster_free",
    ),
    Rule(
        "delete-needs-final-snapshot-choice",
        "DeleteDBCluster",
        "SkipFinalSnapshot: \"If SkipFinalSnapshot is disabled, you must specify a FinalDBSnapshotIdentifier "
        "parameter.\"",
        "InvalidParameterCombination",
        check="check_final_snapshot_choice",
    ),
    Rule(
        "delete-with-instances",
        "DeleteDBCluster",
        "Aurora User Guide, Deleting Aurora DB clusters and DB instances: \"Use the following general procedure to "
        "remove all the DB instances from a cluster and then delete the cluster itself.\" (instances already being "
        "deleted do not count)",
        "InvalidDBClusterStateFault",
        enforced_by="moto and rds_lifecycle.py",
        check="check_cluster_deletable",
    ),
    Rule(
        "delete-protected",
        "DeleteDBCluster",
        "DeletionProtection: \"The database can't be deleted when deletion protection is enabled.\"",
        "InvalidParameterCombination",
        enforced_by="moto",
        check="check_cluster_deletable",
    ),
    Rule(
        "rename-taken",
        "ModifyDBCluster (NewDBClusterIdentifier)",
        "NewDBClusterIdentifier: \"The new DB cluster identifier for the DB cluster when renaming a DB cluster. "
        "This value is stored as a lowercase string.\" ModifyDBCluster's errors: DBClusterAlreadyExistsFault \"The "
        "user already has a DB cluster with the given identifier.\" (the cluster is `renaming`, then `available`, and "
        "its endpoints change with the name)",
        "DBClusterAlreadyExistsFault",
        enforced_by="renames.py",
        check="check_new_cluster_identifier",
    ),
    Rule(
        "master-password",
        "ModifyDBCluster (MasterUserPassword)",
        "MasterUserPassword: \"Must contain from 8 to 41 characters. Can contain any printable ASCII character "
        "except \"/\", \"\"\", or \"@\".\" While a new one is applied the cluster is "
        "`resetting-master-credentials` (Aurora User Guide, DB cluster status)",
        "InvalidParameterValue",
        check="check_master_password",
    ),
    Rule(
        "modify-missing-cluster",
        "ModifyDBCluster",
        "ModifyDBCluster's errors: DBClusterNotFoundFault \"DBClusterIdentifier doesn't refer to an existing DB "
        "cluster.\"",
        "DBClusterNotFoundFault",
        check="check_cluster_exists",
    ),
    Rule(
        "rotation-needs-managed-password",
        "ModifyDBCluster (RotateMasterUserPassword)",
        "RotateMasterUserPassword: \"This setting is valid only if the master user password is managed by RDS in "
        "Amazon Web Services Secrets Manager for the DB cluster.\" (no code named; moto crashed)",
        "InvalidParameterCombination",
        check="check_rotation",
    ),
    # -- clones (RestoreDBClusterToPointInTime with RestoreType=copy-on-write) and RAM shares of clusters ------
    Rule(
        "clone-source-available",
        "RestoreDBClusterToPointInTime (RestoreType=copy-on-write)",
        "RestoreDBClusterToPointInTime's errors: InvalidDBClusterStateFault \"The requested operation can't be "
        "performed while the cluster is in this state.\" (the source must be available; the same-account check "
        "for every restore to a point in time is rds_lifecycle.py's)",
        "InvalidDBClusterStateFault",
        enforced_by="clones.py and rds_lifecycle.py",
        check="check_clone_source_state",
    ),
    Rule(
        "clone-needs-instance",
        "RestoreDBClusterToPointInTime (RestoreType=copy-on-write)",
        "Aurora User Guide, Limitations of Aurora cloning: \"You can't create a clone from an Aurora DB cluster "
        "without the DB instance. You can only clone Aurora DB clusters that have at least one DB instance.\" (no "
        "code named; moto does not check it). Aurora Serverless v1 clusters, which have no DB instances at all, "
        "are cloned as they are",
        "InvalidDBClusterStateFault",
        enforced_by="clones.py",
        check="check_clone_source_state",
    ),
    Rule(
        "clone-same-region",
        "RestoreDBClusterToPointInTime (RestoreType=copy-on-write)",
        "Aurora User Guide, Limitations of Aurora cloning: \"You can't create a clone in a different AWS Region "
        "from the source Aurora DB cluster.\" (no code named: RDS is regional, so the simulator answers as for a "
        "cluster it cannot find, saying why)",
        "DBClusterNotFoundFault",
        enforced_by="clones.py",
        check="check_clone_region",
    ),
    Rule(
        "clone-no-restore-time",
        "RestoreDBClusterToPointInTime (RestoreToTime, RestoreType)",
        "RestoreToTime: \"Can't be specified if the RestoreType parameter is copy-on-write\" (a clone is of the "
        "source as it is; moto's own check)",
        "InvalidParameterCombination",
        enforced_by="moto",
    ),
    Rule(
        "shared-cluster-visible",
        "DescribeDBClusters, RestoreDBClusterToPointInTime (an ARN of another account's cluster)",
        "SourceDBClusterIdentifier: \"Must match the identifier of an existing DBCluster.\" Another account's "
        "cluster exists for the caller only once its owner shared it through AWS RAM and the caller's account is "
        "associated (invitation accepted, or one organization with sharing enabled), in the cluster's region "
        "(Aurora User Guide, Cross-account cloning with AWS RAM)",
        "DBClusterNotFoundFault",
        enforced_by="clones.py",
        check="check_shared_cluster_visible",
    ),
    Rule(
        "cross-account-copy-on-write",
        "RestoreDBClusterToPointInTime (SourceDBClusterIdentifier of another account)",
        "RestoreType: \"copy-on-write - The new DB cluster is restored as a clone of the source DB cluster.\" A "
        "cluster shared with the caller is only cloned (Aurora User Guide, Cross-account cloning: the other "
        "account creates a clone of it); no code named",
        "InvalidParameterCombination",
        enforced_by="clones.py",
        check="check_cross_account_clone",
    ),
    Rule(
        "cross-account-not-serverless",
        "RestoreDBClusterToPointInTime (a cluster of another account)",
        "Aurora User Guide, Cloning: \"Cross-account cloning currently doesn't support cloning Aurora Serverless "
        "v1 DB clusters.\" (EngineMode serverless; no code named)",
        "InvalidParameterCombination",
        enforced_by="clones.py",
        check="check_cross_account_clone",
    ),
    Rule(
        "cross-account-clone-key",
        "RestoreDBClusterToPointInTime (an encrypted cluster of another account)",
        "Aurora User Guide, Limitations of cross-account cloning: \"You can't create a cross-account clone of a "
        "cluster that is encrypted with the default RDS key.\" and the owner must give the other account access "
        "to the cluster's customer managed KMS key (key policy or grant)",
        "KMSKeyNotAccessibleFault",
        enforced_by="clones.py",
        check="check_cross_account_clone",
    ),
    Rule(
        "cross-account-clone-limit",
        "RestoreDBClusterToPointInTime (a cluster of another account)",
        "Aurora User Guide, Limitations of cross-account cloning: \"You can create a maximum of 15 cross-account "
        "clones from any single Aurora DB cluster.\" each owned by a different account (one cross-account clone "
        "of a cluster per account); a cluster and its clones count together, and a clone counts until it is gone "
        "(no code named; the restore's DB cluster quota error)",
        "DBClusterQuotaExceededFault",
        enforced_by="clones.py",
        check="check_cross_account_clone_limits",
    ),
    Rule(
        "no-clone-of-shared-clone",
        "RestoreDBClusterToPointInTime (RestoreType=copy-on-write); RAM CreateResourceShare",
        "Aurora User Guide, Limitations of cross-account cloning: \"You can't create new clones from a clone "
        "that's been shared with your AWS account.\" and resources shared with your account can't be shared "
        "again (the simulator: a cluster with CrossAccountClone true is neither cloned nor shared; no code named)",
        "InvalidDBClusterStateFault",
        enforced_by="clones.py and ram.py",
        check="check_not_a_shared_clone",
    ),
    Rule(
        "cross-account-clone-flag",
        "RestoreDBClusterToPointInTime; DescribeDBClusters (CrossAccountClone)",
        "DBCluster.CrossAccountClone: \"Indicates whether the DB cluster is a clone of a DB cluster owned by a "
        "different Amazon Web Services account.\" (a behaviour, not an error; moto always said false)",
        "-",
        enforced_by="clones.py",
    ),
    Rule(
        "clone-group",
        "RestoreDBClusterToPointInTime; DescribeDBClusters (CloneGroupId)",
        "DBCluster.CloneGroupId: \"If you clone a DB cluster when the ID is null, the operation populates the ID "
        "value for the source cluster and the clone because both clusters become part of the same clone group.\" "
        "It stays for the source's lifetime, and \"For PITR, the clone group ID is inherited from the source "
        "cluster.\" (a behaviour, not an error; moto has none)",
        "-",
        enforced_by="clones.py",
    ),
    Rule(
        "cluster-quota",
        "DescribeAccountAttributes (AccountQuotas DBClusters)",
        "DescribeAccountAttributes: \"The description for a quota includes the quota name, current usage toward "
        "that quota, and the quota's maximum value.\" AccountQuota DBClusters: \"The used value is the count of DB "
        "clusters in the account.\" (moto lacks the action; the simulator reports AWS's default maximum of 40 per "
        "region; a behaviour, not an error)",
        "-",
        enforced_by="account_quotas.py",
    ),
    Rule(
        "ram-share-own-resource",
        "RAM CreateResourceShare, AssociateResourceShare (resourceArns)",
        "UnknownResourceException: \"The operation failed because a specified resource couldn't be found.\" A "
        "resource share's resources are the owner's, in the share's region (RAM User Guide, Sharing your AWS "
        "resources); another account's cluster, or none, is not found",
        "UnknownResourceException",
        enforced_by="ram.py",
        check="check_ram_resource_owned",
    ),
    Rule(
        "ram-external-principals",
        "RAM CreateResourceShare, AssociateResourceShare (principals)",
        "CreateResourceShare allowExternalPrincipals: \"Specifies whether principals outside your organization "
        "in Organizations can be associated with a resource share. A value of true lets you share with individual "
        "Amazon Web Services accounts that are not in your organization.\" The default value is true",
        "OperationNotPermittedException",
        enforced_by="ram.py",
        check="check_ram_external_principal",
    ),
    Rule(
        "ram-invitation",
        "RAM GetResourceShareInvitations, AcceptResourceShareInvitation, RejectResourceShareInvitation",
        "AcceptResourceShareInvitation: \"After you accept the invitation, the resources included in the resource "
        "share are available to interact with in the relevant Amazon Web Services Management Consoles and "
        "tools.\" An account outside the owner's organization is invited, ASSOCIATING until it accepts; an "
        "invitation is answered once",
        "ResourceShareInvitationAlreadyAcceptedException",
        enforced_by="ram.py",
    ),
    Rule(
        "ram-client-token",
        "RAM CreateResourceShare, AcceptResourceShareInvitation, DeleteResourceShare, ... (clientToken)",
        "clientToken: \"Specifies a unique, case-sensitive identifier that you provide to ensure the idempotency of "
        "the request.\" and \"If you retry the operation with the same ClientToken, but with different parameters, "
        "the retry fails with an IdempotentParameterMismatch error.\"",
        "IdempotentParameterMismatchException",
        enforced_by="ram.py",
        check="check_client_token",
    ),
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}


# -- identifiers ------------------------------------------------------------------------------------------------

IDENTIFIER = re.compile(r"[A-Za-z](?:-?[A-Za-z0-9])*")
MAX_IDENTIFIER_LENGTH = 63
MAX_FINAL_SNAPSHOT_IDENTIFIER_LENGTH = 255

# Action (moto's method name) -> the identifier parameters it creates, with their maximum length.
IDENTIFIER_PARAMETERS: dict[str, tuple[tuple[str, int], ...]] = {
    "create_db_cluster": (("DBClusterIdentifier", MAX_IDENTIFIER_LENGTH),),
    "restore_db_cluster_from_snapshot": (("DBClusterIdentifier", MAX_IDENTIFIER_LENGTH),),
    "restore_db_cluster_to_point_in_time": (("DBClusterIdentifier", MAX_IDENTIFIER_LENGTH),),
    "create_db_instance": (("DBInstanceIdentifier", MAX_IDENTIFIER_LENGTH),),
    "create_db_cluster_snapshot": (("DBClusterSnapshotIdentifier", MAX_IDENTIFIER_LENGTH),),
    "copy_db_cluster_snapshot": (("TargetDBClusterSnapshotIdentifier", MAX_IDENTIFIER_LENGTH),),
    "modify_db_cluster": (("NewDBClusterIdentifier", MAX_IDENTIFIER_LENGTH),),
    "delete_db_cluster": (("FinalDBSnapshotIdentifier", MAX_FINAL_SNAPSHOT_IDENTIFIER_LENGTH),),
}


def is_valid_identifier(value: str, max_length: int = MAX_IDENTIFIER_LENGTH) -> bool:
    return 1 <= len(value) <= max_length and IDENTIFIER.fullmatch(value) is not None


def check_identifier(parameter: str, value: str | None, max_length: int = MAX_IDENTIFIER_LENGTH) -> None:
    """Rules `identifier` and `final-snapshot-identifier`. Letters may be upper case: RDS stores them lowered."""
    if value is None or is_valid_identifier(value, max_length):
        return
    raise RuleViolation(
        "InvalidParameterValue",
        f"The parameter {parameter} is not a valid identifier. Identifiers must begin with a letter; must "
        f"contain only ASCII letters, digits, and hyphens; must be 1 to {max_length} characters long; and must "
        "not end with a hyphen or contain two consecutive hyphens.",
    )


# -- tags -------------------------------------------------------------------------------------------------------

MAX_TAGS = 50
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256
RESERVED_TAG_PREFIXES = ("aws:", "rds:")
TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _tag_characters_allowed(text: str) -> bool:
    """The reference's `^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$`: letters, separators (spaces), digits, `_.:/=+-@`."""
    return all(c.isalpha() or c.isnumeric() or c.isspace() or c in TAG_PUNCTUATION for c in text)


def check_tags(tags: Iterable[Mapping[str, str]] | None, existing: Mapping[str, str] | None = None) -> None:
    """Rules `tag` and `tag-limit` for the Tags of a request (a TagList), beside the resource's `existing` tags."""
    merged = dict(existing or {})
    for tag in tags or []:
        key, value = tag.get("Key"), tag.get("Value") or ""
        if not key or len(key) > MAX_TAG_KEY_LENGTH:
            raise RuleViolation(
                "InvalidParameterValue", f"Tag key must be 1 to {MAX_TAG_KEY_LENGTH} characters: {key!r}"
            )
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise RuleViolation(
                "InvalidParameterValue", f"Tag value of {key!r} must be at most {MAX_TAG_VALUE_LENGTH} characters"
            )
        for text, what in ((key, "key"), (value, "value")):
            if text.lower().startswith(RESERVED_TAG_PREFIXES):
                raise RuleViolation("InvalidParameterValue", f"Tag {what} can't be prefixed with aws: or rds: {text!r}")
            if not _tag_characters_allowed(text):
                raise RuleViolation(
                    "InvalidParameterValue",
                    f"Tag {what} {text!r} may only contain Unicode letters, digits, white space and _ . : / = + - @",
                )
        merged[key] = value
    if len(merged) > MAX_TAGS:
        raise RuleViolation(
            "InvalidParameterValue",
            f"A resource can have at most {MAX_TAGS} tags; this request would give it {len(merged)}",
        )


# -- encryption -------------------------------------------------------------------------------------------------


def check_copy_encryption(*, source_encrypted: bool, kms_key_id: str | None, cross_region: bool, shared: bool) -> None:
    """Rules `unencrypted-copy-with-key`, `cross-region-encrypted-copy-needs-key`, `shared-encrypted-copy-needs-key`."""
    if not source_encrypted and kms_key_id:
        raise RuleViolation(
            "InvalidParameterCombination",
            "KmsKeyId can't be specified when copying an unencrypted DB cluster snapshot: encrypt the cluster when "
            "you restore it instead",
        )
    if source_encrypted and cross_region and not kms_key_id:
        raise RuleViolation(
            "InvalidParameterValue",
            "KmsKeyId must be specified to copy an encrypted DB cluster snapshot to another region: a key of the "
            "destination region",
        )
    if source_encrypted and shared and not kms_key_id:
        raise RuleViolation(
            "InvalidParameterValue",
            "KmsKeyId must be specified to copy an encrypted DB cluster snapshot shared from another account",
        )


def check_kms_key_usable(key_id: str | None, usable: bool) -> None:
    """Rule `key-in-request-region`: `usable` when the key exists in the request's region and is enabled."""
    if key_id and not usable:
        raise RuleViolation(
            "KMSKeyNotAccessibleFault", f"Specified KMS key [{key_id}] does not exist, is not enabled or you do "
            "not have permissions to access it."
        )


def key_region(key_id: str) -> str | None:
    """The region of a key ARN or alias ARN (None for a bare key id or alias name: the request's region)."""
    parts = key_id.split(":")
    return parts[3] if key_id.startswith("arn:") and len(parts) > 3 else None


def account_of(principal: str) -> str | None:
    """The account of an IAM principal: an account id, `arn:aws:iam::<account>:...`, or None for `*`/others."""
    if re.fullmatch(r"\d{12}", principal):
        return principal
    match = re.fullmatch(r"arn:[^:]+:(?:iam|sts)::(\d{12}):.*", principal)
    return match.group(1) if match else None


def accounts_in_key_policy(policy: str | Mapping) -> set[str]:
    """Accounts an Allow statement of a key policy names (`*` when it allows anyone)."""
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document.get("Statement", [])
    accounts: set[str] = set()
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        values = [principal] if isinstance(principal, str) else (principal or {}).get("AWS", [])
        for value in [values] if isinstance(values, str) else values:
            if value == "*":
                accounts.add("*")
            elif account_of(value):
                accounts.add(account_of(value))  # type: ignore[arg-type]
    return accounts


def check_key_access(*, key_id: str, key_account: str, caller_account: str, allowed_accounts: Iterable[str]) -> None:
    """Rule `shared-encrypted-needs-key-access`: the owner's key must be open to the caller's account."""
    allowed = set(allowed_accounts)
    if key_account == caller_account or caller_account in allowed or "*" in allowed:
        return
    raise RuleViolation(
        "KMSKeyNotAccessibleFault",
        f"The specified KMS key [{key_id}] is not accessible: account {caller_account} has no access to it "
        "(neither its key policy nor a grant names this account)",
    )


def check_shareable(*, encrypted: bool, key_manager: str | None, values_to_add: Iterable[str]) -> None:
    """Rules `aws-managed-key-not-shareable` and `encrypted-not-public`, for the `restore` attribute."""
    values = list(values_to_add)
    if not encrypted or not values:
        return
    if key_manager == "AWS":
        raise RuleViolation(
            "InvalidParameterValue",
            "A snapshot encrypted with the default AWS managed KMS key cannot be shared. Copy it with a customer "
            "managed key and share the copy.",
        )
    if "all" in values:
        raise RuleViolation("InvalidParameterValue", "An encrypted snapshot cannot be made public (all).")


# -- engine versions --------------------------------------------------------------------------------------------

# Aurora engine versions a restore may target. Representative, not exhaustive: add versions here when a test needs
# them. moto's default versions (aurora-postgresql 12.7, aurora-mysql 5.7.mysql_aurora.2.07.2) are included so
# that clusters created without an EngineVersion can be restored with an explicit one.
KNOWN_ENGINE_VERSIONS: dict[str, frozenset[str]] = {
    "aurora-postgresql": frozenset(
        """
        11.9 11.21 12.7 12.9 12.15 12.22 13.7 13.9 13.12 13.15 13.18 13.20
        14.3 14.6 14.9 14.10 14.12 14.15 14.17 15.2 15.3 15.4 15.5 15.6 15.7 15.8 15.10
        15.12 16.1 16.2 16.3 16.4 16.6 16.8 17.4 17.5
        """.split()
    ),
    "aurora-mysql": frozenset(
        """
        5.7.mysql_aurora.2.07.2 5.7.mysql_aurora.2.11.2 5.7.mysql_aurora.2.11.4
        5.7.mysql_aurora.2.12.0 5.7.mysql_aurora.2.12.1 5.7.mysql_aurora.2.12.2
        8.0.mysql_aurora.3.04.0 8.0.mysql_aurora.3.04.1 8.0.mysql_aurora.3.04.2
        8.0.mysql_aurora.3.05.2 8.0.mysql_aurora.3.06.0 8.0.mysql_aurora.3.07.1
        8.0.mysql_aurora.3.08.0 8.0.mysql_aurora.3.08.1 8.0.mysql_aurora.3.08.2
        8.0.mysql_aurora.3.09.0
        """.split()
    ),
}


def engine_version_problem(engine: str, source: str, target: str) -> str | None:
    """Why `target` is no valid restore target for a `source` snapshot, or None (rule `restore-engine-version`)."""
    if target == source or engine not in KNOWN_ENGINE_VERSIONS:
        return None
    if target not in KNOWN_ENGINE_VERSIONS[engine]:
        return f"Cannot find version {target} for {engine}"
    if major_version(engine, target) != major_version(engine, source) or version_key(target) < version_key(source):
        return f"Cannot upgrade {engine} from {source} to {target}"
    return None


def check_restore_engine_version(engine: str, source: str, target: str | None) -> None:
    """Rule `restore-engine-version` against KNOWN_ENGINE_VERSIONS (the simulator)."""
    problem = engine_version_problem(engine, source, target) if target else None
    if problem:
        raise RuleViolation("InvalidParameterCombination", problem)


def check_upgrade_target(engine: str, source: str, target: str | None, valid_targets: Iterable[str] | None) -> None:
    """Rule `restore-engine-version` against a table of valid upgrade targets (DescribeDBEngineVersions'
    ValidUpgradeTarget of the snapshot's version), for a backend that keeps one (the unit tests' fake). A version
    the table does not know is not checked."""
    if not target or target == source or valid_targets is None:
        return
    if target not in set(valid_targets):
        raise RuleViolation("InvalidParameterCombination", f"Cannot upgrade {engine} from {source} to {target}")


def major_version(engine: str, version: str) -> str:
    """ "15" for aurora-postgresql 15.4, "8.0" for aurora-mysql 8.0.mysql_aurora.3.05.2."""
    parts = version.split(".")
    if engine == "aurora-postgresql" and parts[0].isdigit() and int(parts[0]) >= 10:
        return parts[0]
    return ".".join(parts[:2])


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", version))


# -- DescribeDBClusterSnapshots ---------------------------------------------------------------------------------


def check_snapshot_listing_cluster(cluster_identifier: str | None, cluster_exists: bool) -> None:
    """Rule `describe-snapshots-cluster-exists`."""
    if cluster_identifier and not cluster_exists:
        raise RuleViolation("DBClusterNotFoundFault", f"DBCluster {cluster_identifier} not found.", status=404)


MIN_RECORDS = 20
MAX_RECORDS = 100


def check_max_records(max_records: int | None) -> None:
    """Rule `describe-max-records`: MaxRecords, when given, is 20 to 100 (the describes page by it)."""
    if max_records is not None and not MIN_RECORDS <= max_records <= MAX_RECORDS:
        raise RuleViolation(
            "InvalidParameterValue",
            f"Invalid value {max_records} for MaxRecords. Must be between {MIN_RECORDS} and {MAX_RECORDS}",
        )


def includes_shared(snapshot_type: str | None, include_shared: bool | None) -> bool:
    """Rule `describe-snapshots-shared`: whether shared snapshots belong in the answer."""
    return snapshot_type == "shared" or (snapshot_type is None and include_shared)


# -- point in time ----------------------------------------------------------------------------------------------

DEFAULT_RESTORABLE_LAG_SECONDS = 300.0


def restorable_window(created: datetime, now: datetime, lag_seconds: float) -> tuple[datetime, datetime]:
    """(EarliestRestorableTime, LatestRestorableTime): from the cluster's creation to `lag` before now (never
    before the creation)."""
    return created, max(created, now - timedelta(seconds=lag_seconds))


def check_restore_time(restore_to: datetime | None, earliest: datetime | None, latest: datetime | None) -> None:
    """Rule `restorable-window` (all three aware, or all three naive)."""
    if restore_to is None:
        return
    if (latest is not None and restore_to > latest) or (earliest is not None and restore_to < earliest):
        raise RuleViolation(
            "InvalidRestoreFault",
            f"The restore time {restore_to.isoformat()} is not within the restorable window of the source DB "
            f"cluster ({earliest.isoformat() if earliest else '?'} to {latest.isoformat() if latest else '?'}).",
        )


# -- deleting and modifying clusters ----------------------------------------------------------------------------


def check_cluster_deletable(*, deletion_protection: bool, live_instances: int) -> None:
    """Rules `delete-protected` and `delete-with-instances` (moto's words, which are RDS's)."""
    if deletion_protection:
        raise RuleViolation(
            "InvalidParameterCombination",
            "Cannot delete protected Cluster, please disable deletion protection and try again.",
        )
    if live_instances:
        raise RuleViolation(
            "InvalidDBClusterStateFault",
            "Cluster cannot be deleted, it still contains DB instances in non-deleting state.",
        )


def check_final_snapshot_choice(skip_final_snapshot: bool, final_snapshot_identifier: str | None) -> None:
    """Rule `delete-needs-final-snapshot-choice`."""
    if not skip_final_snapshot and not final_snapshot_identifier:
        raise RuleViolation(
            "InvalidParameterCombination",
            "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
        )


def check_cluster_free(identifier: str | None, taken: bool) -> None:
    """Rule `existing-cluster-identifier`: a new cluster's identifier must not be another cluster's."""
    if identifier and taken:
        raise RuleViolation("DBClusterAlreadyExistsFault", "DB Cluster already exists")


def check_cluster_exists(identifier: str | None, exists: bool) -> None:
    """Rule `modify-missing-cluster`."""
    if not exists:
        raise RuleViolation("DBClusterNotFoundFault", f"DBCluster {identifier} not found.", status=404)


def check_rotation(*, rotate: bool, managed: bool) -> None:
    """Rule `rotation-needs-managed-password`: `managed` when the cluster's password is in Secrets Manager (or the
    same request turns that on)."""
    if rotate and not managed:
        raise RuleViolation(
            "InvalidParameterCombination",
            "The master user password can only be rotated when it is managed in Secrets Manager "
            "(ManageMasterUserPassword).",
        )


def check_master_password(password: str | None) -> None:
    """Rule `master-password`. A space is refused too, as RDS's own message says (the reference's "printable"
    leaves it open)."""
    if password is None:
        return
    printable = all(33 <= ord(c) < 127 for c in password)
    if not 8 <= len(password) <= 41 or not printable or any(c in '/"@' for c in password):
        raise RuleViolation(
            "InvalidParameterValue",
            "The parameter MasterUserPassword is not a valid password. Only printable ASCII characters besides "
            "'/', '@', '\"', ' ' may be used, and it must be 8 to 41 characters long.",
        )


def check_new_cluster_identifier(new_identifier: str | None, taken: bool) -> None:
    """Rule `rename-taken` (and `identifier` for the new name)."""
    check_identifier("NewDBClusterIdentifier", new_identifier)
    if new_identifier is not None and taken:
        raise RuleViolation("DBClusterAlreadyExistsFault", f"DB cluster {new_identifier} already exists.")


# -- clones and RAM shares of clusters --------------------------------------------------------------------------

#: Cross-account clones one cluster (with its clones) may have, each in a different account.
MAX_CROSS_ACCOUNT_CLONES = 15


def check_clone_source_state(identifier: str, *, status: str, instances: int, engine_mode: str | None = None) -> None:
    """Rules `clone-source-available` and `clone-needs-instance`: `instances` counts the DB instances of the
    source cluster that are not being deleted (Aurora Serverless v1, EngineMode serverless, has none)."""
    if status != "available":
        raise RuleViolation(
            "InvalidDBClusterStateFault",
            f"DB cluster {identifier} is in state {status}; it must be available to be cloned.",
        )
    if instances < 1 and engine_mode != "serverless":
        raise RuleViolation(
            "InvalidDBClusterStateFault",
            f"DB cluster {identifier} has no DB instance: only a cluster with at least one DB instance can be "
            "cloned.",
        )


def check_clone_region(identifier: str, *, source_region: str, region: str) -> None:
    """Rule `clone-same-region`."""
    if source_region != region:
        raise RuleViolation(
            "DBClusterNotFoundFault",
            f"DBCluster {identifier} not found in {region}: a clone must be created in its source cluster's region "
            f"({source_region}).",
            status=404,
        )


def check_shared_cluster_visible(identifier: str, visible: bool) -> None:
    """Rule `shared-cluster-visible`: `visible` when an ACTIVE share of the owner gives the caller's account
    the cluster and the caller's association is ASSOCIATED."""
    if not visible:
        raise RuleViolation("DBClusterNotFoundFault", f"DBCluster {identifier} not found.", status=404)


def check_cross_account_clone(
    identifier: str, *, restore_type: str | None, engine_mode: str | None, encrypted: bool,
    key_id: str | None, key_manager: str | None, caller_account: str, key_account: str,
    key_allowed_accounts: Iterable[str],
) -> None:
    """Rules `cross-account-copy-on-write`, `cross-account-not-serverless` and `cross-account-clone-key`, for
    a source cluster of another account. `key_manager` is "AWS" for aws/rds (and for an encrypted cluster without
    a key of its own)."""
    if restore_type != "copy-on-write":
        raise RuleViolation(
            "InvalidParameterCombination",
            f"DB cluster {identifier} belongs to another account: it can only be cloned (RestoreType "
            "copy-on-write).",
        )
    if engine_mode == "serverless":
        raise RuleViolation(
            "InvalidParameterCombination",
            f"DB cluster {identifier} is Aurora Serverless v1 (EngineMode serverless), which can't be cloned "
            "across accounts.",
        )
    if not encrypted:
        return
    if key_manager == "AWS":
        raise RuleViolation(
            "KMSKeyNotAccessibleFault",
            f"DB cluster {identifier} is encrypted with the default AWS managed key (aws/rds), which can't be used "
            "by another account: a cross-account clone needs a customer managed key.",
        )
    check_key_access(
        key_id=key_id or "", key_account=key_account, caller_account=caller_account,
        allowed_accounts=key_allowed_accounts,
    )


def check_cross_account_clone_limits(identifier: str, *, clones_of_source: int, clones_in_account: int) -> None:
    """Rule `cross-account-clone-limit`: the live cross-account clones of the source (and of its clones), all
    accounts together, and those in the caller's account."""
    if clones_in_account >= 1:
        raise RuleViolation(
            "DBClusterQuotaExceededFault",
            f"This account already has a cross-account clone of DB cluster {identifier}: an account can have one "
            "cross-account clone of a cluster (delete it first).",
            status=403,
        )
    if clones_of_source >= MAX_CROSS_ACCOUNT_CLONES:
        raise RuleViolation(
            "DBClusterQuotaExceededFault",
            f"DB cluster {identifier} already has {clones_of_source} cross-account clones, the most it can have "
            f"({MAX_CROSS_ACCOUNT_CLONES}).",
            status=403,
        )


def check_not_a_shared_clone(identifier: str, cross_account_clone: bool) -> None:
    """Rule `no-clone-of-shared-clone`."""
    if cross_account_clone:
        raise RuleViolation(
            "InvalidDBClusterStateFault",
            f"DB cluster {identifier} is a cross-account clone: it can't be cloned or shared again.",
        )


def check_ram_resource_owned(resource_arn: str, owned: bool) -> None:
    """Rule `ram-share-own-resource`: `owned` when the resource exists in the share's region and account."""
    if not owned:
        raise RuleViolation(
            "UnknownResourceException",
            f"The resource {resource_arn} could not be found in the resource share's account and region.",
        )


def check_ram_external_principal(principal: str, *, allow_external: bool, same_organization: bool) -> None:
    """Rule `ram-external-principals`."""
    if not allow_external and not same_organization:
        raise RuleViolation(
            "OperationNotPermittedException",
            f"Principal {principal} is not in your organization, and the resource share does not allow external "
            "principals (allowExternalPrincipals false).",
        )


def check_client_token(token: str, same_parameters: bool) -> None:
    """Rule `ram-client-token`: a token seen before must come with the same parameters."""
    if not same_parameters:
        raise RuleViolation(
            "IdempotentParameterMismatchException",
            f"The client token {token} was already used with other parameters.",
        )
