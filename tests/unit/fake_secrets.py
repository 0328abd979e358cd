"""In-memory stand-ins for the two places a password can come from: Kubernetes Secrets and Secrets Manager.

FakeSecrets follows k8s/secrets.py Secrets (the SecretReader of steps/context.py) and FakeSecretsManager follows
aws/secrets.py SecretsManagerGateway: a missing Secret or secret reads as None (it may be applied later), a Secret
without the key raises SecretKeyMissing with the very message the real one writes. test_fake_secrets.py holds the
fakes to that by running the same cases against the real classes.

Every read is logged, so a test can assert that a phase with nothing to do never looked at a password.
"""

from dataclasses import dataclass, field
from typing import Any

from aurora_restore.errors import TerminalError
from aurora_restore.k8s.secrets import MANAGED_BY, SecretKeyMissing


@dataclass
class WrittenSecret:
    """A Secret as the operator wrote it: its data and the ownerReference's owner (None: no owner)."""

    data: dict[str, str]
    owner: dict[str, Any] | None
    labels: dict[str, str] = field(default_factory=dict)


class FakeSecrets:
    """The Secrets of one namespace, held as {name: {key: value}} with values already decoded."""

    def __init__(self, namespace: str):
        self.namespace = namespace
        self.secrets: dict[str, WrittenSecret] = {}
        self.reads: list[tuple[str, str, str]] = []  # (name, key, field) of every read_key
        self.writes: list[str] = []  # names written, in order

    def add(self, name: str, data: dict[str, str]) -> None:
        """A Secret applied by someone else (GitOps, a user)."""
        self.secrets[name] = WrittenSecret(data=dict(data), owner=None)

    def read_key(self, name: str, key: str, field: str) -> str | None:
        self.reads.append((name, key, field))
        secret = self.secrets.get(name)
        if secret is None:
            return None
        if key not in secret.data:
            raise SecretKeyMissing("SecretKeyMissing", f"{field}: Secret {self.namespace}/{name} has no key {key!r}")
        value = secret.data[key]
        if not value:
            raise SecretKeyMissing("SecretKeyEmpty", f"{field}: key {key!r} of Secret {self.namespace}/{name} is empty")
        return value

    def write(self, name: str, data: dict[str, str], owner: dict[str, Any] | None) -> None:
        existing = self.secrets.get(name)
        if existing is not None and existing.labels != MANAGED_BY:
            raise TerminalError(
                "SecretNotOurs",
                f"Secret {self.namespace}/{name} exists and was not written by this operator; left untouched",
            )
        self.writes.append(name)
        self.secrets[name] = WrittenSecret(data=dict(data), owner=owner, labels=dict(MANAGED_BY))


class FakeSecretsManager:
    """Secrets Manager in the target region: {secret id or ARN: SecretString}."""

    def __init__(self):
        self.values: dict[str, str] = {}
        self.reads: list[str] = []

    def put(self, secret_id: str, value: str) -> None:
        self.values[secret_id] = value

    def get_secret_string(self, secret_id: str) -> str | None:
        self.reads.append(secret_id)
        return self.values.get(secret_id)
