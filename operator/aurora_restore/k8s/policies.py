"""The cluster's AuroraRestorePolicies, read afresh at every check so an admin's change applies at once."""

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ..api import GROUP, VERSION
from ..api.policy import POLICY_PLURAL, AuroraRestorePolicySpec
from ..errors import RetryableError
from ..steps.policy import Coverage, NamedPolicy, covers


class ClusterPolicies:
    """Lists the policies (one request) and, only when one selects namespaces by label, reads the namespace."""

    def __init__(self, api_client: client.ApiClient):
        self.objects = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def covering(self, namespace: str) -> Coverage:
        try:
            items = self.objects.list_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL)["items"]
        except ApiException as error:
            raise RetryableError("KubernetesError", f"cannot list AuroraRestorePolicies: {error.reason}") from None
        policies, invalid = [], []
        for item in items:
            try:
                policies.append(NamedPolicy(item["metadata"]["name"],
                                            AuroraRestorePolicySpec.model_validate(item.get("spec") or {})))
            except ValidationError:  # the CRD's schema refuses what the model would: a stale object allows nothing
                invalid.append(f"{item['metadata']['name']} (invalid, ignored)")
        labels = self._labels(namespace) if any(p.spec.namespace_selector for p in policies) else None
        covering = [p for p in policies if covers(p.spec, namespace, labels)]
        others = sorted([p.name for p in policies if p not in covering] + invalid)
        return Coverage(covering=covering, others=others)

    def _labels(self, namespace: str) -> dict[str, str]:
        try:
            return self.core.read_namespace(namespace).metadata.labels or {}
        except ApiException as error:
            raise RetryableError("KubernetesError", f"cannot read namespace {namespace}: {error.reason}") from None
