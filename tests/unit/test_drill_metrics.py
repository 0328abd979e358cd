"""The drill gauges: set when a drill ends, and set again from the finished drills a new leader reads (they live in
memory: without that, a restart or failover would drop them and a firing drill alert would resolve by itself)."""

import uuid
from types import SimpleNamespace

from prometheus_client import REGISTRY

from aurora_restore.api.models import AuroraRestoreStatus
from aurora_restore.driver import _report_drill, observe_finished_drill
from aurora_restore.obs import metrics

GAUGES = ("rto_seconds", "rpo_seconds", "objective_met")


class _Events:
    def __init__(self):
        self.posted: list[tuple[str, str]] = []

    def record(self, obj, event_type: str, reason: str, message: str) -> None:
        self.posted.append((event_type, reason))


def drill_restore(namespace: str, phase: str, completed_at: str, rto: float, rpo: float, met: bool | None,
                  schedule: str | None = "weekly", drill: dict | None = None) -> dict:
    """An AuroraRestore as the apiserver returns it: a finished drill, by default a run of schedule `weekly`."""
    labels = {"dbrestore.io/schedule": schedule} if schedule else {}
    return {
        "metadata": {"namespace": namespace, "name": f"run-{uuid.uuid4().hex[:6]}", "labels": labels},
        "spec": {"drill": {} if drill is None else drill},
        "status": {"phase": phase, "startedAt": "2026-03-01T00:00:00+00:00", "completedAt": completed_at,
                   "drill": {"clusterIdentifier": "prod-drill-1", "rtoSeconds": rto, "rpoSeconds": rpo,
                             "objectiveMet": met}},
    }


def gauges(namespace: str, schedule: str = "weekly") -> dict[str, float | None]:
    labels = {"namespace": namespace, "schedule": schedule}
    return {name: REGISTRY.get_sample_value(f"aurora_restore_drill_{name}", labels) for name in GAUGES}


def unique_namespace() -> str:
    return f"drills-{uuid.uuid4().hex[:8]}"  # the registry is the process's: each test its own series


def test_report_drill_sets_the_gauges_and_warns_on_a_missed_objective():
    namespace = unique_namespace()
    obj = drill_restore(namespace, "Succeeded", "2026-03-01T01:00:00+00:00", rto=1800.0, rpo=7200.0, met=False)
    events = _Events()
    _report_drill(SimpleNamespace(events=events), obj, AuroraRestoreStatus.model_validate(obj["status"]))
    assert gauges(namespace) == {"rto_seconds": 1800.0, "rpo_seconds": 7200.0, "objective_met": 0}
    assert events.posted == [("Warning", "ObjectiveMissed")]


def test_a_new_leader_shows_the_last_drill_again_from_reading_it_without_an_event():
    namespace = unique_namespace()
    assert gauges(namespace) == dict.fromkeys(GAUGES)  # a fresh process knows nothing
    observe_finished_drill(drill_restore(namespace, "Succeeded", "2026-03-01T01:00:00+00:00", 1800.0, 7200.0,
                                         met=False))
    assert gauges(namespace) == {"rto_seconds": 1800.0, "rpo_seconds": 7200.0, "objective_met": 0}


def test_the_newest_drill_of_a_schedule_wins_whatever_the_order_they_are_read_in():
    older = ("2026-03-01T01:00:00+00:00", 100.0, 200.0, True)
    newer = ("2026-03-08T01:00:00+00:00", 300.0, 400.0, False)
    for first, second in ((older, newer), (newer, older)):
        namespace = unique_namespace()
        for completed_at, rto, rpo, met in (first, second):
            observe_finished_drill(drill_restore(namespace, "Succeeded", completed_at, rto, rpo, met))
        assert gauges(namespace) == {"rto_seconds": 300.0, "rpo_seconds": 400.0, "objective_met": 0}


def test_a_failed_drill_shows_its_objective_missed_and_keeps_the_last_times():
    namespace = unique_namespace()
    observe_finished_drill(drill_restore(namespace, "Succeeded", "2026-03-01T01:00:00+00:00", 100.0, 200.0, True))
    observe_finished_drill(drill_restore(namespace, "Failed", "2026-03-08T01:00:00+00:00", 999.0, 999.0, None))
    assert gauges(namespace) == {"rto_seconds": 100.0, "rpo_seconds": 200.0, "objective_met": 0}


def test_a_drill_of_its_own_has_an_empty_schedule_label():
    namespace = unique_namespace()
    observe_finished_drill(drill_restore(namespace, "Succeeded", "2026-03-01T01:00:00+00:00", 60.0, 90.0, True,
                                         schedule=None))
    assert gauges(namespace, schedule="") == {"rto_seconds": 60.0, "rpo_seconds": 90.0, "objective_met": 1}


def test_unfinished_drills_plain_restores_and_unreadable_statuses_set_nothing():
    namespace = unique_namespace()
    running = drill_restore(namespace, "RestoringCluster", None, 1.0, 1.0, None)
    plain = drill_restore(namespace, "Succeeded", "2026-03-01T01:00:00+00:00", 1.0, 1.0, True)
    plain["spec"] = {}
    unreadable = drill_restore(namespace, "Succeeded", "not a time", 1.0, 1.0, True)
    for obj in (running, plain, unreadable, {"metadata": {"namespace": namespace, "name": "new"}, "spec": {}}):
        observe_finished_drill(obj)
    assert gauges(namespace) == dict.fromkeys(GAUGES)


def test_a_deleted_schedule_forgets_its_last_drill_so_a_later_one_shows_again():
    namespace = unique_namespace()
    observe_finished_drill(drill_restore(namespace, "Succeeded", "2026-03-08T01:00:00+00:00", 300.0, 400.0, True))
    metrics.forget_schedule(namespace, "weekly")
    assert gauges(namespace) == dict.fromkeys(GAUGES)
    observe_finished_drill(drill_restore(namespace, "Succeeded", "2026-03-01T01:00:00+00:00", 100.0, 200.0, False))
    assert gauges(namespace) == {"rto_seconds": 100.0, "rpo_seconds": 200.0, "objective_met": 0}
