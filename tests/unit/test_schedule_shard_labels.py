"""A shard's schedule makes runs of the same shard: each run carries the schedule's values of the labels the
shard's watch selector names (docs/scale.md#scale-out-shards), and no other label of the schedule."""

from datetime import datetime, timezone

import pytest

from aurora_restore.api.schedule import SCHEDULE_LABEL, AuroraRestoreScheduleSpec
from aurora_restore.scheduling.controller import run_body, selector_keys

SCHEDULE = {
    "metadata": {
        "name": "nightly", "namespace": "ns", "uid": "sched-uid",
        "labels": {"shard": "a", "tier": "gold", "app.kubernetes.io/instance": "gitops-app"},
    },
}
SPEC = AuroraRestoreScheduleSpec.model_validate({"schedule": "0 * * * *", "template": {
    "source": {"region": "us-east-1", "snapshotIdentifier": "snap"},
    "target": {"clusterIdentifier": "staging-{date}"},
}})
AT = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("selector, keys", [
    ("shard=a", ("shard",)),
    ("shard==a", ("shard",)),
    ("dbrestore.io/shard!=b", ("dbrestore.io/shard",)),
    ("shard=a,tier in (gold, silver),!legacy", ("shard", "tier", "legacy")),
    ("env notin (prod,dev) , app.kubernetes.io/name", ("env", "app.kubernetes.io/name")),
    ("shard=a,shard!=b", ("shard",)),
    (None, ()),
])
def test_selector_keys_are_the_label_keys_a_selector_tests(selector, keys):
    assert selector_keys(selector) == keys


def test_a_run_carries_the_schedules_values_of_the_shard_labels_only():
    body = run_body(SCHEDULE, SPEC, AT, selector_keys("shard=a,tier in (gold),!legacy"))
    assert body["metadata"]["labels"] == {"shard": "a", "tier": "gold", SCHEDULE_LABEL: "nightly"}


def test_without_a_shard_a_run_has_the_schedule_label_only():
    assert run_body(SCHEDULE, SPEC, AT)["metadata"]["labels"] == {SCHEDULE_LABEL: "nightly"}


def test_a_selector_key_the_schedule_lacks_is_not_invented():
    """`!legacy` matches the schedule (no such label) and so the run (none either)."""
    body = run_body(SCHEDULE, SPEC, AT, selector_keys("!legacy"))
    assert body["metadata"]["labels"] == {SCHEDULE_LABEL: "nightly"}
