"""machine.apply_outcome and machine.accept: how an outcome becomes status (history, conditions, failure)."""

from datetime import datetime, timedelta, timezone

import pytest

from aurora_restore.api.models import AuroraRestoreStatus, ClusterStatus, Condition
from aurora_restore.api.phase import Phase
from aurora_restore.machine import accept, apply_outcome
from aurora_restore.steps.outcomes import Advance, Fail, Wait

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
PATH = [
    Phase.RESOLVING_SNAPSHOT,
    Phase.PREFLIGHT,
    Phase.COPYING_SNAPSHOT,
    Phase.RESTORING_CLUSTER,
    Phase.CREATING_INSTANCES,
    Phase.CLEANING_UP,
    Phase.SUCCEEDED,
]


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def conditions(status: AuroraRestoreStatus) -> dict[str, Condition]:
    return {c.type: c for c in status.conditions}


def accepted(generation: int = 1) -> AuroraRestoreStatus:
    return accept(AuroraRestoreStatus(), T0, generation)


def test_accept_starts_pending_with_start_time_history_and_conditions():
    status = accepted(generation=4)
    assert status.phase == Phase.PENDING
    assert status.started_at == T0
    assert status.observed_generation == 4
    assert [(h.phase, h.started_at, h.ended_at) for h in status.history] == [(Phase.PENDING, T0, None)]
    by_type = conditions(status)
    assert {k: c.status for k, c in by_type.items()} == {"Ready": "False", "Progressing": "True", "Failed": "False"}
    assert all(c.reason == "Accepted" and c.observed_generation == 4 for c in by_type.values())


def test_advance_closes_the_previous_history_entry_and_opens_the_next():
    status = apply_outcome(accepted(), Advance(Phase.RESOLVING_SNAPSHOT, "reserved"), minutes(1), 1, 20)
    assert status.phase == Phase.RESOLVING_SNAPSHOT
    assert status.message == "reserved"
    assert [(h.phase, h.started_at, h.ended_at) for h in status.history] == [
        (Phase.PENDING, T0, minutes(1)),
        (Phase.RESOLVING_SNAPSHOT, minutes(1), None),
    ]
    assert status.completed_at is None


def test_advance_applies_its_status_updates():
    cluster = ClusterStatus(identifier="staging", status="available")
    status = apply_outcome(accepted(), Advance(Phase.CREATING_INSTANCES, "ok", {"cluster": cluster}), T0, 1, 20)
    assert status.cluster == cluster


def test_history_is_bounded_by_the_limit_keeping_the_newest():
    status = accepted()
    for number, phase in enumerate(PATH, start=1):
        status = apply_outcome(status, Advance(phase, str(phase)), minutes(number), 1, 3)
        assert len(status.history) <= 3
    assert [h.phase for h in status.history] == [Phase.CREATING_INSTANCES, Phase.CLEANING_UP, Phase.SUCCEEDED]
    assert all(h.ended_at is not None for h in status.history)


def test_reaching_a_terminal_phase_sets_completed_at_and_ends_the_last_entry():
    status = apply_outcome(accepted(), Advance(Phase.CLEANING_UP, "x"), minutes(1), 1, 20)
    status = apply_outcome(status, Advance(Phase.SUCCEEDED, "done"), minutes(2), 1, 20)
    assert status.completed_at == minutes(2)
    assert status.history[-1].phase == Phase.SUCCEEDED
    assert status.history[-1].ended_at == minutes(2)
    assert status.history[-2].ended_at == minutes(2)


def test_wait_changes_only_the_message_updates_and_generation():
    before = apply_outcome(accepted(), Advance(Phase.RESTORING_CLUSTER, "go"), minutes(1), 1, 20)
    cluster = ClusterStatus(identifier="staging", status="creating")
    after = apply_outcome(before, Wait("cluster staging is creating", updates={"cluster": cluster}), minutes(5), 2, 20)
    assert after.phase == Phase.RESTORING_CLUSTER
    assert after.message == "cluster staging is creating"
    assert after.cluster == cluster
    assert after.observed_generation == 2
    assert after.history == before.history
    assert after.conditions == before.conditions
    assert after.completed_at is None


def test_fail_records_phase_reason_and_message_and_keeps_what_was_found():
    running = apply_outcome(accepted(), Advance(Phase.RESTORING_CLUSTER, "go"), minutes(1), 1, 20)
    running = running.model_copy(update={"cluster": ClusterStatus(identifier="staging")})
    failed = apply_outcome(running, Fail("RestoreFailed", "cluster is incompatible-restore"), minutes(3), 1, 20)
    assert failed.phase == Phase.CLEANING_UP_AFTER_FAILURE
    assert failed.failure.phase == Phase.RESTORING_CLUSTER
    assert failed.failure.reason == "RestoreFailed"
    assert failed.failure.message == "cluster is incompatible-restore"
    assert failed.message == "cluster is incompatible-restore"
    assert failed.completed_at is None
    assert failed.cluster.identifier == "staging"
    assert [(h.phase, h.ended_at) for h in failed.history[-2:]] == [
        (Phase.RESTORING_CLUSTER, minutes(3)),
        (Phase.CLEANING_UP_AFTER_FAILURE, None),
    ]

    done = apply_outcome(failed, Advance(Phase.FAILED, "cluster is incompatible-restore"), minutes(4), 1, 20)
    assert (done.phase, done.completed_at, done.failure) == (Phase.FAILED, minutes(4), failed.failure)
    assert all(c.reason == "RestoreFailed" for c in done.conditions)  # the failure's reason, not the phase


def test_fail_from_a_fresh_status_is_attributed_to_pending():
    failed = apply_outcome(AuroraRestoreStatus(), Fail("InvalidSpec", "invalid spec: ..."), T0, 1, 20)
    assert (failed.phase, failed.failure.phase, failed.failure.reason) == (
        Phase.CLEANING_UP_AFTER_FAILURE, Phase.PENDING, "InvalidSpec"
    )


def test_no_failure_is_recorded_on_success():
    status = apply_outcome(accepted(), Advance(Phase.SUCCEEDED, "done"), minutes(1), 1, 20)
    assert status.failure is None


def test_conditions_follow_the_phase_and_move_last_transition_time_only_on_change():
    status = accepted(generation=1)
    status = apply_outcome(status, Advance(Phase.RESOLVING_SNAPSHOT, "reserved"), minutes(1), 2, 20)
    c = conditions(status)
    assert {k: v.status for k, v in c.items()} == {"Ready": "False", "Progressing": "True", "Failed": "False"}
    assert all(v.last_transition_time == T0 for v in c.values())  # nothing flipped since acceptance
    assert all(v.reason == "ResolvingSnapshot" and v.message == "reserved" for v in c.values())
    assert all(v.observed_generation == 2 for v in c.values())

    status = apply_outcome(status, Fail("TargetExists", "target cluster 'staging' already exists"), minutes(2), 2, 20)
    c = conditions(status)
    assert {k: v.status for k, v in c.items()} == {"Ready": "False", "Progressing": "True", "Failed": "True"}
    assert c["Ready"].last_transition_time == T0
    assert c["Progressing"].last_transition_time == T0  # still working: cleaning up after the failure
    assert c["Failed"].last_transition_time == minutes(2)
    assert all(v.reason == "TargetExists" for v in c.values())


def test_success_makes_ready_true():
    status = apply_outcome(accepted(), Advance(Phase.CLEANING_UP, "x"), minutes(1), 1, 20)
    status = apply_outcome(status, Advance(Phase.SUCCEEDED, "cluster staging restored"), minutes(2), 1, 20)
    c = conditions(status)
    assert {k: v.status for k, v in c.items()} == {"Ready": "True", "Progressing": "False", "Failed": "False"}
    assert c["Ready"].last_transition_time == minutes(2)
    assert c["Failed"].last_transition_time == T0
    assert c["Ready"].reason == "Succeeded"


@pytest.mark.parametrize("limit", [1, 2, 20])
def test_history_never_exceeds_the_limit_over_a_whole_restore(limit):
    status = accepted()
    for number, phase in enumerate(PATH, start=1):
        status = apply_outcome(status, Wait("polling"), minutes(number), 1, limit)
        status = apply_outcome(status, Advance(phase, "next"), minutes(number), 1, limit)
    assert len(status.history) == min(limit, len(PATH) + 1)
    assert status.history[-1].phase == Phase.SUCCEEDED


def test_status_round_trips_through_json_as_the_driver_persists_it():
    status = apply_outcome(accepted(), Fail("Timeout", "too slow"), minutes(1), 1, 20)
    stored = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert stored["failure"] == {"phase": "Pending", "reason": "Timeout", "message": "too slow"}
    assert stored["conditions"][0]["lastTransitionTime"] == "2025-03-01T12:00:00Z"
    assert AuroraRestoreStatus.model_validate(stored) == status


def test_has_work_until_terminal_and_while_a_kept_previous_cluster_is_owed_its_deletion():
    from aurora_restore.machine import has_work

    def works(status: dict) -> bool:
        return has_work(AuroraRestoreStatus.model_validate(status))

    assert works({})
    assert works({"phase": "CopyingSnapshot"})
    assert works({"phase": "CleaningUpAfterFailure"})
    assert works({"phase": "Cancelling"})
    for phase in ("Succeeded", "Failed", "Planned", "Cancelled"):
        assert not works({"phase": phase})
    kept = {"identifier": "t", "renamedTo": "t-previous-1", "deleteAfter": "2025-03-02T12:00:00Z"}
    assert works({"phase": "Succeeded", "replacedCluster": kept})
    assert not works({"phase": "Succeeded", "replacedCluster": {**kept, "deletedAt": "2025-03-02T12:01:00Z"}})
    assert not works({"phase": "Succeeded", "replacedCluster": {**kept, "retirementError": "protected"}})
    assert not works({"phase": "Failed", "replacedCluster": kept})
