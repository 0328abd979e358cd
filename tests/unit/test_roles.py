"""Which IAM roles a restore may name is the operator's allowedRoles setting per namespace, checked before any
AWS call."""

import pytest

from aurora_restore.api.phase import Phase

from .conftest import SOURCE_ACCOUNT, SOURCE_REGION, SOURCE_ROLE, SNAPSHOT

TARGET_ROLE = "arn:aws:iam::123456789012:role/restore-target"
FROM_SOURCE_ACCOUNT = {"source": {"accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE}}


@pytest.fixture
def foreign_snapshot(cloud):
    """SNAPSHOT, unencrypted, in the source account's SOURCE_REGION."""
    return cloud.account(SOURCE_ACCOUNT).rds(SOURCE_REGION).add_snapshot(SNAPSHOT)


@pytest.mark.parametrize(
    ("changes", "field", "role", "allowed"),
    [
        (FROM_SOURCE_ACCOUNT, "spec.source.roleArn", SOURCE_ROLE, []),
        (FROM_SOURCE_ACCOUNT, "spec.source.roleArn", SOURCE_ROLE, [f"arn:aws:iam::{SOURCE_ACCOUNT}:role/admin-*"]),
        ({"target": {"roleArn": TARGET_ROLE}}, "spec.target.roleArn", TARGET_ROLE, ["arn:aws:iam::*:role/other"]),
        (
            {**FROM_SOURCE_ACCOUNT, "target": {"roleArn": TARGET_ROLE}},
            "spec.target.roleArn",
            TARGET_ROLE,
            [SOURCE_ROLE],
        ),
    ],
    ids=["no-role-allowed", "source-role-not-matched", "target-role-not-matched", "only-the-source-role-allowed"],
)
def test_a_role_not_allowed_fails_in_pending_before_any_aws_call(restore, cloud, changes, field, role, allowed):
    run = restore(changes, allowed_roles=allowed)
    status = run.run()
    assert status.phase == Phase.FAILED
    assert (status.failure.reason, status.failure.phase) == ("RoleNotAllowed", Phase.PENDING)
    assert status.failure.message.startswith(f"{field} {role!r} is not allowed in namespace team-a: ")
    assert "allowedRoles" in status.failure.message
    assert cloud.calls == []
    assert run.phases == [Phase.PENDING, Phase.CLEANING_UP_AFTER_FAILURE, Phase.FAILED]


def test_a_role_allowed_by_a_glob_proceeds(restore, cloud, foreign_snapshot):
    run = restore(FROM_SOURCE_ACCOUNT, allowed_roles=[f"arn:aws:iam::{SOURCE_ACCOUNT}:role/restore-*"])
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert run.phases[:3] == [Phase.PENDING, Phase.RESOLVING_SNAPSHOT, Phase.PREFLIGHT]


def test_both_roles_allowed_proceed(restore, foreign_snapshot):
    run = restore(
        {**FROM_SOURCE_ACCOUNT, "target": {"roleArn": TARGET_ROLE}},
        allowed_roles=["arn:aws:iam::*:role/restore-*"],
    )
    assert run.run().phase == Phase.SUCCEEDED


def test_no_role_named_needs_no_allowance(restore, cloud):
    assert restore(allowed_roles=[]).run().phase == Phase.SUCCEEDED
