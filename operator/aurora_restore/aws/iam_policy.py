"""The least-privilege IAM policies the operator needs, in one place, and how to check them against usage.

`operator_policy` is for the operator's own role (IRSA), `source_role_policy` for a role in another account that
shares snapshots with it, `trust_policy` lets the operator's ServiceAccount assume its role. The actions listed
are exactly the API calls the operator makes (tests/e2e proves it from the simulator's request log), plus the
permissions AWS checks on the side of some calls (IMPLIED_BY), each tied to the call that needs it.
"""

import json
from typing import Any

MANAGED_BY_CONDITION = {"StringEquals": {"aws:ResourceTag/managed-by": "aurora-restore-operator"}}
REQUEST_TAG_CONDITION = {"StringEquals": {"aws:RequestTag/managed-by": "aurora-restore-operator"}}

# Permissions AWS checks in addition to the action called, and the calls that need them.
IMPLIED_BY: dict[str, set[str]] = {
    # Creating with Tags= needs the tagging permission too.
    "rds:AddTagsToResource": {"rds:CopyDBClusterSnapshot", "rds:RestoreDBClusterFromSnapshot",
                              "rds:RestoreDBClusterToPointInTime", "rds:CreateDBInstance"},
    # Copies and restores with a customer-managed key let RDS use the key through a grant.
    "kms:CreateGrant": {"rds:CopyDBClusterSnapshot", "rds:RestoreDBClusterFromSnapshot",
                        "rds:RestoreDBClusterToPointInTime"},
    # ManageMasterUserPassword makes RDS create and tag a secret on the caller's behalf.
    "secretsmanager:CreateSecret": {"rds:ModifyDBCluster"},
    "secretsmanager:TagResource": {"rds:ModifyDBCluster"},
}


def _statement(sid: str, actions: list[str], resources: list[str], condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def operator_policy(account: str = "*", partition: str = "aws", assumable_roles: list[str] | None = None) -> dict:
    """The policy of the operator's own role, in the target account."""
    rds = f"arn:{partition}:rds:*:{account}"
    statements = [
        _statement(
            "Describe",  # RDS, EC2 and KMS describe calls without resource-level permissions
            ["rds:DescribeDBClusters", "rds:DescribeDBClusterSnapshots", "rds:DescribeDBInstances",
             "rds:DescribeDBEngineVersions", "rds:DescribeDBSubnetGroups", "rds:DescribeDBClusterParameterGroups",
             "rds:DescribeDBParameterGroups", "ec2:DescribeSecurityGroups"],
            ["*"],
        ),
        _statement("DescribeKeys", ["kms:DescribeKey"], [f"arn:{partition}:kms:*:{account}:key/*"]),
        _statement(
            "RestoreAndCreate",
            ["rds:RestoreDBClusterFromSnapshot", "rds:RestoreDBClusterToPointInTime", "rds:CreateDBInstance",
             "rds:CopyDBClusterSnapshot"],
            [f"{rds}:cluster:*", f"{rds}:cluster-snapshot:*", f"{rds}:db:*", f"{rds}:subgrp:*",
             f"{rds}:cluster-pg:*", f"{rds}:pg:*", f"{rds}:og:*"],
        ),
        _statement("TagOnCreate", ["rds:AddTagsToResource"],
                   [f"{rds}:cluster:*", f"{rds}:cluster-snapshot:*", f"{rds}:db:*"], REQUEST_TAG_CONDITION),
        # Only what the operator restored carries its tag: it modifies and cleans up nothing else.
        _statement("ChangeOwnResources", ["rds:ModifyDBCluster", "rds:DeleteDBClusterSnapshot"],
                   [f"{rds}:cluster:*", f"{rds}:cluster-snapshot:*"], MANAGED_BY_CONDITION),
        # existingTarget.policy Replace renames away (the swap), then deletes, the user's cluster it was told to
        # replace (not tagged).
        _statement("ReplaceTarget", ["rds:ModifyDBCluster", "rds:DeleteDBInstance", "rds:DeleteDBCluster"],
                   [f"{rds}:cluster:*", f"{rds}:db:*", f"{rds}:cluster-snapshot:*"]),
        _statement("UseKeysThroughRds", ["kms:CreateGrant"], [f"arn:{partition}:kms:*:{account}:key/*"],
                   {"StringLike": {"kms:ViaService": "rds.*.amazonaws.com"}, "Bool": {"kms:GrantIsForAWSResource": "true"}}),
        _statement("MasterPasswords", ["secretsmanager:GetSecretValue", "secretsmanager:CreateSecret",
                                       "secretsmanager:TagResource"],
                   [f"arn:{partition}:secretsmanager:*:{account}:secret:*"]),
    ]
    if assumable_roles:
        statements.append(_statement("AssumeAllowedRoles", ["sts:AssumeRole"], assumable_roles))
    return {"Version": "2012-10-17", "Statement": statements}


def source_role_policy(account: str = "*", partition: str = "aws") -> dict:
    """The policy of a role in the snapshot's account that the operator assumes to share snapshots."""
    rds = f"arn:{partition}:rds:*:{account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("Describe", ["rds:DescribeDBClusterSnapshots", "rds:DescribeDBClusterSnapshotAttributes"],
                       ["*"]),
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


def actions_of(policy: dict) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def compare(policy: dict, used: set[str]) -> tuple[set[str], set[str]]:
    """(actions used but not granted, actions granted but neither used nor implied by a used one)."""
    used = used - NEEDS_NO_PERMISSION
    granted = actions_of(policy)
    implied = {action for action, needed_by in IMPLIED_BY.items() if needed_by & used}
    return used - granted, granted - used - implied


def render(policy: dict) -> str:
    return json.dumps(policy, indent=2)
