"""status.audit: the entries a turn audited go into the status the turn writes (bounded, newest last), also when the
outcome changes nothing else; a refused write leaves them in the log only; the turn's restore reaches the step's
worker thread."""

import asyncio
import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from aurora_restore import driver
from aurora_restore.api.models import AuditEntry, AuroraRestoreStatus
from aurora_restore.api.phase import Phase
from aurora_restore.k8s.resources import StatusConflict
from aurora_restore.obs import audit

METADATA = {"namespace": "team-a", "name": "orders", "uid": "uid-1", "resourceVersion": "7"}
LOGGER = logging.getLogger("test")


class Restores:
    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.written: list[dict] = []

    def patch_status(self, namespace, name, status, resource_version):
        if self.refuse:
            raise StatusConflict("changed")
        self.written.append(status)
        return {"metadata": {"resourceVersion": str(int(resource_version) + 1)}}


def runtime(restores: Restores):
    return SimpleNamespace(restores=restores, events=SimpleNamespace(record=lambda *args: None))


def waiting_status(**fields) -> AuroraRestoreStatus:
    return AuroraRestoreStatus(phase=Phase.RESTORING_CLUSTER, message="waiting for the cluster", **fields)


def audited(count: int) -> None:
    for number in range(count):
        audit.record("rds", "CreateDBInstance", "eu-west-1", f"orders-{number}", "Success", f"id-{number}", 1)


def test_a_wait_that_only_made_calls_still_writes_them_into_status():
    restores = Restores()
    status = waiting_status()
    with audit.turn(METADATA, status.phase) as turn:
        audited(2)
        written = driver._persist(runtime(restores), {"metadata": dict(METADATA)}, status, status, LOGGER,
                                  "Waiting", "waiting")
        assert turn.entries == []  # written: a second write of this turn does not repeat them
    [patch] = restores.written
    assert [(entry["action"], entry["resource"], entry["result"]) for entry in patch["audit"]] == [
        ("rds:CreateDBInstance", "orders-0", "Success"), ("rds:CreateDBInstance", "orders-1", "Success")]
    assert [entry.resource for entry in written.audit] == ["orders-0", "orders-1"]


def test_a_turn_without_calls_writes_nothing():
    restores = Restores()
    status = waiting_status()
    with audit.turn(METADATA, status.phase):
        driver._persist(runtime(restores), {"metadata": dict(METADATA)}, status, status, LOGGER, "W", "w")
    assert restores.written == []


def test_status_keeps_the_newest_entries_up_to_the_bound():
    old = [AuditEntry(time=datetime(2026, 1, 1, tzinfo=timezone.utc), action="rds:ModifyDBCluster",
                      resource=f"old-{number}", result="Success") for number in range(audit.STATUS_AUDIT_LIMIT)]
    restores = Restores()
    status = waiting_status(audit=old)
    with audit.turn(METADATA, status.phase):
        audited(3)
        driver._persist(runtime(restores), {"metadata": dict(METADATA)}, status, status, LOGGER, "W", "w")
    resources = [entry["resource"] for entry in restores.written[0]["audit"]]
    assert len(resources) == audit.STATUS_AUDIT_LIMIT
    assert resources[:2] == ["old-3", "old-4"] and resources[-3:] == ["orders-0", "orders-1", "orders-2"]


def test_a_refused_write_keeps_the_entries_out_of_status_and_in_the_log(caplog):
    caplog.set_level(logging.INFO, logger="aurora_restore.audit")
    status = waiting_status()
    with audit.turn(METADATA, status.phase):
        audited(1)
        with pytest.raises(StatusConflict):
            driver._persist(runtime(Restores(refuse=True)), {"metadata": dict(METADATA)}, status, status, LOGGER,
                            "W", "w")
    [line] = [record.audit for record in caplog.records if record.name == "aurora_restore.audit"]
    assert line["uid"] == "uid-1" and line["invocationId"] == "id-0"


def test_the_turns_restore_reaches_the_steps_worker_thread_and_ends_with_the_turn():
    def step():
        audited(1)
        return audit.current_turn()

    async def daemon():
        with audit.turn(METADATA, "Preflight") as turn:
            seen = await asyncio.to_thread(step)
        return turn, seen, audit.current_turn()

    turn, seen, after = asyncio.run(daemon())
    assert seen is turn and [entry.resource for entry in turn.entries] == ["orders-0"]
    assert after is None
