"""The usage comparison catches one missing and one extra permission (what the e2e audit relies on), and every
destructive permission is narrowed by a condition or to named resources (what the audit cannot see)."""

import copy
import json
import re

import pytest

from aurora_restore.aws import iam_policy
from aurora_restore.aws.iam_policy import (
    _statement,
    actions_of,
    compare,
    operator_policy,
    source_role_policy,
    trust_policy,
)
from aurora_restore.cli import main
from aurora_restore.steps.context import MANAGED_BY_TAG, MANAGED_BY_VALUE
from aurora_restore.steps.policy import REPLACEABLE_TAG

ACCOUNT = "123456789012"
# Calls that destroy, change or reveal what may not be the operator's: they need a Condition or named resources.
DESTRUCTIVE_VERBS = ("Delete", "Remove", "Stop", "Reboot", "Failover", "Revoke")
DESTRUCTIVE_ACTIONS = {"rds:ModifyDBCluster", "rds:ModifyDBInstance", "secretsmanager:GetSecretValue",
                       "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret", "kms:ScheduleKeyDeletion"}


def is_destructive(action: str) -> bool:
    return action in DESTRUCTIVE_ACTIONS or action.split(":", 1)[1].startswith(DESTRUCTIVE_VERBS)


def names_something(resource: str) -> bool:
    """`arn:...:cluster-snapshot:*-final-*` or `...:secret:aurora-restore/*` do; `*` and `...:cluster:*` do not."""
    if resource == "*":
        return False
    kind_and_name = resource.split(":", 5)[-1]  # `cluster:*`, `key/*`, `secret:aurora-restore/*`
    name = re.split(r"[:/]", kind_and_name, maxsplit=1)[-1]
    return name.strip("*?") != ""


def unguarded_destructive_statements(policy: dict) -> list[str]:
    """The Sids of statements that grant a destructive action with neither a Condition nor named resources."""
    return [
        statement.get("Sid", "?")
        for statement in policy["Statement"]
        if any(is_destructive(action) for action in statement["Action"])
        and not statement.get("Condition")
        and not all(names_something(resource) for resource in statement["Resource"])
    ]


def printed(*args: str) -> dict:
    """The operator policy as `aurora-restore iam-policy` prints it."""
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        assert main(["iam-policy", "--account", ACCOUNT, *args]) == 0
    return json.loads(out.getvalue())


def statements_granting(policy: dict, action: str, resource_kind: str) -> list[dict]:
    return [s for s in policy["Statement"] if action in s["Action"]
            and any(f":{resource_kind}:" in r or r == "*" for r in s["Resource"])]


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
                                 "secretsmanager:TagResource", "rds:CreateDBClusterSnapshot"}
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


# --- destructive permissions are conditioned ---------------------------------------------------------------------


@pytest.mark.parametrize("policy", [
    operator_policy(),
    operator_policy(ACCOUNT, assumable_roles=["arn:aws:iam::222222222222:role/restore-*"]),
    operator_policy(ACCOUNT, secrets_prefix="", secrets_tag=("team", "db")),
    source_role_policy(),
], ids=["default", "assumable-roles", "secrets-tag", "source-role"])
def test_every_destructive_statement_has_a_condition_or_named_resources(policy):
    assert unguarded_destructive_statements(policy) == []


@pytest.mark.parametrize("action, resources", [
    ("rds:DeleteDBCluster", ["*"]),
    ("rds:DeleteDBInstance", [f"arn:aws:rds:*:{ACCOUNT}:db:*"]),
    ("rds:ModifyDBCluster", [f"arn:aws:rds:*:{ACCOUNT}:cluster:*"]),
    ("rds:RemoveTagsFromResource", [f"arn:aws:rds:*:{ACCOUNT}:cluster:*"]),
    ("secretsmanager:GetSecretValue", [f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:aurora-restore/*",
                                       f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:*"]),
])
def test_the_check_refuses_an_unconditioned_destructive_statement(action, resources):
    policy = copy.deepcopy(operator_policy(ACCOUNT))
    policy["Statement"].append(_statement("Unguarded", [action], resources))
    assert unguarded_destructive_statements(policy) == ["Unguarded"]


def test_the_check_refuses_a_tag_condition_taken_away():
    policy = copy.deepcopy(operator_policy(ACCOUNT))
    replace = next(s for s in policy["Statement"] if s["Sid"] == "ReplaceTaggedClusters")
    del replace["Condition"]
    assert unguarded_destructive_statements(policy) == ["ReplaceTaggedClusters"]


@pytest.mark.parametrize("action, kind", [
    ("rds:DeleteDBCluster", "cluster"), ("rds:ModifyDBCluster", "cluster"), ("rds:DeleteDBInstance", "db"),
])
def test_clusters_and_instances_are_changed_only_when_the_operator_made_them_or_the_owner_allows_it(action, kind):
    conditions = [s.get("Condition") for s in statements_granting(printed(), action, kind)]
    assert sorted(conditions, key=json.dumps) == sorted(
        [{"StringEquals": {"aws:ResourceTag/managed-by": "aurora-restore-operator"}},
         {"StringEquals": {"aws:ResourceTag/dbrestore.io/replaceable": "true"}}], key=json.dumps)


def test_the_final_snapshot_a_delete_takes_is_allowed_by_its_name_only():
    final = [s for s in printed()["Statement"] if s["Sid"] == "FinalSnapshotOfDelete"]
    assert final[0]["Resource"] == [f"arn:aws:rds:*:{ACCOUNT}:cluster-snapshot:*-final-????????"]
    assert "Condition" not in final[0]


def test_the_tags_conditions_test_are_the_ones_the_operator_uses():
    assert (iam_policy.MANAGED_BY_TAG, iam_policy.MANAGED_BY_VALUE) == (MANAGED_BY_TAG, MANAGED_BY_VALUE)
    assert iam_policy.REPLACEABLE_TAG == REPLACEABLE_TAG


def test_tagging_clusters_and_instances_never_sets_the_replaceable_tag():
    for kind in ("cluster", "db"):
        for statement in statements_granting(printed(), "rds:AddTagsToResource", kind):
            condition = statement["Condition"]
            assert condition["ForAllValues:StringNotEqualsIgnoreCase"] == {"aws:TagKeys": ["dbrestore.io/replaceable"]}
            assert condition["StringEquals"] == {"aws:RequestTag/managed-by": "aurora-restore-operator"}
    assert "rds:RemoveTagsFromResource" not in actions_of(printed())


# --- Secrets Manager reads --------------------------------------------------------------------------------------


def secret_reads(policy: dict) -> list[tuple[list[str], dict | None]]:
    return [(s["Resource"], s.get("Condition")) for s in policy["Statement"]
            if "secretsmanager:GetSecretValue" in s["Action"]]


def test_secrets_are_read_only_under_the_default_prefix_and_the_ones_rds_manages():
    assert secret_reads(printed()) == [
        ([f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:aurora-restore/*"], None),
        ([f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:rds!cluster-*"], None),
    ]


def test_a_prefix_and_a_tag_narrow_the_reads_together():
    reads = secret_reads(printed("--secrets-prefix", "restores/prod/", "--secrets-tag", "team=db=a"))
    assert reads[0] == ([f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:restores/prod/*"],
                        {"StringEquals": {"secretsmanager:ResourceTag/team": "db=a"}})
    assert reads[1] == ([f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:rds!cluster-*"], None)


def test_a_tag_alone_reads_secrets_of_any_name_that_carry_it():
    reads = secret_reads(printed("--secrets-prefix", "", "--secrets-tag", "aurora-restore=allowed"))
    assert reads[0] == ([f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:*"],
                        {"StringEquals": {"secretsmanager:ResourceTag/aurora-restore": "allowed"}})


@pytest.mark.parametrize("args, error", [
    (["--secrets-prefix", ""], "would allow reading every secret"),
    (["--secrets-prefix", "team/*"], "a secret name has only"),
    (["--secrets-tag", "team"], "--secrets-tag takes KEY=VALUE"),
    (["--secrets-tag", "=db"], "needs a key"),
])
def test_options_that_would_widen_or_break_the_policy_are_refused(capsys, args, error):
    assert main(["iam-policy", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and error in captured.err
