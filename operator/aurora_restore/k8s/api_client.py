"""The Kubernetes API client the operator uses: every request it makes carries a timeout."""

from kubernetes import client


class TimedApiClient(client.ApiClient):
    """An ApiClient whose requests all time out: one that names no `_request_timeout` of its own gets
    `request_timeout` (seconds, for the whole request), so a hung API server never holds a worker thread."""

    def __init__(self, configuration: client.Configuration, request_timeout: float):
        super().__init__(configuration)
        self.request_timeout = request_timeout

    def call_api(self, *args, _request_timeout=None, **kwargs):
        return super().call_api(*args, _request_timeout=_request_timeout or self.request_timeout, **kwargs)
