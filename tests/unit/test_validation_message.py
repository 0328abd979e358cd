"""driver.describe_validation_error: an invalid spec becomes a Failed status naming fields, never their values."""

import pytest
from pydantic import ValidationError

from aurora_restore.api.models import AuroraRestoreSpec
from aurora_restore.driver import describe_validation_error

SECRET = "Hunter2-Pa55word"


def message_for(document: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        AuroraRestoreSpec.model_validate(document)
    return describe_validation_error(caught.value)


def test_names_every_bad_field_by_its_spec_path():
    message = message_for(
        {
            "source": {"region": "nowhere", "snapshotIdentifier": "s"},
            "target": {"clusterIdentifier": "bad_name", "instances": {"count": 99}},
            "existingTarget": {"policy": "Overwrite"},
            "timeout": "forever",
        }
    )
    assert message.startswith("invalid spec: ")
    for path in (
        "spec.source.region:",
        "spec.target.clusterIdentifier:",
        "spec.target.instances.count:",
        "spec.existingTarget.policy:",
        "spec.timeout:",
    ):
        assert path in message


def test_names_missing_required_fields():
    message = message_for({"source": {"snapshotIdentifier": "s"}})
    assert "spec.source.region: Field required" in message
    assert "spec.target: Field required" in message


def test_a_rule_across_fields_is_reported_on_the_parent():
    message = message_for({"source": {"region": "eu-west-1"}, "target": {"clusterIdentifier": "t"}})
    assert "spec.source: " in message and "exactly one of snapshotIdentifier, latest, pointInTime or clone" in message


SOURCE = {"region": "eu-west-1", "snapshotIdentifier": "s"}
TARGET = {"clusterIdentifier": "t"}


@pytest.mark.parametrize(
    "document",
    [
        {"source": {**SOURCE, "region": SECRET}, "target": TARGET},
        {"source": SOURCE, "target": {"clusterIdentifier": SECRET + "_"}},
        {"source": SOURCE, "target": {**TARGET, "port": SECRET}},
        {"source": SOURCE, "target": TARGET, "timeout": SECRET},
        {"source": SOURCE, "target": TARGET, "deletionPolicy": SECRET},
        {"source": SOURCE, "target": TARGET, "existingTarget": {"policy": SECRET}},
        {
            "source": {
                "region": "eu-west-1",
                "latest": {"clusterIdentifier": "p", "snapshotType": SECRET, "maxAge": SECRET},
            },
            "target": TARGET,
        },
        {"source": SOURCE, "target": {**TARGET, "instances": SECRET}},
        {
            "source": {**SOURCE, "snapshotIdentifier": ["x", SECRET]},
            "target": {**TARGET, "vpcSecurityGroupIds": SECRET},
        },
        {"source": SOURCE, "target": {**TARGET, "serverlessV2Scaling": {"minCapacity": SECRET, "maxCapacity": 1}}},
    ],
)
def test_never_echoes_the_values(document):
    message = message_for(document)
    assert SECRET not in message
    assert SECRET.lower() not in message.lower()
