"""A connection Secret belongs to the restore whose UID it carries: who may write it, asked in Preflight (before
anything is restored) and again when Publishing writes it.

The Secrets are FakeHeldSecrets (their labels, annotations and versions as the apiserver keeps them) and the other
restores are FakeRestores, looked up by the name the Secret's annotation gives. The real Secrets class against a
real apiserver is in tests/e2e/test_connection_secrets.py.
"""

import pytest

from aurora_restore.api.phase import Phase
from aurora_restore.db.connection import Credentials, Endpoint
from aurora_restore.errors import RetryableError, TerminalError
from aurora_restore.k8s.secrets import MANAGED_BY, RESTORE_NAME_ANNOTATION, RESTORE_UID_LABEL
from aurora_restore.steps.context import RESTORE_UID_TAG
from aurora_restore.steps.access import MasterAccess
from aurora_restore.steps.outcomes import Fail
from aurora_restore.steps.publish import write_connection_secrets

from .conftest import BASE_SPEC, OTHER_REGION, SOURCE_REGION, TARGET, UID, merged

SECRET = "staging-db"
OTHER_UID = "0a1b2c3d-0000-4000-8000-000000000001"
ACCESS = MasterAccess(Endpoint("aurora-postgresql", "db.example", 5432, "orders"), Credentials("admin", "new-Pw-1"))
CLUSTER = {"Engine": "aurora-postgresql", "Endpoint": "staging.cluster.example", "Port": 5432}
SPEC = {"masterPassword": {"secretRef": {"name": "master", "key": "password"}}, "connectionSecret": {"name": SECRET}}
OLD_DATA = {"endpoint": "earlier.cluster.example", "password": "earlier-Pw-0"}


def other_spec(**target) -> dict:
    """The other restore's spec: BASE_SPEC (the same target as ours) with `target` changes."""
    return merged(BASE_SPEC, {"target": target})


# (what holds the Secret, the other restore as {phase, spec, ...} or None when absent, may we take it?)
CASES = {
    "finished-same-target": (dict(phase="Succeeded", spec=other_spec()), True),
    "failed-same-target": (dict(phase="Failed", spec=other_spec()), True),
    "cancelled-same-target": (dict(phase="Cancelled", spec=other_spec()), True),
    "gone": (None, True),
    "name-reused-by-a-new-restore": (dict(phase="RestoringCluster", spec=other_spec(), uid="ffffffff-new"), True),
    "being-deleted": (dict(phase="RestoringCluster", spec=other_spec(clusterIdentifier="other"), deleting=True),
                      True),
    "running-same-target": (dict(phase="RestoringCluster", spec=other_spec()), False),
    "not-yet-accepted": (dict(phase=None, spec=other_spec(clusterIdentifier="other")), False),
    "finished-other-cluster": (dict(phase="Succeeded", spec=other_spec(clusterIdentifier="other")), False),
    "finished-same-cluster-other-region": (dict(phase="Succeeded", spec=other_spec(region=OTHER_REGION)), False),
    "finished-invalid-spec": (dict(phase="Failed", spec={"target": {"clusterIdentifier": TARGET}}), False),
}


def held_by_other(run, other: dict | None) -> None:
    """The Secret written by restore `earlier` (OTHER_UID), which is now as `other` says (None: deleted)."""
    run.secrets.add_held(SECRET, OLD_DATA, OTHER_UID, "earlier")
    if other is not None:
        other = dict(other)
        run.restores.put("team-a", "earlier", other.pop("uid", OTHER_UID), **other)


def preflight(run):
    run.run_until(Phase.PREFLIGHT)
    return run.step()


@pytest.mark.parametrize("other, may", CASES.values(), ids=CASES)
def test_preflight_decides_by_the_holders_state_and_target(restore, other, may):
    run = restore(SPEC)
    held_by_other(run, other)
    outcome = preflight(run)
    if may:
        assert not isinstance(outcome, Fail), outcome
        check = next(c for c in run.status.preflight if c.name == "spec.connectionSecret")
        assert check.passed and "taken over from AuroraRestore earlier" in check.message
    else:
        assert isinstance(outcome, Fail) and outcome.reason == "ConnectionSecretTaken"
        assert f"spec.connectionSecret: Secret team-a/{SECRET} belongs to AuroraRestore earlier" in outcome.message
        assert "choose another name, or delete AuroraRestore earlier" in outcome.message
    assert run.secrets.writes == [] and run.secrets.secrets[SECRET].data == OLD_DATA  # Preflight writes nothing


@pytest.mark.parametrize("other, words", [
    (dict(phase="CreatingInstances", spec=other_spec()), "which has not finished (phase CreatingInstances)"),
    (dict(phase="Succeeded", spec=other_spec(clusterIdentifier="other")), "which restored another target (Succeeded)"),
], ids=["running", "elsewhere"])
def test_the_refusal_says_whether_the_holder_still_runs_or_restored_elsewhere(restore, other, words):
    run = restore(SPEC)
    held_by_other(run, other)
    assert words in preflight(run).message


@pytest.mark.parametrize("marks, may", [
    ({"labels": {}}, False),  # a user's own Secret
    ({"labels": MANAGED_BY}, True),  # written before Secrets carried the UID
    ({"labels": {**MANAGED_BY, RESTORE_UID_LABEL: UID}, "annotations": {RESTORE_NAME_ANNOTATION: "nightly"}}, True),
    ({"labels": {**MANAGED_BY, RESTORE_UID_LABEL: OTHER_UID}}, False),  # the annotation naming its restore removed
], ids=["users-own", "written-before-uids", "ours", "uid-without-name"])
def test_preflight_refuses_a_users_secret_and_one_whose_holder_cannot_be_found(restore, marks, may):
    run = restore(SPEC)
    run.secrets.add(SECRET, OLD_DATA, **marks)
    outcome = preflight(run)
    assert isinstance(outcome, Fail) != may, outcome
    if not may:
        reason = "SecretNotOurs" if not marks["labels"] else "ConnectionSecretTaken"
        assert outcome.reason == reason and f"Secret team-a/{SECRET}" in outcome.message


def test_a_users_connection_secret_is_checked_and_named_by_its_index(restore):
    run = restore({**SPEC, "users": [
        {"name": "app", "passwordSecretRef": {"name": "app-db", "key": "password"}, "connectionSecret": {"name": "app"}},
    ]})
    run.secrets.add_held("app", OLD_DATA, OTHER_UID, "earlier")
    run.restores.put("team-a", "earlier", OTHER_UID, other_spec(clusterIdentifier="other"), "Succeeded")
    outcome = preflight(run)
    assert isinstance(outcome, Fail) and outcome.reason == "ConnectionSecretTaken"
    assert outcome.message.startswith("preflight found 1 problem(s): 1) spec.users[0].connectionSecret: Secret team-a/app")


# --- Publishing: the decision that counts ---------------------------------------------------------------------------


def test_publishing_takes_over_a_finished_same_target_secret_keeping_what_the_user_added(restore):
    run = restore(SPEC)
    run.secrets.add(SECRET, OLD_DATA, labels={**MANAGED_BY, RESTORE_UID_LABEL: OTHER_UID, "team": "orders"},
                    annotations={RESTORE_NAME_ANNOTATION: "earlier", "reloader/match": "true"})
    run.restores.put("team-a", "earlier", OTHER_UID, other_spec(), "Succeeded")
    assert write_connection_secrets(run.context(), CLUSTER, ACCESS) == [SECRET]
    written = run.secrets.secrets[SECRET]
    assert written.data["password"] == "new-Pw-1" and written.data["endpoint"] == CLUSTER["Endpoint"]
    assert "earlier.cluster.example" not in written.data.values()  # the data is replaced as a whole
    assert written.labels == {**MANAGED_BY, RESTORE_UID_LABEL: UID, "team": "orders"}
    assert run.secrets.annotations[SECRET] == {RESTORE_NAME_ANNOTATION: "nightly", "reloader/match": "true"}


def test_publishing_refuses_a_secret_taken_after_preflight_and_writes_none_of_the_restores_secrets(restore):
    """Preflight found both free; another restore wrote the user's Secret since: the master's is not written
    either, so a refused restore leaves every Secret as it was."""
    run = restore({**SPEC, "users": [
        {"name": "app", "passwordSecretRef": {"name": "app-db", "key": "password"}, "connectionSecret": {"name": "app"}},
    ]})
    run.secrets.add("app-db", {"password": "app-Pw-2"})
    run.secrets.add_held("app", OLD_DATA, OTHER_UID, "earlier")
    run.restores.put("team-a", "earlier", OTHER_UID, other_spec(clusterIdentifier="other"), "Publishing")
    with pytest.raises(TerminalError) as raised:
        write_connection_secrets(run.context(), CLUSTER, ACCESS)
    assert raised.value.reason == "ConnectionSecretTaken"
    assert raised.value.message == (
        "spec.users[0].connectionSecret: Secret team-a/app belongs to AuroraRestore earlier, which has not finished "
        "(phase Publishing): choose another name, or delete AuroraRestore earlier to hand the Secret over")
    assert run.secrets.writes == [] and SECRET not in run.secrets.secrets
    assert "app-Pw-2" not in raised.value.message and OLD_DATA["password"] not in raised.value.message


def test_a_secret_written_by_another_restore_between_the_check_and_the_write_is_not_overwritten(restore):
    run = restore(SPEC)
    run.secrets.add_held(SECRET, OLD_DATA, OTHER_UID, "earlier")
    run.restores.put("team-a", "earlier", OTHER_UID, other_spec(), "Succeeded")
    ctx = run.context()
    checked = ctx.secrets.holder_of(SECRET)
    run.secrets.add_held(SECRET, {"password": "third-Pw-3"}, "0a1b2c3d-0000-4000-8000-000000000003", "third")
    with pytest.raises(RetryableError) as raised:
        ctx.secrets.write(SECRET, {"password": "ours"}, None, None, checked)
    assert raised.value.reason == "ConnectionSecretChanged"
    assert run.secrets.secrets[SECRET].data == {"password": "third-Pw-3"}


def test_a_rerun_of_the_same_restore_rewrites_its_own_secret(restore):
    run = restore(SPEC)
    write_connection_secrets(run.context(), CLUSTER, ACCESS)
    write_connection_secrets(run.context(), {**CLUSTER, "Endpoint": "moved.example"}, ACCESS)  # after a crash
    assert run.secrets.writes == [SECRET, SECRET]
    assert run.secrets.secrets[SECRET].data["endpoint"] == "moved.example"


def test_the_whole_restore_fails_in_publishing_with_the_reason(restore):
    """Through the machine: a Secret taken while the restore ran fails it in Publishing (not a crash loop)."""
    run = restore(SPEC)
    run.target.add_cluster(TARGET, instances=1, tags={RESTORE_UID_TAG: UID})
    run.status = run.status.model_copy(update={"phase": Phase.PUBLISHING})
    run.secrets.add("master", {"password": "new-Pw-1"})
    run.secrets.add_held(SECRET, OLD_DATA, OTHER_UID, "earlier")
    run.restores.put("team-a", "earlier", OTHER_UID, other_spec(clusterIdentifier="other"), "Verifying")
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "ConnectionSecretTaken", outcome
    assert run.status.failure.phase == Phase.PUBLISHING
    assert run.secrets.secrets[SECRET].data == OLD_DATA


def test_same_region_default_counts_as_the_same_target(restore):
    """target.region defaults to source.region: an explicit one equal to it is the same target."""
    run = restore(SPEC)
    held_by_other(run, dict(phase="Succeeded", spec=other_spec(region=SOURCE_REGION)))
    assert not isinstance(preflight(run), Fail)
