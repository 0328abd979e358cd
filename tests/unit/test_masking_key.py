"""Masking's hash key between turns: the fingerprint status.masking records before the first change, and a key
changed mid-restore refused before any connection (the tables already masked would no longer join the rest).

No database server takes part: the restored cluster's endpoint is a loopback port bound but not listening, so a
connection attempt is refused at once; what a turn decides before connecting is exercised fully."""

import socket
from collections.abc import Iterator

import pytest

from aurora_restore.api.models import MaskingStatus, MaskingTableStatus
from aurora_restore.api.phase import Phase
from aurora_restore.db.masking import key_fingerprint
from aurora_restore.steps.outcomes import Fail, Wait
from aurora_restore.steps.context import RESTORE_UID_TAG

from .conftest import REPLACEABLE, TARGET

KEY = "masking-key-0123456789"
MASKING = {
    "masterPassword": {"secretRef": {"name": "db", "key": "master"}},
    "masking": {"database": "crm", "hashKeySecretRef": {"name": "db", "key": "hash-key"},
                "rules": [{"table": "customers", "column": "email", "strategy": "hash"}]},
}


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def masking_run(restore, closed_port, key: str, recorded: str | None):
    """A restore in Masking whose status recorded one table masked with the key of fingerprint `recorded`."""
    run = restore(MASKING)
    run.target.endpoint_host = "127.0.0.1"
    run.target.add_cluster(TARGET, tags={**REPLACEABLE, RESTORE_UID_TAG: run.uid}, instances=1)
    run.target.clusters[TARGET]["Port"] = closed_port
    run.secrets.add("db", {"master": "Master-pa55word", "hash-key": key})
    masked = MaskingStatus(tables_total=2, tables_done=1, rows_changed=4, key_fingerprint=recorded, tables=[
        MaskingTableStatus(table="public.customers", rules=1, rows_changed=4, rewritten=True),
        MaskingTableStatus(table="public.orders", rules=1)])
    run.status = run.status.model_copy(update={"phase": Phase.MASKING, "masking": masked})
    run.phases = [Phase.MASKING]
    return run


def test_a_key_changed_between_tables_fails_before_any_connection(restore, closed_port):
    run = masking_run(restore, closed_port, "another-key-9876543210", recorded=key_fingerprint(KEY.encode()))
    outcome = run.step()
    assert isinstance(outcome, Fail) and outcome.reason == "MaskingKeyChanged", outcome
    assert "would not join" in outcome.message
    for text in (repr(outcome), run.status.model_dump_json(by_alias=True)):
        assert KEY not in text and "another-key-9876543210" not in text


@pytest.mark.parametrize("recorded", ["same", None])  # None: recorded by an operator without fingerprints
def test_the_same_key_goes_on_to_the_database(restore, closed_port, recorded):
    run = masking_run(restore, closed_port, KEY, recorded=key_fingerprint(KEY.encode()) if recorded else None)
    outcome = run.step()
    assert isinstance(outcome, Wait) and outcome.backoff and "cannot connect" in outcome.message, outcome
    assert run.phase == Phase.MASKING
