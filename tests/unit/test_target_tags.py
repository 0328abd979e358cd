"""spec.target.tags within RDS's tag rules (found before anything is restored, not at RestoreDBClusterFromSnapshot)."""

import pytest
from pydantic import ValidationError

from aurora_restore.api.models import OPERATOR_TAG_KEYS, AuroraRestoreSpec
from aurora_restore.api.phase import Phase

from .conftest import UID

BASE = {"source": {"region": "us-east-1", "snapshotIdentifier": "snap"}, "target": {"clusterIdentifier": "stage"}}


def spec_with(tags: dict[str, str]) -> AuroraRestoreSpec:
    return AuroraRestoreSpec.model_validate({**BASE, "target": {**BASE["target"], "tags": tags}})


def test_the_operator_tags_are_the_ones_it_counts(restore):
    run = restore()
    assert set(run.context().restore_tags) == set(OPERATOR_TAG_KEYS)
    assert run.context().restore_tags["dbrestore.io/restore-uid"] == UID


def test_up_to_47_user_tags_are_accepted():
    assert len(spec_with({f"k{i}": "v" for i in range(47)}).target.tags) == 47


@pytest.mark.parametrize(
    "tags, message",
    [
        ({f"k{i}": "v" for i in range(48)}, "has 48 tags; at most 47"),
        ({"aws:owner": "x"}, "not starting with 'aws:'"),
        ({"RDS:thing": "x"}, "not starting with 'aws:' or 'rds:'"),
        ({"k" * 129: "x"}, "1 to 128 characters"),
        ({"team": "v" * 257}, "at most 256 characters"),
        ({"team": "aws:data"}, "may not start with 'aws:'"),
    ],
)
def test_tags_aws_refuses_are_refused_with_the_rule(tags, message):
    with pytest.raises(ValidationError) as refused:
        spec_with(tags)
    assert message in str(refused.value)


def test_preflight_counts_the_operator_default_tags_too(restore):
    """47 user tags pass the model; with the operator's default tag (the harness sets one) and its own 3, 51."""
    run = restore({"target": {"tags": {f"k{i}": "v" for i in range(47)}}})
    for _ in range(10):
        if run.status.failure is not None:
            break
        run.step()
    assert run.status.failure.reason == "TooManyTags" and run.status.failure.phase == Phase.PREFLIGHT
    assert "51 tags" in run.status.failure.message
    assert run.cloud.calls_to("restore_cluster_from_snapshot") == [] and run.cloud.calls_to("copy_snapshot") == []
