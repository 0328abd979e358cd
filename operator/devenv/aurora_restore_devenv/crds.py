"""Install the operator's CRDs into a cluster and wait until the apiserver serves them."""

import time

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aurora_restore.api.crd import build_crds


def install_crds(api_client: client.ApiClient, timeout: float = 60) -> None:
    """Create or update every CRD (AuroraRestore, AuroraRestorePolicy), then wait for their Established
    condition."""
    api = client.ApiextensionsV1Api(api_client)
    names = []
    for crd in build_crds():
        name = crd["metadata"]["name"]
        names.append(name)
        try:
            existing = api.read_custom_resource_definition(name)
            crd["metadata"]["resourceVersion"] = existing.metadata.resource_version
            api.replace_custom_resource_definition(name, crd)
        except ApiException as error:
            if error.status != 404:
                raise
            api.create_custom_resource_definition(crd)
    deadline = time.monotonic() + timeout
    for name in names:
        while not _established(api, name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not established after {timeout}s")
            time.sleep(0.2)


def _established(api: client.ApiextensionsV1Api, name: str) -> bool:
    conditions = api.read_custom_resource_definition(name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)
