"""The IAM policies grant exactly what the operator used across the e2e run (simulator request logs; under
pytest-xdist, of every worker's simulator).

The log shows actions only: that destructive actions are conditioned on tags or limited to named resources is
checked in tests/unit/test_iam_policy.py."""

import pytest
from restores import ALLOWED_ROLE_PATTERN
from session_usage import operator_actions

from aurora_restore.aws.iam_policy import compare, operator_policy, source_role_policy

OPERATOR_ACCOUNT = "123456789012"
SOURCE_ACCOUNT = "222222222222"
MINIMUM_E2E_TESTS = 20  # below this the session did not exercise everything (e.g. `-k` picked a few tests)


def other_workers_actions(usages: list[dict], account: str) -> set[str]:
    """What the operator called in `account` in the other pytest-xdist workers' sessions (each has a simulator)."""
    return {action for usage in usages for action in usage["aws_actions"].get(account, [])}


@pytest.mark.after_all_e2e
def test_operator_policy_matches_what_the_operator_used(simulator, request, other_workers_usage):
    if request.session.testscollected < MINIMUM_E2E_TESTS:
        pytest.skip("needs the whole e2e suite in this session")
    used = operator_actions(simulator, OPERATOR_ACCOUNT) | other_workers_actions(other_workers_usage, OPERATOR_ACCOUNT)
    events_queue = f"http://127.0.0.1/{OPERATOR_ACCOUNT}/rds-events"  # test_events.py's queue is the operator's
    missing, unused = compare(operator_policy(assumable_roles=[ALLOWED_ROLE_PATTERN], events_queue_url=events_queue),
                              used)
    assert missing == set(), f"used but not granted: {sorted(missing)}"
    assert unused == set(), f"granted but never used: {sorted(unused)}"


@pytest.mark.after_all_e2e
def test_source_role_policy_matches_what_the_source_role_used(simulator, request, other_workers_usage):
    if request.session.testscollected < MINIMUM_E2E_TESTS:
        pytest.skip("needs the whole e2e suite in this session")
    used = operator_actions(simulator, SOURCE_ACCOUNT) | other_workers_actions(other_workers_usage, SOURCE_ACCOUNT)
    missing, unused = compare(source_role_policy(), used)
    assert missing == set(), f"used but not granted: {sorted(missing)}"
    assert unused == set(), f"granted but never used: {sorted(unused)}"
