"""ConfigMaps of a restore's namespace: where spec.hooks.postRestore[].configMapRef keeps a hook's SQL."""

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..errors import TerminalError


class ConfigMaps:
    """ConfigMaps of one namespace: the SQL of spec.hooks.postRestore[].configMapRef."""

    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace

    def read_key(self, name: str, key: str, field: str) -> str | None:
        """The value of `key`; None while the ConfigMap does not exist (it may be applied later); a missing or
        empty key fails (waiting will not fix it)."""
        try:
            config_map = self.core.read_namespaced_config_map(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        value = (config_map.data or {}).get(key)
        if value is None:
            raise TerminalError("ConfigMapKeyMissing", f"{field}: ConfigMap {self.namespace}/{name} has no key "
                                f"{key!r}")
        if not value.strip():
            raise TerminalError("ConfigMapKeyMissing", f"{field}: key {key!r} of ConfigMap {self.namespace}/{name} "
                                "is empty")
        return value
