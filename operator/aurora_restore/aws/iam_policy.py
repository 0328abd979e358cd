"""The least-privilege IAM policies the operator needs, in one place, and how to check them against usage.

`operator_policy` is for the operator's own role (IRSA), `source_role_policy` for a role in another account that
shares snapshots with it, `trust_policy` lets the operator's ServiceAccount assume its role. The actions listed
are exactly the API calls the operator makes (tests/e2e proves it from the simulator's request log), plus the
permissions AWS checks on the side of some calls (IMPLIED_BY), each tied to the call that needs it. What the
request log cannot show, the conditions, docs/security.md explains: destructive calls only on resources tagged
by the operator or tagged replaceable by the account owner, secrets only under a prefix (or with a tag).
"""

import json
import re
from typing import Any

from .queue_address import QueueAddress

# The tags the conditions test: the operator's own (steps/context.py MANAGED_BY_TAG/VALUE), on everything it
# creates, and the one the account owner sets on a cluster the operator may replace (steps/policy.py), which the
# operator never sets.
MANAGED_BY_TAG, MANAGED_BY_VALUE = "managed-by", "aurora-restore-operator"
REPLACEABLE_TAG, REPLACEABLE_VALUE = "dbrestore.io/replaceable", "true"
MANAGED_BY_CONDITION = {"StringEquals": {f"aws:ResourceTag/{MANAGED_BY_TAG}": MANAGED_BY_VALUE}}
REPLACEABLE_CONDITION = {"StringEquals": {f"aws:ResourceTag/{REPLACEABLE_TAG}": REPLACEABLE_VALUE}}
REQUEST_TAG_CONDITION = {"StringEquals": {f"aws:RequestTag/{MANAGED_BY_TAG}": MANAGED_BY_VALUE}}
# Compared without case, as IAM compares condition key names (the <key> of aws:ResourceTag/<key> among them).
NEVER_TAGS_REPLACEABLE = {"ForAllValues:StringNotEqualsIgnoreCase": {"aws:TagKeys": [REPLACEABLE_TAG]}}

# Where Secrets Manager passwords (spec.masterPassword.secretsManagerSecretId) may be read by default.
DEFAULT_SECRETS_PREFIX = "aurora-restore/"
# RDS names the master secrets it manages (manageInSecretsManager) `rds!cluster-<uuid>`; users cannot create
# names with "!", so the pattern covers only secrets RDS made.
RDS_MANAGED_SECRETS = "rds!cluster-*"
SECRET_NAME_CHARACTERS = re.compile(r"^[A-Za-z0-9/_+=.@-]*$")  # what CreateSecret accepts in a Name
# Final snapshots of the replaced cluster are named `<target>-final-<uid8>` (steps/names.py final_snapshot).
FINAL_SNAPSHOTS = "*-final-????????"  # names.final_snapshot: <target>-final-<uid8>

# The RAM shares of cross-account clones are named `aurora-restore-<namespace>-<name>-<uid8>` (steps/clone.py
# share_name).
CLUSTER_SHARE_NAMES = "aurora-restore-*"

# Permissions AWS checks in addition to the action called, and the calls that need them.
IMPLIED_BY: dict[str, set[str]] = {
    # Creating with Tags= needs the tagging permission too; DeleteDBCluster lists it as a dependent action (the
    # final snapshot copies the cluster's tags when CopyTagsToSnapshot is set).
    "rds:AddTagsToResource": {"rds:CopyDBClusterSnapshot", "rds:RestoreDBClusterFromSnapshot",
                              "rds:RestoreDBClusterToPointInTime", "rds:CreateDBInstance", "rds:DeleteDBCluster",
                              "rds:CreateDBClusterSnapshot"},
    # DeleteDBCluster with FinalDBSnapshotIdentifier takes a snapshot: a dependent action in the Service
    # Authorization Reference.
    "rds:CreateDBClusterSnapshot": {"rds:DeleteDBCluster"},
    # Copies and restores with a customer-managed key let RDS use the key through a grant.
    "kms:CreateGrant": {"rds:CopyDBClusterSnapshot", "rds:RestoreDBClusterFromSnapshot",
                        "rds:RestoreDBClusterToPointInTime"},
    # CreateResourceShare with tags needs the tagging permission too (a cross-account clone's share).
    "ram:TagResource": {"ram:CreateResourceShare"},
    # ManageMasterUserPassword makes RDS create and tag a secret on the caller's behalf.
    "secretsmanager:CreateSecret": {"rds:ModifyDBCluster"},
    "secretsmanager:TagResource": {"rds:ModifyDBCluster"},
}


def _statement(sid: str, actions: list[str], resources: list[str], condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def operator_policy(
    account: str = "*",
    partition: str = "aws",
    assumable_roles: list[str] | None = None,
    secrets_prefix: str = DEFAULT_SECRETS_PREFIX,
    secrets_tag: tuple[str, str] | None = None,
    events_queue_url: str | None = None,
) -> dict:
    """The policy of the operator's own role, in the target account.

    Destructive calls are allowed only on what carries the operator's tag or the account owner's replaceable
    tag; Secrets Manager reads only under `secrets_prefix` (and, given `secrets_tag`, only secrets with that
    tag) plus the master secrets RDS manages. With `events_queue_url` (AURORA_RESTORE_EVENTS_QUEUE_URL), it also
    reads and deletes the messages of that one queue. Raises ValueError for a prefix no secret name can have, for
    neither a prefix nor a tag (which would allow reading every secret), or for a URL that is no queue URL.
    """
    if not SECRET_NAME_CHARACTERS.match(secrets_prefix):
        raise ValueError(f"secrets prefix {secrets_prefix!r}: a secret name has only letters, digits and /_+=.@-")
    if not secrets_prefix and not secrets_tag:
        raise ValueError("an empty secrets prefix without a secrets tag would allow reading every secret")
    if secrets_tag is not None and not secrets_tag[0]:
        raise ValueError("the secrets tag needs a key (KEY=VALUE)")
    rds = f"arn:{partition}:rds:*:{account}"
    secret = f"arn:{partition}:secretsmanager:*:{account}:secret"
    clusters, instances, snapshots = f"{rds}:cluster:*", f"{rds}:db:*", f"{rds}:cluster-snapshot:*"
    secrets_condition = ({"StringEquals": {f"secretsmanager:ResourceTag/{secrets_tag[0]}": secrets_tag[1]}}
                         if secrets_tag else None)
    statements = [
        _statement(
            "Describe",  # RDS, EC2 and KMS describe calls without resource-level permissions
            ["rds:DescribeDBClusters", "rds:DescribeDBClusterSnapshots", "rds:DescribeDBInstances",
             "rds:DescribeDBEngineVersions", "rds:DescribeDBSubnetGroups", "rds:DescribeDBClusterParameterGroups",
             "rds:DescribeDBParameterGroups", "rds:DescribeAccountAttributes", "ec2:DescribeSecurityGroups"],
            ["*"],
        ),
        _statement("DescribeKeys", ["kms:DescribeKey"], [f"arn:{partition}:kms:*:{account}:key/*"]),
        _statement(
            "RestoreAndCreate",
            ["rds:RestoreDBClusterFromSnapshot", "rds:RestoreDBClusterToPointInTime", "rds:CreateDBInstance",
             "rds:CopyDBClusterSnapshot"],
            [clusters, snapshots, instances, f"{rds}:subgrp:*", f"{rds}:cluster-pg:*", f"{rds}:pg:*",
             f"{rds}:og:*"],
        ),
        # AddTagsToResource takes aws:RequestTag/<key> and aws:TagKeys (Service Authorization Reference): every
        # tagging carries the operator's tag and never the replaceable tag, which only the account owner sets.
        _statement("TagOnCreate", ["rds:AddTagsToResource"], [clusters, snapshots, instances],
                   {**REQUEST_TAG_CONDITION, **NEVER_TAGS_REPLACEABLE}),
        # The resource types cluster, db and cluster-snapshot take aws:ResourceTag/<key> (also spelt
        # rds:cluster-tag/<key>, rds:db-tag/<key>, rds:cluster-snapshot-tag/<key>); ModifyDBCluster needs only
        # cluster, DeleteDBInstance db, DeleteDBClusterSnapshot cluster-snapshot. So the operator changes and
        # deletes only what it created (its temporary and restored clusters, their instances, its copies)...
        _statement("ChangeOwnResources",
                   ["rds:ModifyDBCluster", "rds:DeleteDBCluster", "rds:DeleteDBInstance",
                    "rds:DeleteDBClusterSnapshot", "rds:CreateDBClusterSnapshot"],
                   [clusters, instances, snapshots], MANAGED_BY_CONDITION),
        # ...and what the account owner tagged replaceable: the existing target of a Replace, renamed away by the
        # swap (ModifyDBCluster), then its instances and itself deleted by RetiringPrevious.
        _statement("ReplaceTaggedClusters",
                   ["rds:ModifyDBCluster", "rds:DeleteDBCluster", "rds:DeleteDBInstance",
                    "rds:CreateDBClusterSnapshot"],
                   [clusters, instances], REPLACEABLE_CONDITION),
        # DeleteDBCluster also needs cluster-snapshot: the final snapshot it creates, which has no tags yet to
        # test, so it is limited by name; taking it needs CreateDBClusterSnapshot, and AddTagsToResource when the
        # cluster copies its tags to snapshots.
        _statement("FinalSnapshotOfDelete",
                   ["rds:DeleteDBCluster", "rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"],
                   [f"{rds}:cluster-snapshot:{FINAL_SNAPSHOTS}"]),
        # spec.output.snapshot: the snapshot of a cluster the operator restored (the cluster is covered by
        # ChangeOwnResources) is created with the operator's tag, then shared; its sharing is read and changed only
        # on snapshots tagged so.
        _statement("CreateOutputSnapshots", ["rds:CreateDBClusterSnapshot"], [snapshots], REQUEST_TAG_CONDITION),
        _statement("ShareOutputSnapshots",
                   ["rds:ModifyDBClusterSnapshotAttribute", "rds:DescribeDBClusterSnapshotAttributes"], [snapshots],
                   MANAGED_BY_CONDITION),
        _statement("UseKeysThroughRds", ["kms:CreateGrant"], [f"arn:{partition}:kms:*:{account}:key/*"],
                   {"StringLike": {"kms:ViaService": "rds.*.amazonaws.com"}, "Bool": {"kms:GrantIsForAWSResource": "true"}}),
        # GetSecretValue acts on the Secret resource type, which takes secretsmanager:ResourceTag/<key>.
        _statement("ReadMasterPasswords", ["secretsmanager:GetSecretValue"], [f"{secret}:{secrets_prefix}*"],
                   secrets_condition),
        _statement("RdsManagedMasterPasswords", ["secretsmanager:GetSecretValue", "secretsmanager:CreateSecret",
                                                 "secretsmanager:TagResource"],
                   [f"{secret}:{RDS_MANAGED_SECRETS}"]),
    ]
    # spec.source.clone from another account: the target side lists the invitations to the source cluster's RAM
    # share and accepts only one to a share named as the operator names its shares (AcceptResourceShareInvitation
    # takes ram:ResourceShareName, Service Authorization Reference; the invitation itself has no tags).
    statements.append(_statement("FindClusterShareInvitations", ["ram:GetResourceShareInvitations"], ["*"]))
    statements.append(_statement("AcceptClusterShares", ["ram:AcceptResourceShareInvitation"], ["*"],
                                 {"StringLike": {"ram:ResourceShareName": CLUSTER_SHARE_NAMES}}))
    # spec.notification: the target side publishes (steps/notify.py). Which topics a namespace may name is the
    # AuroraRestorePolicy's snsTopics; narrow the Resource to those topics where the account has other topics.
    statements.append(_statement("PublishNotifications", ["sns:Publish"], [f"arn:{partition}:sns:*:{account}:*"]))
    if events_queue_url:
        # Event-driven wake-ups (aws/rds_events.py): long-poll the queue, delete what was received
        # (DeleteMessageBatch is authorised as sqs:DeleteMessage, BATCH_PERMISSIONS).
        statements.append(_statement("ReadRdsEvents", ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                                     [QueueAddress.parse(events_queue_url).arn(partition)]))
    if assumable_roles:
        statements.append(_statement("AssumeAllowedRoles", ["sts:AssumeRole"], assumable_roles))
    return {"Version": "2012-10-17", "Statement": statements}


def source_role_policy(account: str = "*", partition: str = "aws") -> dict:
    """The policy of a role in the source account that the operator assumes to share snapshots, or for a clone
    (spec.source.clone) to describe the cluster and share it with the target account through AWS RAM."""
    rds = f"arn:{partition}:rds:*:{account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("Describe", ["rds:DescribeDBClusterSnapshots", "rds:DescribeDBClusterSnapshotAttributes",
                                    "rds:DescribeDBClusters"], ["*"]),
            _statement("DescribeKeys", ["kms:DescribeKey"], [f"arn:{partition}:kms:*:{account}:key/*"]),
            _statement("CopyAutomatedToShare", ["rds:CopyDBClusterSnapshot"],
                       [f"{rds}:cluster-snapshot:*"]),
            _statement("TagOnCreate", ["rds:AddTagsToResource"], [f"{rds}:cluster-snapshot:*"],
                       REQUEST_TAG_CONDITION),
            _statement("Share", ["rds:ModifyDBClusterSnapshotAttribute"], [f"{rds}:cluster-snapshot:*"]),
            _statement("DeleteOwnCopies", ["rds:DeleteDBClusterSnapshot"], [f"{rds}:cluster-snapshot:*"],
                       MANAGED_BY_CONDITION),
            _statement("UseKeysThroughRds", ["kms:CreateGrant"], [f"arn:{partition}:kms:*:{account}:key/*"],
                       {"StringLike": {"kms:ViaService": "rds.*.amazonaws.com"},
                        "Bool": {"kms:GrantIsForAWSResource": "true"}}),
            # spec.source.clone: share the source cluster with the target account through AWS RAM (tagged with the
            # operator's tag), find the share again by its tags, and delete only a share carrying that tag.
            _statement("ShareClustersForClones", ["ram:CreateResourceShare", "ram:TagResource"], ["*"],
                       REQUEST_TAG_CONDITION),
            _statement("FindClusterShares", ["ram:GetResourceShares", "ram:GetResourceShareAssociations"], ["*"]),
            _statement("DeleteOwnClusterShares", ["ram:DeleteResourceShare"],
                       [f"arn:{partition}:ram:*:{account}:resource-share/*"], MANAGED_BY_CONDITION),
        ],
    }


def trust_policy(oidc_provider_arn: str, namespace: str, service_account: str) -> dict:
    """IRSA: only this ServiceAccount, with the STS audience, may assume the operator's role."""
    issuer = oidc_provider_arn.split(":oidc-provider/", 1)[-1]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


# Calls AWS never checks against identity policies (the trust policy governs AssumeRoleWithWebIdentity).
NEEDS_NO_PERMISSION = frozenset({"sts:GetCallerIdentity", "sts:AssumeRoleWithWebIdentity"})
# Batch calls authorised by their single call's permission: SQS has no permission of its own for the batch
# actions (SQS Developer Guide, "Amazon SQS batch actions").
BATCH_PERMISSIONS = {"sqs:DeleteMessageBatch": "sqs:DeleteMessage", "sqs:SendMessageBatch": "sqs:SendMessage",
                     "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility"}


def actions_of(policy: dict) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def compare(policy: dict, used: set[str]) -> tuple[set[str], set[str]]:
    """(actions used but not granted, actions granted but neither used nor implied by a used one)."""
    used = {BATCH_PERMISSIONS.get(action, action) for action in used - NEEDS_NO_PERMISSION}
    granted = actions_of(policy)
    implied = {action for action, needed_by in IMPLIED_BY.items() if needed_by & used}
    return used - granted, granted - used - implied


def render(policy: dict) -> str:
    return json.dumps(policy, indent=2)
