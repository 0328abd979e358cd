"""The in-progress metrics: which unfinished restores this replica drives, per phase, and for how long."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aurora_restore.obs.metrics import RestoresInProgress

ENTERED = "2026-01-01T10:00:00Z"
ENTERED_UNIX = 1767261600.0


def status(phase: str, entered: str | None = ENTERED) -> dict:
    history = [{"phase": "Pending", "startedAt": "2026-01-01T09:00:00Z", "endedAt": entered or "2026-01-01T09:30:00Z"}]
    if entered:
        history.append({"phase": phase, "startedAt": entered})
    return {"phase": phase, "history": history}


def samples(collector: RestoresInProgress) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {(sample.name, sample.labels["phase"]): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_counts_restores_per_phase_and_the_oldest_age():
    clock = [ENTERED_UNIX + 600]
    progress = RestoresInProgress(clock=lambda: clock[0])
    progress.observe("a", "one", status("RestoringCluster"))
    progress.observe("b", "two", status("RestoringCluster", "2026-01-01T10:05:00Z"))
    progress.observe("a", "three", status("Verifying", "2026-01-01T10:09:00Z"))

    found = samples(progress)
    assert found[("aurora_restore_in_progress", "RestoringCluster")] == 2
    assert found[("aurora_restore_in_progress", "Verifying")] == 1
    assert found[("aurora_restore_in_progress", "Pending")] == 0  # every unfinished phase is exported
    assert ("aurora_restore_in_progress", "Succeeded") not in found
    assert found[("aurora_restore_oldest_phase_age_seconds", "RestoringCluster")] == 600
    assert found[("aurora_restore_oldest_phase_age_seconds", "Verifying")] == 60
    assert ("aurora_restore_oldest_phase_age_seconds", "Pending") not in found  # no restore there: no age

    clock[0] += 100
    assert samples(progress)[("aurora_restore_oldest_phase_age_seconds", "RestoringCluster")] == 700


def test_a_restore_moves_between_phases_and_leaves_when_finished_or_forgotten():
    progress = RestoresInProgress(clock=lambda: ENTERED_UNIX)
    progress.observe("a", "one", status("RestoringCluster"))
    progress.observe("a", "one", status("CreatingInstances"))
    found = samples(progress)
    assert found[("aurora_restore_in_progress", "RestoringCluster")] == 0
    assert found[("aurora_restore_in_progress", "CreatingInstances")] == 1

    progress.observe("a", "one", status("Succeeded"))
    assert sum(v for (name, _), v in samples(progress).items() if name == "aurora_restore_in_progress") == 0

    progress.observe("a", "two", status("Verifying"))
    progress.forget("a", "two")
    progress.observe("a", "three", {})  # not accepted yet
    progress.observe("a", "four", {"phase": "SomePhaseOfANewerVersion"})
    assert sum(v for (name, _), v in samples(progress).items() if name == "aurora_restore_in_progress") == 0


def test_without_a_history_entry_the_phase_counts_from_when_it_was_first_seen():
    clock = [ENTERED_UNIX]
    progress = RestoresInProgress(clock=lambda: clock[0])
    progress.observe("a", "one", status("Verifying", entered=None))  # the bounded history lost the entry
    clock[0] += 30
    progress.observe("a", "one", status("Verifying", entered=None))
    assert samples(progress)[("aurora_restore_oldest_phase_age_seconds", "Verifying")] == 30
