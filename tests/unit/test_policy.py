"""AuroraRestorePolicy: default deny, one policy must allow all of a restore, each field refuses what it does not
name; checked in Pending before any AWS call, in Preflight against what AWS shows, and before a replaced cluster
is deleted. (tests/e2e/test_policy.py drives the same through the real apiserver.)"""

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.steps.policy import covers, selects
from aurora_restore.api.policy import AuroraRestorePolicySpec, LabelSelector

from .test_names_and_ownership import cancel
from .conftest import PERMISSIVE_POLICY, REPLACEABLE, SNAPSHOT, SOURCE_ACCOUNT, SOURCE_REGION, SOURCE_ROLE, TARGET
from .fake_rds import ACCOUNT_ID

REPLACE = {"existingTarget": {"policy": "Replace"}}
SECRET_ARN = f"arn:aws:secretsmanager:{SOURCE_REGION}:{ACCOUNT_ID}:secret:team-a/master-AbCdEf"


def policy(**changes) -> dict:
    """The permissive policy with `changes`."""
    return {**PERMISSIVE_POLICY, **changes}


def refused(run, phase: Phase = Phase.PENDING) -> str:
    status = run.run()
    assert status.phase == Phase.FAILED, status.message
    assert (status.failure.reason, status.failure.phase) == ("NotAllowedByPolicy", phase)
    return status.failure.message


def test_a_namespace_no_policy_covers_is_refused_before_any_aws_call(restore, cloud):
    run = restore(policies={"team-b-only": policy(namespaces=["team-b"])})
    message = refused(run)
    assert message.startswith("no AuroraRestorePolicy covers namespace team-a: the policies that exist "
                              "(team-b-only) do not")
    assert cloud.calls == []
    assert run.phases == [Phase.PENDING, Phase.CLEANING_UP_AFTER_FAILURE, Phase.FAILED]


def test_no_policy_at_all_is_refused(restore, cloud):
    assert "none exists" in refused(restore(policies={}))
    assert cloud.calls == []


def test_the_allowing_policy_is_printed_in_status(restore):
    status = restore(policies={"a-permissive": PERMISSIVE_POLICY}).run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert status.policy == "a-permissive"


@pytest.mark.parametrize(
    ("field", "refusing", "allowing", "changes", "expected"),
    [
        ("targets", [{"clusterIdentifier": "qa-*"}], [{"clusterIdentifier": "stag*"}], {},
         f"spec.target.clusterIdentifier {TARGET!r} in {SOURCE_REGION} is not among its targets"),
        ("targets", [{"region": "us-*"}], [{"region": "eu-*"}], {}, "is not among its targets"),
        ("sources", [{"snapshotIdentifier": "other-*"}], [{"snapshotIdentifier": "prod-*"}], {},
         f"spec.source (region {SOURCE_REGION}, snapshot {SNAPSHOT}) is not among its sources"),
        ("sources", [{"region": "us-east-1"}], [{"region": SOURCE_REGION}], {}, "is not among its sources"),
        ("sources", [{"accountId": "999999999999"}], [{"accountId": SOURCE_ACCOUNT}],
         {"source": {"accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE}}, f"account {SOURCE_ACCOUNT}"),
        ("roles", ["arn:aws:iam::*:role/admin-*"], ["arn:aws:iam::*:role/restore-*"],
         {"source": {"accountId": SOURCE_ACCOUNT, "roleArn": SOURCE_ROLE}},
         f"spec.source.roleArn {SOURCE_ROLE!r} is not among its roles"),
        ("instanceClasses", ["db.t4g.*"], ["db.r6g.*"], {},
         "spec.target.instances.instanceClass 'db.r6g.large' is not among its instanceClasses"),
        ("maxInstances", 1, 2, {}, "spec.target.instances.count 2 is above its maxInstances 1"),
        ("secretsManagerSecrets", ["arn:aws:secretsmanager:*:*:secret:team-b/*"],
         ["arn:aws:secretsmanager:*:*:secret:team-a/*"],
         {"masterPassword": {"secretsManagerSecretId": SECRET_ARN}},
         f"spec.masterPassword.secretsManagerSecretId {SECRET_ARN!r} is not among its secretsManagerSecrets"),
    ],
)
def test_each_field_refuses_what_it_does_not_name_and_allows_what_it_does(
    restore, cloud, field, refusing, allowing, changes, expected
):
    if "accountId" in changes.get("source", {}):
        cloud.account(SOURCE_ACCOUNT).rds(SOURCE_REGION).add_snapshot(SNAPSHOT)
    message = refused(restore(changes, policies={"strict": policy(**{field: refusing})}))
    assert message.startswith("not allowed in namespace team-a by any AuroraRestorePolicy covering it: policy "
                              "strict: ")
    assert expected in message
    run = restore(changes, policies={"strict": policy(**{field: allowing})})
    run.run_until(Phase.RESTORING_CLUSTER)  # past both checks
    assert run.status.policy == "strict"


def test_a_restore_is_allowed_only_when_one_policy_allows_all_of_it(restore):
    """One policy allowing the target and another allowing the instance class do not add up."""
    policies = {
        "targets-only": policy(instanceClasses=["db.t4g.*"]),
        "classes-only": policy(targets=[{"clusterIdentifier": "qa-*"}]),
    }
    message = refused(restore(policies=policies))
    assert "policy classes-only: spec.target.clusterIdentifier" in message
    assert "policy targets-only: spec.target.instances.instanceClass" in message
    policies["both"] = policy()
    assert restore(policies=policies).run().policy == "both"


def test_a_bare_secret_name_matches_the_name_part_of_an_arn_glob(restore):
    changes = {"masterPassword": {"secretsManagerSecretId": "team-a/master"}}
    allowing = {"p": policy(secretsManagerSecrets=["arn:aws:secretsmanager:*:*:secret:team-a/*"])}
    refusing = {"p": policy(secretsManagerSecrets=["arn:aws:secretsmanager:*:*:secret:team-b/*"])}
    assert "secretsManagerSecretId 'team-a/master' is not among" in refused(restore(changes, policies=refusing))
    run = restore(changes, policies=allowing)
    run.run_until(Phase.RESTORING_CLUSTER)
    assert run.status.policy == "p"


def test_a_point_in_time_restore_needs_a_snapshot_glob_of_star(restore, cloud, source):
    source.add_cluster("prod", instances=1)
    changes = {"source": {"snapshotIdentifier": None, "pointInTime": {"clusterIdentifier": "prod",
                                                                     "useLatestRestorableTime": True}}}
    message = refused(restore(changes, policies={"p": policy(sources=[{"snapshotIdentifier": "prod-*"}])}))
    assert "spec.source (region eu-west-1, cluster prod, a point in time) is not among its sources" in message
    assert restore(changes, policies={"p": policy(sources=[{"clusterIdentifier": "prod"}])}).run().phase == \
        Phase.SUCCEEDED


def test_the_snapshots_cluster_is_checked_in_preflight_once_aws_named_it(restore, cloud):
    run = restore(policies={"p": policy(sources=[{"clusterIdentifier": "other"}])})
    message = refused(run, Phase.PREFLIGHT)
    assert f"spec.source (region {SOURCE_REGION}, account {ACCOUNT_ID}, cluster prod, snapshot {SNAPSHOT})" in message
    assert not cloud.calls_to("restore_cluster_from_snapshot")


def test_the_own_account_is_learnt_from_sts_only_when_a_policy_names_an_account(restore, cloud):
    run = restore(policies={"p": policy(sources=[{"accountId": ACCOUNT_ID}])})
    assert run.run().phase == Phase.SUCCEEDED
    message = refused(restore(policies={"p": policy(sources=[{"accountId": SOURCE_ACCOUNT}])}), Phase.PREFLIGHT)
    assert f"account {ACCOUNT_ID}" in message


# --- replace ---------------------------------------------------------------------------------------------------


def test_replace_is_refused_unless_allowed(restore, cloud):
    run = restore(REPLACE, policies={"p": policy(replace={})})
    run.target.add_cluster(TARGET, instances=1, tags=REPLACEABLE)
    assert "spec.existingTarget.policy 'Replace' is not allowed by it (replace.allowed is false)" in refused(run)
    assert cloud.calls == []


def test_replace_of_a_cluster_the_operator_did_not_create_needs_the_policy_and_the_tag(restore, cloud):
    only_own = {"p": policy(replace={"allowed": True})}  # onlyClustersCreatedByOperator defaults to true
    run = restore(REPLACE, policies=only_own)
    run.target.add_cluster(TARGET, instances=1, tags=REPLACEABLE)
    message = refused(run, Phase.PREFLIGHT)
    assert "which the operator did not create (no tag managed-by=aurora-restore-operator)" in message
    assert "replace.onlyClustersCreatedByOperator is true" in message

    run = restore(REPLACE, policies={"p": policy()}, uid="11111111-2222-3333-4444-555555555555")
    untagged = run.target.add_cluster("staging", instances=1)
    untagged.pop("TagList", None)
    assert "needs the tag dbrestore.io/replaceable=true on that cluster" in refused(run, Phase.PREFLIGHT)
    assert not cloud.calls_to("rename_cluster") and not cloud.calls_to("delete_cluster")


def test_replace_of_a_cluster_the_operator_created_needs_only_replace_allowed(restore, cloud):
    run = restore(REPLACE, policies={"p": policy(replace={"allowed": True})})
    run.target.add_cluster(TARGET, instances=1, tags={"managed-by": "aurora-restore-operator"})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert status.policy == "p"


def test_skipping_the_final_snapshot_needs_allow_final_snapshot_skip(restore):
    changes = {"existingTarget": {"policy": "Replace", "finalSnapshot": False}}
    run = restore(changes, policies={"p": policy(allowFinalSnapshotSkip=False)})
    run.target.add_cluster(TARGET, instances=1, tags=REPLACEABLE)
    assert "spec.existingTarget.finalSnapshot false is not allowed by it" in refused(run)


def test_a_policy_withdrawn_before_retiring_keeps_the_previous_cluster(restore, cloud):
    """The swap was allowed; by the time the previous cluster would be deleted no policy allows it: it stays."""
    run = restore(REPLACE)
    run.target.add_cluster(TARGET, instances=1, tags=REPLACEABLE)
    run.run_until(Phase.RETIRING_PREVIOUS)
    run.policies = {"p": policy(replace={"allowed": False})}
    status = run.run()
    assert (status.phase, status.failure.reason, status.failure.phase) == (
        Phase.FAILED, "NotAllowedByPolicy", Phase.RETIRING_PREVIOUS)
    assert not cloud.calls_to("delete_cluster") and not cloud.calls_to("delete_instance")
    assert status.replaced_cluster.renamed_to in run.target.clusters


def test_deleting_what_carries_the_restores_uid_is_never_refused(restore, cloud):
    """A cancel after the policy was withdrawn still removes the temporary cluster the restore made."""
    run = restore(REPLACE)
    run.target.add_cluster(TARGET, instances=1, tags=REPLACEABLE)
    run.run_until(Phase.CREATING_INSTANCES)
    run.policies = {}
    status = cancel(run)
    assert status.phase == Phase.CANCELLED, status.message
    assert run.context().temporary_cluster_identifier not in run.target.clusters
    assert TARGET in run.target.clusters


# --- which namespaces a policy covers --------------------------------------------------------------------------


def test_a_namespace_selector_covers_by_label(restore):
    selected = {"p": policy(namespaces=[], namespaceSelector={"matchLabels": {"team": "a"}})}
    assert "no AuroraRestorePolicy covers namespace team-a" in refused(restore(policies=selected))
    assert restore(policies=selected, namespace_labels={"team": "a"}).run().phase == Phase.SUCCEEDED


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"env": "dev"}}, {"env": "dev", "x": "y"}, True),
        ({"matchLabels": {"env": "dev"}}, {"env": "prod"}, False),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev", "qa"]}]}, {"env": "qa"}, True),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, {}, False),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, {}, True),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, {"env": "prod"}, False),
        ({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, {"env": ""}, True),
        ({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, {"env": "x"}, False),
        ({}, {}, True),
    ],
)
def test_label_selectors_follow_kubernetes(selector, labels, expected):
    assert selects(LabelSelector.model_validate(selector), labels) is expected


def test_namespace_globs_cover_and_unread_labels_never_match():
    spec = AuroraRestorePolicySpec.model_validate({"namespaces": ["team-*"], "namespaceSelector": {}})
    assert covers(spec, "team-x", None)
    assert not covers(spec, "prod", None)
    assert covers(spec, "prod", {})


def test_the_retired_allowed_roles_setting_stops_start_up_pointing_at_policies(monkeypatch):
    from pydantic import ValidationError

    from aurora_restore.settings import Settings

    monkeypatch.setenv("AURORA_RESTORE_ALLOWED_ROLES", '{"team-a": ["arn:aws:iam::*:role/restore-*"]}')
    with pytest.raises(ValidationError) as error:
        Settings()
    assert "AURORA_RESTORE_ALLOWED_ROLES is retired" in str(error.value)
    assert "AuroraRestorePolicy" in str(error.value)


def test_a_cancel_in_retiring_previous_after_the_policy_was_withdrawn_keeps_the_previous_cluster(restore, cloud):
    run = restore(REPLACE)
    run.target.add_cluster(TARGET, instances=1, tags=REPLACEABLE)
    run.run_until(Phase.RETIRING_PREVIOUS)
    run.policies = {}
    status = cancel(run)
    assert status.phase == Phase.CANCELLED, status.message
    assert f"the previous cluster {status.replaced_cluster.renamed_to} is kept" in status.message
    assert status.replaced_cluster.renamed_to in run.target.clusters
    assert not cloud.calls_to("delete_cluster") and not cloud.calls_to("delete_instance")


def test_replacing_a_cluster_the_operator_did_not_create_needs_the_tag_on_each_instance(restore, cloud):
    """IAM allows DeleteDBInstance only on tagged instances: an untagged one is found in Preflight, before the
    swap, not as AccessDenied after it."""
    run = restore(REPLACE)
    run.target.add_cluster(TARGET, instances=2, tags=REPLACEABLE, instance_tags={"owner": "someone"})
    message = refused(run, Phase.PREFLIGHT)
    assert (f"needs the tag dbrestore.io/replaceable=true on each of its instances too; {TARGET}-instance-1, "
            f"{TARGET}-instance-2 lack it") in message
    assert not cloud.calls_to("restore_cluster_from_snapshot")


def test_the_replaceable_tag_is_refused_in_the_spec():
    from pydantic import ValidationError

    from aurora_restore.api.models import AuroraRestoreSpec

    with pytest.raises(ValidationError) as error:
        AuroraRestoreSpec.model_validate({"source": {"region": SOURCE_REGION, "snapshotIdentifier": SNAPSHOT},
                                          "target": {"clusterIdentifier": TARGET,
                                                     "tags": {"DBrestore.io/Replaceable": "true"}}})
    assert "is the account owner's to set" in str(error.value)


def test_a_snapshot_another_account_owns_is_checked_against_its_owner(restore, cloud):
    """A snapshot named by another account's ARN counts as that account's, whatever the spec's accountId says."""
    foreign = cloud.account(SOURCE_ACCOUNT).rds(SOURCE_REGION).add_snapshot(SNAPSHOT)
    changes = {"source": {"snapshotIdentifier": foreign["DBClusterSnapshotArn"]}}
    message = refused(restore(changes, policies={"p": policy(sources=[{"accountId": ACCOUNT_ID}])}))
    assert f"account {SOURCE_ACCOUNT}" in message


def test_the_swap_checks_the_policy_again_before_the_first_rename(restore, cloud):
    """Withdrawn between Preflight and the swap: nothing is renamed, the temporary cluster is removed."""
    run = restore(REPLACE)
    run.target.add_cluster(TARGET, instances=1, tags=REPLACEABLE)
    run.run_until(Phase.SWAPPING_TARGET)
    run.policies = {"p": policy(replace={"allowed": False})}
    status = run.run()
    assert (status.phase, status.failure.reason, status.failure.phase) == (
        Phase.FAILED, "NotAllowedByPolicy", Phase.SWAPPING_TARGET)
    assert not cloud.calls_to("rename_cluster")
    assert run.context().temporary_cluster_identifier not in run.target.clusters
    assert TARGET in run.target.clusters


@pytest.mark.parametrize(("pattern", "allowed"), [
    (f"arn:aws:secretsmanager:{SOURCE_REGION}:{ACCOUNT_ID}:secret:team-a/*", True),
    (f"arn:aws:secretsmanager:{SOURCE_REGION}:999999999999:secret:team-a/*", False),
    ("arn:aws:secretsmanager:us-east-1:*:secret:team-a/*", False),
    ("arn:aws:secretsmanager:*:*:secret:team-a/master", True),
])
def test_a_secret_given_by_name_is_matched_as_the_arn_of_the_target_region_and_account(restore, pattern, allowed):
    run = restore({"masterPassword": {"secretsManagerSecretId": "team-a/master"}},
                  policies={"p": policy(secretsManagerSecrets=[pattern])})
    if allowed:
        run.run_until(Phase.RESTORING_CLUSTER)
        assert run.status.policy == "p"
    else:
        assert "secretsManagerSecretId 'team-a/master' is not among" in refused(
            run, Phase.PREFLIGHT if "999999999999" in pattern else Phase.PENDING)



def test_an_automated_snapshot_named_by_arn_is_checked_by_its_whole_name(restore, source):
    """`...:cluster-snapshot:rds:prod-x` is the snapshot `rds:prod-x`: a glob for manual snapshots (`prod-*`) does
    not allow it, `rds:prod-*` does."""
    automated = source.add_snapshot("rds:prod-2025-03-02", snapshot_type="automated")
    changes = {"source": {"snapshotIdentifier": automated["DBClusterSnapshotArn"]}}
    message = refused(restore(changes, policies={"p": policy(sources=[{"snapshotIdentifier": "prod-*"}])}))
    assert "snapshot rds:prod-2025-03-02)" in message
    status = restore(changes, policies={"p": policy(sources=[{"snapshotIdentifier": "rds:prod-*"}])}).run()
    assert status.phase == Phase.SUCCEEDED, status.message
