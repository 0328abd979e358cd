"""spec.ttlSecondsAfterFinished: status.workCompletedAt, the daemon staying alive, and the deletion when due."""

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest

from aurora_restore.api.models import AuroraRestoreStatus, DrillStatus, ReplacedClusterStatus
from aurora_restore.api.phase import Phase
from aurora_restore.driver import _expire, _next_turn, ttl_seconds
from aurora_restore.machine import apply_outcome, has_work, ttl_expiry
from aurora_restore.settings import Settings
from aurora_restore.steps.outcomes import Advance, Wait

from .conftest import REPLACEABLE, START, TARGET

LOG = logging.getLogger("test")


def finished(phase: Phase, **fields) -> AuroraRestoreStatus:
    before = AuroraRestoreStatus(phase=Phase.CLEANING_UP, started_at=START, **fields)
    return apply_outcome(before, Advance(phase, "done"), START, 1, 20)


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.FAILED, Phase.PLANNED, Phase.CANCELLED])
def test_reaching_a_terminal_phase_with_nothing_owed_records_work_completed_at(phase):
    assert finished(phase).work_completed_at == START


def test_a_drill_that_still_owes_its_teardown_has_not_completed_its_work():
    drill = DrillStatus(cluster_identifier="x-drill-1", delete_after=START + timedelta(hours=1))
    status = finished(Phase.SUCCEEDED, drill=drill)
    assert status.work_completed_at is None
    assert has_work(status) and ttl_expiry(status, 10) is None


def test_an_unfinished_phase_records_no_work_completed_at():
    status = apply_outcome(AuroraRestoreStatus(phase=Phase.PENDING), Advance(Phase.PREFLIGHT, "x"), START, 1, 20)
    assert status.work_completed_at is None


def test_the_daemon_stays_for_a_ttl_and_only_then():
    status = finished(Phase.SUCCEEDED)
    assert not has_work(status)
    assert has_work(status, ttl_seconds=0)
    assert has_work(AuroraRestoreStatus(phase=Phase.PENDING))


def test_the_ttl_counts_from_work_completed_at():
    status = finished(Phase.FAILED).model_copy(update={"work_completed_at": START + timedelta(minutes=5)})
    assert ttl_expiry(status, 60) == START + timedelta(minutes=6)
    assert ttl_expiry(status, None) is None
    unfinished = AuroraRestoreStatus(phase=Phase.VERIFYING, work_completed_at=START)
    assert ttl_expiry(unfinished, 60) is None


def test_a_restore_finished_before_work_completed_at_existed_counts_from_completed_at():
    status = AuroraRestoreStatus(phase=Phase.SUCCEEDED, completed_at=START)
    assert ttl_expiry(status, 30) == START + timedelta(seconds=30)


@pytest.mark.parametrize(("spec", "expected"), [
    ({"ttlSecondsAfterFinished": 2}, 2), ({"ttlSecondsAfterFinished": 0}, 0), ({}, None),
    ({"ttlSecondsAfterFinished": "2"}, None), ({"ttlSecondsAfterFinished": True}, None),
    ({"ttlSecondsAfterFinished": -1}, None),
])
def test_ttl_is_read_from_the_raw_spec(spec, expected):
    assert ttl_seconds({"spec": spec}) == expected


class _Restores:
    def __init__(self):
        self.deleted: list[tuple[str, str, str]] = []

    def delete(self, namespace: str, name: str, uid: str) -> None:
        self.deleted.append((namespace, name, uid))


def _obj(ttl: int | None) -> dict:
    spec = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    return {"metadata": {"namespace": "team-a", "name": "nightly", "uid": "u-1"}, "spec": spec}


def test_the_daemon_waits_until_the_ttl_expires_then_deletes_the_restore_with_its_uid():
    runtime = SimpleNamespace(restores=_Restores())
    status = finished(Phase.PLANNED)
    assert _expire(runtime, _obj(120), status, START + timedelta(seconds=20), LOG) == 100
    assert runtime.restores.deleted == []
    assert _expire(runtime, _obj(120), status, START + timedelta(seconds=120), LOG) is None
    assert runtime.restores.deleted == [("team-a", "nightly", "u-1")]


def test_without_a_ttl_a_finished_restore_is_never_deleted():
    runtime = SimpleNamespace(restores=_Restores())
    assert _expire(runtime, _obj(None), finished(Phase.SUCCEEDED), START + timedelta(days=999), LOG) is None
    assert runtime.restores.deleted == []


def test_the_turn_that_finishes_a_restore_with_a_ttl_keeps_the_daemon_going():
    settings = Settings()
    status = finished(Phase.SUCCEEDED)
    assert _next_turn(settings, status, Advance(Phase.SUCCEEDED, "done"), 0, ttl=5) == (0, 0)
    assert _next_turn(settings, status, Advance(Phase.SUCCEEDED, "done"), 0) == (None, 0)
    assert _next_turn(settings, status, Wait("x", delay=3), 0, ttl=5) == (3, 0)


def test_a_kept_previous_cluster_s_retirement_ends_the_work_and_starts_the_ttl(restore, cloud):
    run = restore({"existingTarget": {"policy": "Replace", "keepPrevious": "1h"}, "ttlSecondsAfterFinished": 60})
    run.target.add_cluster(TARGET, tags=REPLACEABLE, instances=1)
    status = run.run()
    assert status.phase == Phase.SUCCEEDED and status.work_completed_at is None
    assert ttl_expiry(status, 60) is None
    run.now = status.replaced_cluster.delete_after
    run.settle_aftercare()
    assert run.status.replaced_cluster.deleted_at is not None
    done = run.status.work_completed_at
    assert done is not None and done >= status.replaced_cluster.delete_after
    assert ttl_expiry(run.status, 60) == done + timedelta(seconds=60)
    assert has_work(run.status, ttl_seconds=60) and not has_work(run.status)


class _Recorded(_Restores):
    """The AuroraRestores and Events calls _expire makes when it holds a restore instead of deleting it."""

    def __init__(self):
        super().__init__()
        self.written: list[dict] = []
        self.events: list[tuple[str, str, str]] = []

    def patch_status(self, namespace: str, name: str, status: dict, resource_version: str | None) -> dict:
        self.written.append(status)
        return {"metadata": {"resourceVersion": str(len(self.written))}}

    def record(self, obj, event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason, message))


@pytest.mark.parametrize(("fields", "named"), [
    ({"drill": DrillStatus(cluster_identifier="x-drill-1", delete_after=START, cleanup_error="AccessDenied")},
     "drill cluster x-drill-1"),
    ({"replaced_cluster": ReplacedClusterStatus(identifier=TARGET, renamed_to=f"{TARGET}-old",
                                                delete_after=START, retirement_error="AccessDenied")},
     f"previous cluster {TARGET}-old"),
])
def test_a_restore_that_left_a_cluster_behind_is_kept_past_its_ttl_with_one_warning(fields, named):
    recorded = _Recorded()
    runtime = SimpleNamespace(restores=recorded, events=recorded)
    status = finished(Phase.SUCCEEDED, **fields)
    assert status.work_completed_at == START  # nothing more is tried: the ttl runs
    later = START + timedelta(seconds=120)
    assert _expire(runtime, _obj(60), status, later, LOG) is None
    assert recorded.deleted == []
    [(event_type, reason, message)] = recorded.events
    assert (event_type, reason) == ("Warning", "TtlDeletionHeld") and named in message
    [written] = recorded.written
    assert written["message"] == message
    held = status.model_copy(update={"message": message})  # the next turn (or an operator restart) reads it
    assert _expire(runtime, _obj(60), held, later + timedelta(hours=1), LOG) is None
    assert len(recorded.events) == 1 and recorded.deleted == []
