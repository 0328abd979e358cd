"""Every CEL rule of the CRDs, enforced by the real kube-apiserver: for each, a spec it accepts and the nearest spec it
refuses with that rule's message. A rule added to the CRD without cases here fails the coverage test.

Creates are server-side dry runs: the apiserver validates them completely and stores nothing."""

import copy

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aurora_restore.api import GROUP, KIND, PLURAL, VERSION
from aurora_restore.api.crd import build_crd, build_policy_crd
from aurora_restore.api.policy import POLICY_KIND, POLICY_PLURAL

BASE = {"source": {"region": "us-east-1", "snapshotIdentifier": "a"}, "target": {"clusterIdentifier": "c"}}
PASSWORD = {"secretRef": {"name": "master", "key": "password"}}
POINT_IN_TIME = {"region": "us-east-1", "pointInTime": {"clusterIdentifier": "src", "useLatestRestorableTime": True}}
CLONE = {"region": "us-east-1", "clone": {"clusterIdentifier": "src"}}
IMMUTABLE = "spec is immutable once accepted: create a new AuroraRestore to restore again"


def spec(**changes) -> dict:
    """BASE with top-level sections replaced."""
    return {**copy.deepcopy(BASE), **changes}


# rule message -> (a spec the rule accepts, the nearest spec it refuses)
CASES = {
    "spec.source needs exactly one of snapshotIdentifier, latest, pointInTime or clone": (
        spec(),
        spec(source={"region": "us-east-1", "snapshotIdentifier": "a", "latest": {"clusterIdentifier": "b"}}),
    ),
    "spec.source.accountId needs spec.source.roleArn: a role in that account to share from": (
        spec(source={**BASE["source"], "accountId": "210987654321",
                     "roleArn": "arn:aws:iam::210987654321:role/share"}),
        spec(source={**BASE["source"], "accountId": "210987654321"}),
    ),
    "spec.source.pointInTime needs exactly one of restoreTime or useLatestRestorableTime: true": (
        spec(source=POINT_IN_TIME),
        spec(source={"region": "us-east-1", "pointInTime": {"clusterIdentifier": "src",
                                                            "useLatestRestorableTime": False}}),
    ),
    "spec.source.pointInTime restores in the source cluster's region and account: "
    "leave target.region and source.accountId unset": (
        spec(source=POINT_IN_TIME, target={"clusterIdentifier": "c", "region": "us-east-1"}),
        spec(source=POINT_IN_TIME, target={"clusterIdentifier": "c", "region": "us-west-2"}),
    ),
    "spec.source.pointInTime keeps the source cluster's engine version and zones: leave target.engineVersion and "
    "target.availabilityZones unset (upgrade or move afterwards)": (
        spec(source=POINT_IN_TIME, target={"clusterIdentifier": "c", "availabilityZones": []}),
        spec(source=POINT_IN_TIME, target={"clusterIdentifier": "c", "availabilityZones": ["us-east-1a"]}),
    ),
    "spec.source.clone keeps the source cluster's engine version and zones: leave target.engineVersion and "
    "target.availabilityZones unset": (
        spec(source=CLONE, target={"clusterIdentifier": "c", "availabilityZones": []}),
        spec(source=CLONE, target={"clusterIdentifier": "c", "engineVersion": "16.4"}),
    ),
    "performanceInsights.retentionPeriod: AWS takes 7, 731 or a multiple of 31 from 31 to 713": (
        spec(target={"clusterIdentifier": "c", "instances": {"performanceInsights": {"retentionPeriod": 713}}}),
        spec(target={"clusterIdentifier": "c", "instances": {"performanceInsights": {"retentionPeriod": 94}}}),
    ),
    "performanceInsights.kmsKeyId and retentionPeriod need enabled: true": (
        spec(target={"clusterIdentifier": "c", "instances": {"performanceInsights": {"enabled": False}}}),
        spec(target={"clusterIdentifier": "c",
                     "instances": {"performanceInsights": {"enabled": False, "retentionPeriod": 7}}}),
    ),
    "enhancedMonitoring.roleArn is required when interval is above 0, and only then": (
        spec(target={"clusterIdentifier": "c", "instances": {"enhancedMonitoring": {
            "interval": 60, "roleArn": "arn:aws:iam::111111111111:role/rds-monitoring"}}}),
        spec(target={"clusterIdentifier": "c", "instances": {"enhancedMonitoring": {"interval": 60}}}),
    ),
    "minCapacity must not exceed maxCapacity": (
        spec(target={"clusterIdentifier": "c", "serverlessV2Scaling": {"minCapacity": 2, "maxCapacity": 2}}),
        spec(target={"clusterIdentifier": "c", "serverlessV2Scaling": {"minCapacity": 4, "maxCapacity": 2}}),
    ),
    "spec.masterPassword needs exactly one of secretRef, secretsManagerSecretId or manageInSecretsManager: true": (
        spec(masterPassword=PASSWORD),
        spec(masterPassword={**PASSWORD, "manageInSecretsManager": True}),
    ),
    "spec.masterPassword is required for users, verification, connectionSecret, masking and hooks": (
        spec(masterPassword=PASSWORD, connectionSecret={"name": "orders-db"}),
        spec(hooks={"postRestore": [{"name": "analyze", "sql": "ANALYZE"}]}),
    ),
}


def crd_rules(crd: dict | None = None) -> list[str]:
    """The message of every x-kubernetes-validations rule anywhere in the CRD's schema (AuroraRestore's unless
    another is given)."""
    messages: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            messages.extend(rule["message"] for rule in node.get("x-kubernetes-validations", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(crd or build_crd())
    return messages


def dry_run_create(api_client, namespace: str, name: str, body_spec: dict) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": body_spec}
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, dry_run="All"
    )


def test_every_rule_of_the_crd_has_cases():
    assert sorted(set(crd_rules())) == sorted(set(CASES) | {IMMUTABLE})


@pytest.mark.parametrize("message", sorted(CASES))
def test_rule_accepts_and_refuses(api_client, namespace, message):
    accepted, refused = CASES[message]
    dry_run_create(api_client, namespace, "accepted", accepted)
    with pytest.raises(ApiException) as error:
        dry_run_create(api_client, namespace, "refused", refused)
    assert error.value.status == 422
    assert message in error.value.body.replace('\\"', '"'), error.value.body


def test_spec_is_immutable_but_metadata_is_not(api_client, namespace):
    objects = client.CustomObjectsApi(api_client)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": "immutable"}, "spec": spec()}
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    # Accepted: a change that leaves the spec as it is (labels, or re-applying the same spec).
    objects.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "immutable", {"metadata": {"labels": {"team": "data"}}, "spec": spec()}
    )
    with pytest.raises(ApiException) as error:
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "immutable", {"spec": {"target": {"clusterIdentifier": "d"}}}
        )
    assert error.value.status == 422 and IMMUTABLE in error.value.body


# AuroraRestorePolicy's rule message -> (a spec it accepts, the nearest spec it refuses)
POLICY_CASES = {
    "spec needs namespaces or namespaceSelector: a policy that covers no namespace allows nothing": (
        {"namespaces": ["team-a"]}, {"namespaces": [], "targets": [{}]}),
}


def test_every_rule_of_the_policy_crd_has_cases():
    assert sorted(crd_rules(build_policy_crd())) == sorted(POLICY_CASES)


@pytest.mark.parametrize("message", sorted(POLICY_CASES))
def test_policy_rule_accepts_and_refuses(api_client, message):
    accepted, refused = POLICY_CASES[message]
    objects = client.CustomObjectsApi(api_client)

    def create(name: str, body_spec: dict) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": POLICY_KIND, "metadata": {"name": name},
                "spec": body_spec}
        objects.create_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, body, dry_run="All")

    create("accepted", accepted)
    create("by-selector", {"namespaceSelector": {"matchLabels": {"team": "a"}}})
    with pytest.raises(ApiException) as error:
        create("refused", refused)
    assert error.value.status == 422
    assert message in error.value.body.replace('\\"', '"'), error.value.body

