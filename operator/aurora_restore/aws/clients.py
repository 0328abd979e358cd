"""boto3 clients from the default credential chain (IRSA in a pod), cached per service and region.

Retries: botocore's standard mode absorbs short throttling bursts; whatever is still failing becomes a
RetryableError and the phase machine retries the whole step later with its own backoff.
"""

import threading

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=10,
    read_timeout=60,
    user_agent_extra="aurora-restore-operator",
)


class AwsClients:
    """One boto3 session for the operator's identity; clients are thread-safe and reused across restores."""

    def __init__(self, session: boto3.session.Session | None = None):
        self._session = session or boto3.session.Session()
        self._clients: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str):
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(service, region_name=region, config=CLIENT_CONFIG)
            return self._clients[key]
