"""examples/gitops: the Applications point at paths that exist with values the chart accepts, the sync waves put
the restore first, and every manifest passes the apiserver's validation (server-side dry run)."""

import pytest
import yaml
from helm_cli import REPO, find
from kubernetes import client, dynamic

from aurora_restore.dev.crds import install_crds

GITOPS = REPO / "examples" / "gitops"


def documents(path):
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def applications() -> dict[str, dict]:
    apps = [doc for path in sorted(GITOPS.glob("*.yaml")) for doc in documents(path) if doc["kind"] == "Application"]
    return {app["metadata"]["name"]: app for app in apps}


def wave(obj) -> int:
    return int(obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def test_applications_point_at_paths_of_this_repository():
    apps = applications()
    assert set(apps) == {"aurora-restore-operator", "orders-stage"}
    for app in apps.values():
        assert (REPO / app["spec"]["source"]["path"]).is_dir(), app["spec"]["source"]["path"]
    assert apps["aurora-restore-operator"]["spec"]["source"]["path"] == "helm/aurora-restore-operator"


def test_operator_application_values_pass_the_chart_schema(helm):
    values = applications()["aurora-restore-operator"]["spec"]["source"]["helm"]["valuesObject"]
    service_account = find(helm.template(values), "ServiceAccount")
    assert service_account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == values["aws"]["roleArn"]


def test_the_restore_comes_in_the_first_wave():
    path = REPO / applications()["orders-stage"]["spec"]["source"]["path"]
    objects = [doc for manifest in sorted(path.glob("*.yaml")) for doc in documents(manifest)]
    restores = [obj for obj in objects if obj["kind"] == "AuroraRestore"]
    others = [obj for obj in objects if obj["kind"] != "AuroraRestore"]
    assert len(restores) == 1 and others
    assert all(wave(obj) > wave(restores[0]) for obj in others)


@pytest.fixture(scope="module")
def dynamic_client(admin_client):
    install_crds(admin_client)
    core = client.CoreV1Api(admin_client)
    if not [ns for ns in core.list_namespace().items if ns.metadata.name == "orders-stage"]:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="orders-stage")))
    return dynamic.DynamicClient(admin_client)


@pytest.mark.parametrize("manifest", sorted(p.name for p in (GITOPS / "orders-stage").glob("*.yaml")))
def test_manifests_pass_server_side_validation(dynamic_client, manifest):
    for obj in documents(GITOPS / "orders-stage" / manifest):
        resource = dynamic_client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        resource.create(body=obj, namespace=obj["metadata"]["namespace"], query_params=[("dryRun", "All"), ("fieldValidation", "Strict")])
