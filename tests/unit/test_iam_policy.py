"""The usage comparison catches one missing and one extra permission (what the e2e audit relies on)."""

import copy

from aurora_restore.aws.iam_policy import (
    actions_of,
    compare,
    operator_policy,
    source_role_policy,
    trust_policy,
)


def test_no_wildcard_actions():
    for policy in (operator_policy(), source_role_policy()):
        assert all("*" not in action for action in actions_of(policy))


def test_a_missing_permission_is_reported():
    policy = operator_policy()
    used = actions_of(policy) | {"rds:StartDBCluster"}
    missing, _ = compare(policy, used)
    assert missing == {"rds:StartDBCluster"}


def test_an_extra_permission_is_reported():
    policy = copy.deepcopy(operator_policy())
    policy["Statement"][0]["Action"].append("rds:RebootDBInstance")
    used = actions_of(operator_policy())
    _, unused = compare(policy, used)
    assert unused == {"rds:RebootDBInstance"}


def test_implied_permissions_count_only_when_their_call_was_used():
    policy = operator_policy()
    used = actions_of(policy) - {"rds:AddTagsToResource", "kms:CreateGrant", "secretsmanager:CreateSecret",
                                 "secretsmanager:TagResource"}
    assert compare(policy, used) == (set(), set())
    without_copies_or_restores = used - {"rds:CopyDBClusterSnapshot", "rds:RestoreDBClusterFromSnapshot",
                                         "rds:RestoreDBClusterToPointInTime"}
    missing, unused = compare(policy, without_copies_or_restores)
    assert "kms:CreateGrant" in unused


def test_trust_policy_names_only_the_service_account():
    policy = trust_policy("arn:aws:iam::111111111111:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
                          "ops", "restorer")
    condition = policy["Statement"][0]["Condition"]["StringEquals"]
    assert condition["oidc.eks.us-east-1.amazonaws.com/id/ABC:sub"] == "system:serviceaccount:ops:restorer"
    assert condition["oidc.eks.us-east-1.amazonaws.com/id/ABC:aud"] == "sts.amazonaws.com"
