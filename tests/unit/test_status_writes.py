"""Status writes: one per phase transition, plus the few a user or the next turn needs (a created resource's
record, an audit entry, a message that says something new); a change in what a step describes again every turn
(the cluster, its instances) alone is not written (machine.worth_writing, docs/architecture.md).

The restore runs through the driver's own write (driver._record) against a stand-in apiserver that keeps the last
written status: each turn starts from what was written, as a real turn does after an operator restart."""

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from aurora_restore import driver
from aurora_restore.api.models import AuroraRestoreStatus
from aurora_restore.machine import REOBSERVED_FIELDS, run_step, worth_writing
from aurora_restore.obs import audit

from .conftest import POLL, SAME_REGION_PHASES, TARGET

LOG = logging.getLogger("test")


class StatusApi:
    """The AuroraRestore's status as the apiserver holds it: every write in order, conditional on resourceVersion."""

    def __init__(self, status: AuroraRestoreStatus):
        self.writes: list[dict[str, Any]] = [as_json(status)]  # the driver's acceptance is the first write
        self.events: list[tuple[str, str]] = []

    @property
    def status(self) -> dict[str, Any]:
        return self.writes[-1]

    def patch_status(self, namespace: str, name: str, status: dict, resource_version: str | None) -> dict:
        assert resource_version == str(len(self.writes)), "a write not conditional on the last one"
        self.writes.append(status)
        return {"metadata": {"resourceVersion": str(len(self.writes))}}

    def record(self, obj, event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason))


def as_json(status: AuroraRestoreStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def drive(run, api: StatusApi, max_turns: int = 50) -> AuroraRestoreStatus:
    """Turns until a terminal phase: each reads the written status, runs the step in an audit turn (every mutating
    call of the fake AWS becomes an audit entry, as the botocore hook of aws/clients.py makes one) and writes
    through driver._record."""
    runtime = SimpleNamespace(restores=api, events=api, settings=SimpleNamespace(history_limit=run.history_limit))
    for _ in range(max_turns):
        status = AuroraRestoreStatus.model_validate(api.status)
        if status.phase.is_terminal:
            return status
        metadata = {**run.resource["metadata"], "resourceVersion": str(len(api.writes))}
        obj = {**run.resource, "metadata": metadata, "spec": {}}
        with audit.turn(metadata, status.phase):
            mutations_before = len(run.cloud.mutations)
            outcome = run_step(run.context(status))
            for call in run.cloud.mutations[mutations_before:]:
                audit.record("rds", call.action, call.region, None, "ok", None, None)
            driver._record(runtime, obj, status, outcome, run.now, LOG)
        run.now += POLL
    raise AssertionError(f"no terminal phase after {max_turns} turns: {api.status.get('phase')}")


@pytest.mark.parametrize("count", [1, 2])
def test_a_plain_restore_writes_its_status_at_most_twice_more_than_it_changes_phase(restore, count):
    run = restore({"target": {"instances": {"count": count}}})
    api = StatusApi(run.status)
    final = drive(run, api)
    assert [entry.phase for entry in final.history] == SAME_REGION_PHASES
    assert len(api.writes) <= len(final.history) + 2, [write["message"] for write in api.writes]
    assert [reason for _, reason in api.events] == [str(phase) for phase in SAME_REGION_PHASES[1:]]


def test_what_a_user_or_the_next_turn_needs_is_still_written(restore):
    run = restore()
    api = StatusApi(run.status)
    final = drive(run, api)
    messages = [write["message"] for write in api.writes]
    # The write after RestoreDBClusterFromSnapshot records the new cluster and says what it does.
    created = next(write for write in api.writes if write["message"] == f"cluster {TARGET} is creating")
    assert created["cluster"]["identifier"] == TARGET
    # The write after the CreateDBInstance calls records both instances.
    first_wait = next(write for write in api.writes if write["message"] == "0/2 instances available")
    assert [i["identifier"] for i in first_wait["instances"]] == [f"{TARGET}-1", f"{TARGET}-2"]
    # Every mutating call is in status.audit, each written in the turn that made it.
    assert [entry.action for entry in final.audit] == [f"rds:{call.action}" for call in run.cloud.mutations]
    # No message written twice in a row: a repeat would be a write for nothing a user sees.
    assert all(before != after for before, after in zip(messages, messages[1:])), messages
    # What was not written on its own arrives with the phase change: the instances as they ended.
    assert [(i.writer, i.status) for i in final.instances] == [(True, "available"), (False, "available")]
    assert final.cluster.status == "available"


@pytest.mark.parametrize("field", sorted(REOBSERVED_FIELDS))
def test_a_change_only_in_what_steps_describe_again_is_not_written(field):
    written = {"phase": "CreatingInstances", "message": "0/1 instances available", field: [{"status": "creating"}]}
    assert not worth_writing(written, {**written, field: [{"status": "backing-up"}]})
    assert not worth_writing(written, dict(written))


@pytest.mark.parametrize("change", [
    {"message": "1/2 instances available"},
    {"phase": "ConfiguringAccess"},
    {"audit": [{"action": "rds:CreateDBInstance"}]},
    {"observedGeneration": 2},
    {"snapshot": {"identifier": "s"}},
])
def test_any_other_change_is_written_with_what_steps_describe_again(change):
    written = {"phase": "CreatingInstances", "message": "0/1 instances available", "instances": []}
    assert worth_writing(written, {**written, **change, "instances": [{"status": "creating"}]})
