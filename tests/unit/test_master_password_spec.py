"""spec.masterPassword names exactly one source, in the CRD (CEL, checked by the apiserver) and in the models."""

import pytest
from pydantic import ValidationError

from aurora_restore.api.crd import build_crd
from aurora_restore.api.models import AuroraRestoreSpec, MasterPassword

SOURCES = {
    "secretRef": {"secretRef": {"name": "aurora-master", "key": "password"}},
    "secretsManagerSecretId": {"secretsManagerSecretId": "restores/staging-master"},
    "manageInSecretsManager": {"manageInSecretsManager": True},
}
EXACTLY_ONE = "exactly one of secretRef, secretsManagerSecretId or manageInSecretsManager"


def master_password_schema() -> dict:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]["properties"]["masterPassword"]


def test_crd_has_the_exactly_one_source_rule_on_master_password():
    [rule] = master_password_schema()["x-kubernetes-validations"]
    assert rule["rule"] == (
        "[has(self.secretRef), has(self.secretsManagerSecretId), "
        "has(self.manageInSecretsManager) && self.manageInSecretsManager].filter(x, x).size() == 1"
    )
    assert "spec.masterPassword" in rule["message"] and EXACTLY_ONE in rule["message"]


def test_crd_schema_lists_the_three_sources():
    assert set(master_password_schema()["properties"]) == set(SOURCES)


@pytest.mark.parametrize("value", [{}, {"manageInSecretsManager": False}], ids=["empty", "managed-false"])
def test_no_source_is_rejected(value):
    with pytest.raises(ValidationError, match=EXACTLY_ONE):
        MasterPassword.model_validate(value)


@pytest.mark.parametrize(
    "names",
    [
        ("secretRef", "secretsManagerSecretId"),
        ("secretRef", "manageInSecretsManager"),
        ("secretsManagerSecretId", "manageInSecretsManager"),
        tuple(SOURCES),
    ],
    ids="+".join,
)
def test_two_or_more_sources_are_rejected(names):
    value = {key: item for name in names for key, item in SOURCES[name].items()}
    with pytest.raises(ValidationError, match=EXACTLY_ONE):
        MasterPassword.model_validate(value)


@pytest.mark.parametrize("name", SOURCES)
def test_each_source_alone_is_accepted(name):
    MasterPassword.model_validate(SOURCES[name])


def test_manage_in_secrets_manager_false_does_not_count_as_a_source():
    parsed = MasterPassword.model_validate({**SOURCES["secretRef"], "manageInSecretsManager": False})
    assert parsed.secret_ref.name == "aurora-master" and not parsed.manage_in_secrets_manager


def test_the_spec_reports_the_rule_under_master_password():
    spec = {
        "source": {"region": "eu-west-1", "snapshotIdentifier": "prod-2025-03-01"},
        "target": {"clusterIdentifier": "staging"},
        "masterPassword": {**SOURCES["secretRef"], **SOURCES["secretsManagerSecretId"]},
    }
    with pytest.raises(ValidationError, match=EXACTLY_ONE) as raised:
        AuroraRestoreSpec.model_validate(spec)
    assert [error["loc"] for error in raised.value.errors()] == [("masterPassword",)]
