"""Every manifest in examples/ (top level) passes strict server-side validation against the real apiserver,
as `kubectl apply --dry-run=server` would check it; the single-tenant policy is the local environment's."""

from pathlib import Path

import pytest
import yaml
from kubernetes import dynamic

from aurora_restore_devenv.crds import install_crds

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def resources(admin_client):
    install_crds(admin_client)
    return dynamic.DynamicClient(admin_client).resources


@pytest.mark.parametrize("manifest", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_passes_server_side_validation(resources, manifest):
    documents = [doc for doc in yaml.safe_load_all((EXAMPLES / manifest).read_text()) if doc]
    assert documents
    for obj in documents:
        resource = resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        resource.create(body=obj, namespace=obj["metadata"].get("namespace"),
                        query_params=[("dryRun", "All"), ("fieldValidation", "Strict")])


def test_the_single_tenant_policy_is_the_one_the_local_environment_installs():
    from aurora_restore_devenv.environment import PERMISSIVE_POLICY

    [policy] = yaml.safe_load_all((EXAMPLES / "policy-single-tenant.yaml").read_text())
    assert policy["spec"] == PERMISSIVE_POLICY
