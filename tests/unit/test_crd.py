"""The CRD is generated from the models: the committed YAML must match, and the schema must be usable."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from aurora_restore.api.crd import build_crd, build_crds, build_policy_crd, render_crd, render_crds
from aurora_restore.api.models import RDS_IDENTIFIER_PATTERN, AuroraRestoreSpec

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "make crds (aurora-restore crd --out crds, and --out helm/aurora-restore-operator/crds)"


def root_schema() -> dict:
    return build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(schema: dict, path: str):
    """Yield (path, node) for every property below `schema`, through arrays and maps."""
    for name, child in schema.get("properties", {}).items():
        yield f"{path}.{name}", child
        yield from walk(child, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


# --- the generated file --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crd", build_crds(), ids=lambda crd: crd["metadata"]["name"])
def test_committed_crd_matches_the_models(crd):
    path = REPO / "crds" / f"{crd['metadata']['name']}.yaml"
    assert path.exists(), f"{path.relative_to(REPO)} is missing; generate it with: {REGENERATE}"
    assert path.read_text() == render_crd(crd), f"the CRD is stale; regenerate it with: {REGENERATE}"


def test_crds_directory_holds_exactly_the_generated_crds():
    assert sorted(p.name for p in (REPO / "crds").glob("*.yaml")) == sorted(
        f"{crd['metadata']['name']}.yaml" for crd in build_crds())


def test_rendered_crds_are_the_yaml_documents_of_build_crds():
    assert list(yaml.safe_load_all(render_crds())) == build_crds()


def test_policy_crd_is_cluster_scoped_without_status():
    crd = build_policy_crd()
    assert crd["metadata"]["name"] == "aurorarestorepolicies.dbrestore.io"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["kind"] == "AuroraRestorePolicy"
    [version] = crd["spec"]["versions"]
    assert "subresources" not in version
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["properties"]) == {
        "namespaces", "namespaceSelector", "targets", "sources", "roles", "secretsManagerSecrets", "replace",
        "instanceClasses", "maxInstances", "allowFinalSnapshotSkip", "snsTopics", "webhookHosts", "allowJobHooks",
        "snapshotShareAccounts"}
    assert spec["properties"]["replace"]["properties"]["allowed"]["default"] is False
    assert spec["properties"]["replace"]["properties"]["onlyClustersCreatedByOperator"]["default"] is True
    assert spec["properties"]["allowFinalSnapshotSkip"]["default"] is False
    missing = [path for path, node in walk(spec, "spec") if not node.get("description")]
    assert missing == []


def test_crd_names_and_printer_columns():
    crd = build_crd()
    assert crd["metadata"]["name"] == "aurorarestores.dbrestore.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == "AuroraRestore"
    assert crd["spec"]["names"]["shortNames"] == ["ar"]
    [version] = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Phase", "Source", "Target", "Age", "Message"]
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Message"]["priority"] == 1


# --- the schema ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["spec", "status"])
def test_every_property_has_a_description(part):
    schema = root_schema()["properties"][part]
    assert schema.get("description")
    missing = [path for path, node in walk(schema, part) if not node.get("description")]
    assert missing == []


@pytest.mark.parametrize("part", ["spec", "status"])
def test_schema_is_structural(part):
    """No constructs the apiserver rejects in a structural schema, and every node has a type."""
    schema = root_schema()["properties"][part]
    for path, node in [(part, schema), *walk(schema, part)]:
        assert "type" in node, path
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title", "$defs"} & node.keys(), path
        if node["type"] == "object":
            assert ("properties" in node or "additionalProperties" in node or path.endswith("metadata")
                    or node.get("x-kubernetes-preserve-unknown-fields")), path


def test_cel_rules_exist():
    spec = root_schema()["properties"]["spec"]
    assert {"rule": "self == oldSelf"}.items() <= spec["x-kubernetes-validations"][0].items()
    source_rules = [r["rule"] for r in spec["properties"]["source"]["x-kubernetes-validations"]]
    assert source_rules == [
        "[has(self.snapshotIdentifier), has(self.latest), has(self.pointInTime), has(self.clone)]"
        ".filter(x, x).size() == 1",
        "!has(self.accountId) || has(self.roleArn)",
    ]
    scaling = spec["properties"]["target"]["properties"]["serverlessV2Scaling"]
    assert [r["rule"] for r in scaling["x-kubernetes-validations"]] == ["self.minCapacity <= self.maxCapacity"]
    for rule in [*spec["x-kubernetes-validations"], *spec["properties"]["source"]["x-kubernetes-validations"]]:
        assert rule["message"]


def test_schema_carries_the_model_constraints_and_defaults():
    spec = root_schema()["properties"]["spec"]
    target = spec["properties"]["target"]
    assert spec["required"] == ["source", "target"]
    assert target["required"] == ["clusterIdentifier"]
    assert target["properties"]["clusterIdentifier"]["pattern"] == RDS_IDENTIFIER_PATTERN
    assert target["properties"]["clusterIdentifier"]["maxLength"] == 63
    assert target["properties"]["instances"]["properties"]["count"] == {
        "description": "How many instances; the first one is the writer.",
        "type": "integer",
        "minimum": 0,
        "maximum": 16,
        "default": 1,
    }
    assert spec["properties"]["timeout"]["default"] == "6h"
    assert spec["properties"]["existingTarget"]["properties"]["policy"]["enum"] == ["Fail", "Replace"]
    assert "copy" in spec["properties"] and "copy_" not in spec["properties"]
    assert target["properties"]["tags"]["additionalProperties"] == {"type": "string"}


def test_status_phase_lists_every_phase():
    from aurora_restore.api.phase import Phase

    phase = root_schema()["properties"]["status"]["properties"]["phase"]
    assert phase["enum"] == [p.value for p in Phase]


# --- spec validation in the models -----------------------------------------------------------------------------------


def spec(**changes) -> dict:
    base = {
        "source": {"region": "eu-west-1", "snapshotIdentifier": "prod-2025-03-01"},
        "target": {"clusterIdentifier": "staging"},
    }
    for key, value in changes.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return base


def error_locations(document: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as caught:
        AuroraRestoreSpec.model_validate(document)
    return [error["loc"] for error in caught.value.errors()]


def test_a_minimal_spec_gets_the_documented_defaults():
    parsed = AuroraRestoreSpec.model_validate(spec())
    assert parsed.target_region == "eu-west-1" and not parsed.needs_copy
    assert parsed.target.instances.count == 1
    assert parsed.existing_target.policy == "Fail" and parsed.existing_target.final_snapshot is True
    assert parsed.copy_.delete_after_restore is True and parsed.copy_.copy_tags is True
    assert parsed.timeout == "6h"
    assert parsed.deletion_policy == "Retain"


def test_target_region_defaults_to_the_source_region_and_a_different_one_needs_a_copy():
    parsed = AuroraRestoreSpec.model_validate(spec(target={"region": "us-east-1"}))
    assert parsed.target_region == "us-east-1" and parsed.needs_copy


@pytest.mark.parametrize(
    "source",
    [
        {"region": "eu-west-1"},
        {
            "region": "eu-west-1",
            "snapshotIdentifier": "prod-2025-03-01",
            "latest": {"clusterIdentifier": "prod"},
        },
    ],
    ids=["none", "both"],
)
def test_source_needs_exactly_one_kind(source):
    with pytest.raises(ValidationError, match="exactly one of snapshotIdentifier, latest, pointInTime or clone"):
        AuroraRestoreSpec.model_validate({**spec(), "source": source})


def test_source_latest_alone_is_accepted():
    parsed = AuroraRestoreSpec.model_validate(
        {**spec(), "source": {"region": "eu-west-1", "latest": {"clusterIdentifier": "prod"}}}
    )
    assert parsed.source.latest.snapshot_type == "any"


@pytest.mark.parametrize(
    "identifier", ["1staging", "-staging", "staging-", "stag--ing", "stag_ing", "stag.ing", "", "a" * 64]
)
def test_bad_target_identifiers_are_rejected(identifier):
    assert error_locations(spec(target={"clusterIdentifier": identifier})) == [("target", "clusterIdentifier")]


@pytest.mark.parametrize("identifier", ["a", "staging", "Staging-2", "a" * 63, "x-1-y-2"])
def test_good_target_identifiers_are_accepted(identifier):
    AuroraRestoreSpec.model_validate(spec(target={"clusterIdentifier": identifier}))


@pytest.mark.parametrize("region", ["eu-west", "EU-WEST-1", "euwest1", "eu-west-1a", ""])
def test_bad_regions_are_rejected(region):
    assert error_locations(spec(source={"region": region})) == [("source", "region")]


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1", "ap-southeast-5", "us-isob-east-1"])
def test_good_regions_are_accepted(region):
    AuroraRestoreSpec.model_validate(spec(source={"region": region}))


@pytest.mark.parametrize("timeout", ["6 hours", "6H", "1.5h", "-1h", "30m1h", "h", "0s", "0h0m", ""])
def test_bad_timeouts_are_rejected(timeout):
    assert error_locations(spec(timeout=timeout)) == [("timeout",)]


@pytest.mark.parametrize("max_age", ["1 day", "1w", "26H", "1.5d"])
def test_bad_max_age_is_rejected(max_age):
    document = {**spec(), "source": {"region": "eu-west-1", "latest": {"clusterIdentifier": "p", "maxAge": max_age}}}
    assert error_locations(document) == [("source", "latest", "maxAge")]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", 80),
        ("port", 70000),
        ("instances", {"count": -1}),
        ("instances", {"count": 17}),
        ("serverlessV2Scaling", {"minCapacity": -1, "maxCapacity": 4}),
        ("serverlessV2Scaling", {"minCapacity": 1, "maxCapacity": 512}),
    ],
)
def test_out_of_range_numbers_are_rejected(field, value):
    locations = error_locations(spec(target={field: value}))
    assert locations and all(location[:2] == ("target", field) for location in locations)


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ("existingTarget", {"policy": "Overwrite"}),
        ("source", {"latest": {"clusterIdentifier": "p", "snapshotType": "public"}, "snapshotIdentifier": None}),
        ("deletionPolicy", "Orphan"),
    ],
)
def test_unknown_enum_values_are_rejected(section, value):
    with pytest.raises(ValidationError):
        AuroraRestoreSpec.model_validate(spec(**{section: value}))
