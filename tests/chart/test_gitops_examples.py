"""examples/gitops: the Applications point at paths that exist with values the chart accepts, the sync waves put
the restore first, and every manifest passes the apiserver's validation (server-side dry run)."""

import pytest
import yaml
from helm_cli import REPO, find
from kubernetes import client, dynamic

from aurora_restore_devenv.crds import install_crds

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


def test_waves_put_the_restore_between_its_passwords_and_the_application():
    path = REPO / applications()["orders-stage"]["spec"]["source"]["path"]
    objects = {obj["kind"]: obj for manifest in sorted(path.glob("*.yaml")) for obj in documents(manifest)}
    assert set(objects) == {"ExternalSecret", "AuroraRestore", "Deployment"}
    assert wave(objects["ExternalSecret"]) < wave(objects["AuroraRestore"]) < wave(objects["Deployment"])
    restore, deployment = objects["AuroraRestore"], objects["Deployment"]
    # The application reads the connection Secret the restore writes, and the restore the passwords' Secret.
    written = {user["connectionSecret"]["name"] for user in restore["spec"]["users"]}
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {item["valueFrom"]["secretKeyRef"]["name"] for item in env} <= written
    assert restore["spec"]["masterPassword"]["secretRef"]["name"] == objects["ExternalSecret"]["spec"]["target"]["name"]


@pytest.fixture(scope="module")
def dynamic_client(admin_client):
    install_crds(admin_client)
    core = client.CoreV1Api(admin_client)
    if not [ns for ns in core.list_namespace().items if ns.metadata.name == "orders-stage"]:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="orders-stage")))
    return dynamic.DynamicClient(admin_client)


@pytest.mark.parametrize("manifest", sorted(p.name for p in (GITOPS / "orders-stage").glob("*.yaml")))
def test_manifests_pass_server_side_validation(dynamic_client, manifest):
    """Strict validation of every object whose API the control plane serves (not External Secrets' CRDs)."""
    for obj in documents(GITOPS / "orders-stage" / manifest):
        if obj["apiVersion"].startswith("external-secrets.io/"):
            continue
        resource = dynamic_client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        strict_dry_run = [("dryRun", "All"), ("fieldValidation", "Strict")]
        resource.create(body=obj, namespace=obj["metadata"]["namespace"], query_params=strict_dry_run)
