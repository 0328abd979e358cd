"""Install the operator's CRDs into a cluster and wait until the apiserver serves them."""

import time

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aurora_restore.api.crd import build_crd


def install_crds(api_client: client.ApiClient, timeout: float = 60) -> None:
    """Create or update the AuroraRestore CRD, then wait for its Established condition."""
    api = client.ApiextensionsV1Api(api_client)
    crd = build_crd()
    name = crd["metadata"]["name"]
    try:
        existing = api.read_custom_resource_definition(name)
        crd["metadata"]["resourceVersion"] = existing.metadata.resource_version
        api.replace_custom_resource_definition(name, crd)
    except ApiException as error:
        if error.status != 404:
            raise
        api.create_custom_resource_definition(crd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = api.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise TimeoutError(f"CRD {name} not established after {timeout}s")
