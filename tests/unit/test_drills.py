"""Drills (spec.drill): their own cluster, what they measure, and the teardown after keepFor."""

import copy
import random
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY
from pydantic import ValidationError

from aurora_restore.api.models import (
    AuroraRestoreSpec, AuroraRestoreStatus, HistoryEntry, SnapshotStatus, VerificationStatus,
)
from aurora_restore.api.phase import Phase
from aurora_restore.aws.rds import tags_of
from aurora_restore.driver import _report_drill
from aurora_restore.k8s.secrets import MANAGED_BY, RESTORE_UID_LABEL
from aurora_restore.k8s.leases import TargetLease
from aurora_restore.machine import apply_outcome, has_work, left_in_aws, run_aftercare, ttl_expiry
from aurora_restore.steps import names
from aurora_restore.steps.context import RESTORE_UID_TAG, restored_identifier
from aurora_restore.steps.drill import (
    lease_wait_seconds, measure, objective_met, remove_drill_secrets, rpo_seconds, rto_seconds, verified_at,
)
from aurora_restore.steps.outcomes import Wait
from aurora_restore.steps.snapshot import resolve_snapshot

from .conftest import BASE_SPEC, START, TARGET, UID, merged
from .fake_held_secrets import FakeHeldSecrets
from .fake_rds import DEFAULT_CREATE_TIME, aws_error

DRILL_IDENTIFIER = f"{TARGET}-drill-7d3f9a2e"


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


# --- the drill's own cluster ----------------------------------------------------------------------------------


def test_a_drill_restores_into_its_own_cluster_named_from_the_target_and_the_uid():
    spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"drill": {}}))
    assert restored_identifier(spec, UID) == DRILL_IDENTIFIER
    plain = AuroraRestoreSpec.model_validate(BASE_SPEC)
    assert restored_identifier(plain, UID) == TARGET


@pytest.mark.parametrize("target", ["a", "Reporting-Copy", "x" * 63, "ab-" * 20 + "c", "a1" * 31 + "b"])
def test_drill_identifiers_are_valid_lower_case_rds_identifiers_within_63_characters(target):
    spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"target": {"clusterIdentifier": target},
                                                               "drill": {}}))
    identifier = restored_identifier(spec, UID)
    assert names.is_valid_identifier(identifier), identifier
    assert identifier.endswith("-drill-7d3f9a2e")
    assert identifier.startswith(target.lower()[:10])
    assert identifier != spec.target.cluster_identifier


def test_two_drills_of_one_target_never_share_a_cluster():
    spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"drill": {}}))
    other = "0b1c2d3e-0000-4000-8000-000000000000"
    assert restored_identifier(spec, UID) != restored_identifier(spec, other)


def test_a_drill_with_replace_is_an_invalid_spec():
    with pytest.raises(ValidationError, match="Replace cannot be used in a drill"):
        AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"drill": {}, "existingTarget": {"policy": "Replace"}}))


def test_a_drill_with_deletion_protection_is_an_invalid_spec():
    with pytest.raises(ValidationError, match="deletionProtection"):
        AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"drill": {}, "target": {"deletionProtection": True}}))


def test_a_drill_creates_its_cluster_and_instances_under_its_own_name_and_never_the_target(restore, cloud):
    cloud.rds("eu-west-1").add_cluster(TARGET)  # the real target: a drill never touches it
    run = restore({"drill": {"keepFor": "1h"}})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert Phase.SWAPPING_TARGET not in run.phases
    [restored] = cloud.calls_to("restore_cluster_from_snapshot")
    assert restored.params["DBClusterIdentifier"] == DRILL_IDENTIFIER
    assert sorted(c.params["DBInstanceIdentifier"] for c in cloud.calls_to("create_instance")) == [
        f"{DRILL_IDENTIFIER}-1", f"{DRILL_IDENTIFIER}-2"]
    touched = {c.params.get(key) for c in cloud.mutations for key in ("identifier", "DBClusterIdentifier")}
    assert TARGET not in touched and DRILL_IDENTIFIER in touched
    assert status.drill.cluster_identifier == DRILL_IDENTIFIER
    assert status.cluster.identifier == DRILL_IDENTIFIER


def test_a_cluster_at_the_drill_identifier_without_the_uid_fails_preflight_and_is_left_alone(restore, cloud):
    cloud.rds("eu-west-1").add_cluster(DRILL_IDENTIFIER)
    run = restore({"drill": {}})
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "DrillClusterTaken"
    assert not cloud.mutations


def test_the_policy_targets_glob_is_matched_against_the_drill_identifier(restore):
    only_target = {"namespaces": ["*"], "targets": [{"clusterIdentifier": TARGET}], "sources": [{}]}
    run = restore({"drill": {}}, policies={"exact": only_target})
    status = run.run()
    assert status.phase == Phase.FAILED
    assert status.failure.reason == "NotAllowedByPolicy"
    assert DRILL_IDENTIFIER in status.failure.message

    drills = {"namespaces": ["*"], "targets": [{"clusterIdentifier": f"{TARGET}-drill-*"}], "sources": [{}],
              "instanceClasses": ["*"]}
    run = restore({"drill": {}}, policies={"drills": drills})
    assert run.run().phase == Phase.SUCCEEDED


# --- what a drill measures --------------------------------------------------------------------------------------


def _history(*spans: tuple[Phase, float, float]) -> list[HistoryEntry]:
    return [HistoryEntry(phase=phase, started_at=at(start), ended_at=at(end)) for phase, start, end in spans]


def test_rto_runs_from_the_creation_to_verification_passed_and_counts_the_lease_wait():
    status = AuroraRestoreStatus(
        started_at=at(1),
        history=_history((Phase.PENDING, 1, 11), (Phase.RESOLVING_SNAPSHOT, 11, 12), (Phase.VERIFYING, 40, 45)),
        verification=VerificationStatus(passed_at=at(44)),
    )
    assert rto_seconds(at(0), status) == 44 * 60
    assert lease_wait_seconds(status) == 10 * 60
    assert verified_at(status) == at(44)


def test_without_verification_rto_ends_when_the_verifying_phase_passed():
    status = AuroraRestoreStatus(started_at=at(0), history=_history((Phase.PENDING, 0, 0), (Phase.VERIFYING, 30, 31)))
    assert rto_seconds(None, status) == 31 * 60  # no creationTimestamp known: from startedAt
    assert lease_wait_seconds(status) == 0


def test_rpo_is_the_snapshot_age_at_the_restore_start():
    spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"drill": {}}))
    status = AuroraRestoreStatus(started_at=at(0), snapshot=SnapshotStatus(
        identifier="s", arn="arn", created_at=at(-26 * 60)))
    assert rpo_seconds(spec, status) == 26 * 3600


def test_rpo_of_a_point_in_time_drill_is_the_lag_of_the_restore_point():
    spec = AuroraRestoreSpec.model_validate(merged(BASE_SPEC, {"drill": {}, "source": {
        "snapshotIdentifier": None, "pointInTime": {"clusterIdentifier": "prod", "restoreTime": at(-90).isoformat()}}}))
    assert rpo_seconds(spec, AuroraRestoreStatus(started_at=at(0))) == 90 * 60


@pytest.mark.parametrize(("rto", "rpo", "rto_objective", "rpo_objective", "expected"), [
    (100, 100, None, None, (None, "")),
    (100, 100, 100, 100, (True, "ObjectiveMet")),
    (101, 100, 100, 100, (False, "RtoObjectiveMissed")),
    (100, 101, 100, 100, (False, "RpoObjectiveMissed")),
    (100, 10**6, 100, None, (True, "ObjectiveMet")),
    (10**6, 100, None, 100, (True, "ObjectiveMet")),
    (None, 100, 100, None, (False, "RtoObjectiveMissed")),  # not measured: not met
])
def test_objective_met_needs_every_objective_given(rto, rpo, rto_objective, rpo_objective, expected):
    assert objective_met(rto, rpo, rto_objective, rpo_objective) == expected


def _drill_run(restore, drill: dict, **fields):
    run = restore({"drill": drill}, **fields)
    run.resource["metadata"]["creationTimestamp"] = (START - timedelta(seconds=30)).isoformat().replace(
        "+00:00", "Z")
    return run


def test_a_drill_records_rto_rpo_and_a_met_objective(restore):
    run = _drill_run(restore, {"rtoObjective": "1d", "rpoObjective": "1d"})
    status = run.run()
    drill = status.drill
    assert status.phase == Phase.SUCCEEDED
    assert drill.rpo_seconds == (START - DEFAULT_CREATE_TIME).total_seconds()
    assert drill.rto_seconds == (verified_at(status) - START).total_seconds() + 30
    assert drill.rto_seconds > 30 and drill.lease_wait_seconds is not None
    assert (drill.rto_objective_seconds, drill.rpo_objective_seconds) == (86400, 86400)
    assert drill.objective_met is True
    [condition] = [c for c in status.conditions if c.type == "ObjectiveMet"]
    assert (condition.status, condition.reason) == ("True", "ObjectiveMet")
    assert {c.type for c in status.conditions} == {"Ready", "Progressing", "Failed", "ObjectiveMet"}


def test_a_missed_rpo_objective_still_succeeds_with_objective_met_false(restore):
    run = _drill_run(restore, {"rpoObjective": "1s"})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED
    assert status.drill.objective_met is False
    [condition] = [c for c in status.conditions if c.type == "ObjectiveMet"]
    assert (condition.status, condition.reason) == ("False", "RpoObjectiveMissed")
    assert "RPO" in condition.message and "objective 1s" in condition.message


def test_no_objective_given_sets_no_objective_condition(restore):
    status = _drill_run(restore, {}).run()
    assert status.drill.objective_met is None
    assert "ObjectiveMet" not in {c.type for c in status.conditions}


# --- the teardown after keepFor ---------------------------------------------------------------------------------


def _uid_tagged(cloud) -> list[str]:
    rds = cloud.rds("eu-west-1")
    found = [c["DBClusterIdentifier"] for c in rds.clusters.values() if tags_of(c).get(RESTORE_UID_TAG) == UID]
    found += [i["DBInstanceIdentifier"] for i in rds.instances.values() if tags_of(i).get(RESTORE_UID_TAG) == UID]
    found += [s["DBClusterSnapshotIdentifier"] for s in rds.snapshots.values()
              if tags_of(s).get(RESTORE_UID_TAG) == UID]
    return found + list(rds.retained_backups)


def test_after_keep_for_the_drill_deletes_its_instances_and_cluster_and_then_owes_nothing(restore, cloud):
    run = _drill_run(restore, {"keepFor": "2h"})
    status = run.run()
    due = status.drill.delete_after
    assert due == verified_at(status) + timedelta(hours=2)
    assert has_work(status) and status.work_completed_at is None

    run.now = due - timedelta(minutes=1)
    waiting = run_aftercare(run.context())
    assert isinstance(waiting, Wait) and waiting.delay == 60 and not waiting.updates
    assert _uid_tagged(cloud), "the drill's cluster is kept during keepFor"

    for _ in range(30):
        run.now += timedelta(seconds=30)
        outcome = run_aftercare(run.context())
        if outcome is None:
            break
        run.status = apply_outcome(run.status, outcome, run.now, 1, 20)
    assert outcome is None
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.drill.deleted_at is not None and run.status.work_completed_at is not None
    assert not has_work(run.status)
    assert _uid_tagged(cloud) == []
    [deleted] = cloud.calls_to("delete_cluster")
    assert deleted.params["identifier"] == DRILL_IDENTIFIER and deleted.params["final_snapshot_identifier"] is None
    assert deleted.params["keep_automated_backups"] is False


def test_deleting_the_restore_during_keep_for_deletes_the_drill_cluster_at_once(restore, cloud):
    run = _drill_run(restore, {"keepFor": "30d"})
    run.run()
    outcome = run_aftercare(run.context(), due_now=True)
    assert isinstance(outcome, Wait)
    assert cloud.calls_to("delete_instance")


def _aftercare_until_settled(run, due_now: bool = False, turns: int = 30):
    """Run aftercare turns (30 s apart) until it owes nothing or the outcome repeats; the last outcome."""
    outcome = None
    for _ in range(turns):
        run.now += timedelta(seconds=30)
        outcome = run_aftercare(run.context(), due_now=due_now)
        if outcome is None:
            return None
        run.status = apply_outcome(run.status, outcome, run.now, 1, 20)
        if outcome.backoff:
            return outcome
    return outcome


def test_a_teardown_refused_for_good_is_left_and_tried_again_when_the_restore_is_deleted(restore, cloud):
    run = _drill_run(restore, {"keepFor": "0s"})
    run.status = run.run()
    refused = aws_error("AccessDenied", "not allowed", action="delete_instance")
    run.target.fail("delete_instance", refused)
    assert _aftercare_until_settled(run) is None, "the daemon stops trying after a terminal error"
    drill = run.status.drill
    assert drill.cleanup_error and drill.deleted_at is None and DRILL_IDENTIFIER in run.status.message
    assert run.status.work_completed_at is not None and not has_work(run.status)
    assert left_in_aws(run.status) == f"drill cluster {DRILL_IDENTIFIER} (status.drill.cleanupError)"
    assert ttl_expiry(run.status, 60) is not None  # driver._expire holds it (test_ttl.py)
    assert _uid_tagged(cloud), "the refused cluster is still there"

    run.target.fail("delete_instance", refused)  # the deletion of the AuroraRestore tries again, still refused
    waiting = _aftercare_until_settled(run, due_now=True)
    assert isinstance(waiting, Wait) and waiting.backoff
    assert "skip-cleanup" in waiting.message and DRILL_IDENTIFIER in waiting.message
    assert run.status.drill.deleted_at is None

    assert _aftercare_until_settled(run, due_now=True) is None  # allowed now: the teardown completes
    assert run.status.drill.deleted_at is not None and run.status.drill.cleanup_error is None
    assert left_in_aws(run.status) is None
    assert _uid_tagged(cloud) == []


def test_measure_is_safe_from_publishing_on_and_empty_without_a_drill(restore):
    run = _drill_run(restore, {"rtoObjective": "1d"})
    run.run_until(Phase.PUBLISHING)
    early = measure(run.context())
    final = run.run().drill
    assert early["drill"].rto_seconds == final.rto_seconds and early["drill"].delete_after == final.delete_after
    assert measure(restore().context()) == {}


class _Leases:
    """CoordinationV1Api's Lease calls over one stored Lease, with resourceVersion and uid preconditions."""

    def __init__(self, holder: str | None):
        self.lease = client.V1Lease(metadata=client.V1ObjectMeta(name="l", uid="lease-uid", resource_version="7"),
                                    spec=client.V1LeaseSpec(holder_identity=holder))
        self.deleted_with: client.V1Preconditions | None = None

    def read_namespaced_lease(self, name, namespace):
        if self.lease is None:
            raise ApiException(status=404)
        return copy.deepcopy(self.lease)

    def replace_namespaced_lease(self, name, namespace, body):
        self.lease = body

    def delete_namespaced_lease(self, name, namespace, body):
        self.deleted_with, self.lease = body.preconditions, None


def _lease(api: _Leases, drill: bool) -> TargetLease:
    lease = TargetLease(client.ApiClient(), "ops", "eu-west-1", DRILL_IDENTIFIER, "team-a/nightly/u-1",
                        restores=None, delete_on_release=drill)
    lease.api = api
    return lease


def test_a_drill_s_lease_is_deleted_on_release_in_the_version_read_and_an_ordinary_one_kept():
    drill = _Leases("team-a/nightly/u-1")
    _lease(drill, drill=True).release()
    assert drill.lease is None
    assert (drill.deleted_with.uid, drill.deleted_with.resource_version) == ("lease-uid", "7")

    ordinary = _Leases("team-a/nightly/u-1")
    _lease(ordinary, drill=False).release()
    assert ordinary.lease is not None and ordinary.lease.spec.holder_identity is None

    taken_over = _Leases("team-b/other/u-2")
    _lease(taken_over, drill=True).release()
    assert taken_over.lease.spec.holder_identity == "team-b/other/u-2" and taken_over.deleted_with is None


class _DeletableSecrets(FakeHeldSecrets):
    def delete_written_by(self, name: str, uid: str) -> None:
        holder = self.holder_of(name)
        if holder is not None and holder.managed and holder.restore_uid == uid:
            del self.secrets[name]


def test_only_the_connection_secrets_this_drill_wrote_are_deleted(restore):
    secrets = _DeletableSecrets("team-a")
    secrets.add("mine", {"uri": "x"}, labels={**MANAGED_BY, RESTORE_UID_LABEL: UID})
    secrets.add("taken-over", {"uri": "y"}, labels={**MANAGED_BY, RESTORE_UID_LABEL: "another-uid"})
    secrets.add("password", {"password": "p"})
    run = restore({"drill": {}, "masterPassword": {"secretRef": {"name": "password", "key": "password"}},
                   "connectionSecret": {"name": "mine"},
                   "users": [{"name": "app", "passwordSecretRef": {"name": "password", "key": "password"},
                              "connectionSecret": {"name": "taken-over"}}]}, secrets=secrets)
    remove_drill_secrets(run.context())
    assert sorted(secrets.secrets) == ["password", "taken-over"]


def test_a_failed_drill_deletes_its_cluster_on_the_way_out(restore, cloud):
    run = restore({"drill": {}})
    run.run_until(Phase.CREATING_INSTANCES)
    run.target.fail("create_instance", aws_error("InvalidParameterCombination", "refused", action="create_instance"))
    status = run.run()
    assert status.phase == Phase.FAILED
    assert _uid_tagged(cloud) == []


# --- source.latest.pick random ---------------------------------------------------------------------------------


def _resolve_with_seed(restore, latest: dict, seed: int) -> str:
    run = restore({"source": {"snapshotIdentifier": None, "latest": latest}})
    ctx = run.context()
    ctx.rng = random.Random(seed)
    return resolve_snapshot(ctx).updates["snapshot"].identifier


def test_pick_random_picks_older_snapshots_too_but_never_one_beyond_max_age(restore, source):
    for day in range(1, 5):
        source.add_snapshot(f"nightly-{day}", created=START - timedelta(days=day))
    source.add_snapshot("too-old", created=START - timedelta(days=30))
    latest = {"clusterIdentifier": "prod", "pick": "random", "maxAge": "10d"}
    chosen = [_resolve_with_seed(restore, latest, seed) for seed in range(40)]
    assert "too-old" not in chosen
    assert set(chosen) == {"prod-2025-03-01", "nightly-1", "nightly-2", "nightly-3", "nightly-4"}
    assert _resolve_with_seed(restore, latest, 7) == _resolve_with_seed(restore, latest, 7)  # seeded: repeatable


def test_pick_newest_is_the_default(restore, source):
    source.add_snapshot("nightly-1", created=START - timedelta(days=1))
    latest = {"clusterIdentifier": "prod"}
    assert {_resolve_with_seed(restore, latest, seed) for seed in range(10)} == {"prod-2025-03-01"}


def test_a_random_pick_is_pinned_so_a_later_pass_restores_the_same_snapshot(restore, source):
    for day in range(1, 5):
        source.add_snapshot(f"nightly-{day}", created=START - timedelta(days=day))
    run = restore({"source": {"snapshotIdentifier": None, "latest": {"clusterIdentifier": "prod", "pick": "random"}}})
    ctx = run.context()
    ctx.rng = random.Random(3)
    first = resolve_snapshot(ctx).updates["snapshot"]
    pinned = run.status.model_copy(update={"snapshot": first})
    for seed in range(10):
        again = run.context(pinned)
        again.rng = random.Random(seed)
        assert resolve_snapshot(again).updates["snapshot"].identifier == first.identifier


# --- what the driver reports ------------------------------------------------------------------------------------


class _Events:
    def __init__(self):
        self.posted: list[tuple[str, str, str]] = []

    def record(self, obj, event_type: str, reason: str, message: str) -> None:
        self.posted.append((event_type, reason, message))


def _reported(restore, drill: dict, namespace: str):
    run = _drill_run(restore, drill)
    status = run.run()
    events = _Events()
    obj = {"metadata": {"namespace": namespace, "name": "nightly", "labels": {"dbrestore.io/schedule": "weekly"}},
           "spec": {"drill": drill}}
    _report_drill(SimpleNamespace(events=events), obj, status)
    labels = {"namespace": namespace, "schedule": "weekly"}
    gauges = {name: REGISTRY.get_sample_value(f"aurora_restore_drill_{name}", labels)
              for name in ("rto_seconds", "rpo_seconds", "objective_met")}
    return status, events.posted, gauges


def test_a_missed_objective_posts_a_warning_event_and_sets_the_metrics_by_schedule(restore):
    status, posted, gauges = _reported(restore, {"rpoObjective": "1s"}, "drills-missed")
    [(event_type, reason, message)] = posted
    assert (event_type, reason) == ("Warning", "ObjectiveMissed") and "RPO" in message
    assert gauges == {"rto_seconds": status.drill.rto_seconds, "rpo_seconds": status.drill.rpo_seconds,
                      "objective_met": 0}


def test_a_met_objective_posts_no_warning(restore):
    _, posted, gauges = _reported(restore, {"rpoObjective": "30d"}, "drills-met")
    assert posted == [] and gauges["objective_met"] == 1
