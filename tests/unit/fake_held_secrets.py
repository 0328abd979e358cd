"""FakeSecrets that also keep the marks saying which restore wrote a connection Secret, as k8s/secrets.py does,
and the namespace's AuroraRestores by name (RestoreContext.restores).

A Secret's metadata is held beside its data: labels, annotations and a version that every write bumps (the
apiserver's resourceVersion), so a test can change a Secret between the check and the write.
"""

from typing import Any

from aurora_restore.k8s.secrets import (
    MANAGED_BY, RESTORE_NAME_ANNOTATION, RESTORE_UID_LABEL, SecretHolder, SecretWriter, refuse_overwrite,
)

from .fake_secrets import FakeSecrets, WrittenSecret


class FakeHeldSecrets(FakeSecrets):
    """The Secrets of one namespace with their labels, annotations and versions."""

    def __init__(self, namespace: str):
        super().__init__(namespace)
        self.annotations: dict[str, dict[str, str]] = {}
        self.versions: dict[str, int] = {}

    def add(self, name: str, data: dict[str, str], labels: dict[str, str] | None = None,
            annotations: dict[str, str] | None = None) -> None:
        """A Secret applied by someone else, or (with the marks as labels and annotations) by another restore."""
        self.secrets[name] = WrittenSecret(data=dict(data), owner=None, labels=dict(labels or {}))
        self.annotations[name] = dict(annotations or {})
        self.versions[name] = self.versions.get(name, 0) + 1

    def add_held(self, name: str, data: dict[str, str], uid: str, restore: str) -> None:
        """A connection Secret another restore (`restore`, with `uid`) wrote."""
        self.add(name, data, labels={**MANAGED_BY, RESTORE_UID_LABEL: uid},
                 annotations={RESTORE_NAME_ANNOTATION: restore})

    def holder_of(self, name: str) -> SecretHolder | None:
        secret = self.secrets.get(name)
        if secret is None:
            return None
        return SecretHolder(
            managed=secret.labels.get("app.kubernetes.io/managed-by") == MANAGED_BY["app.kubernetes.io/managed-by"],
            restore_uid=secret.labels.get(RESTORE_UID_LABEL),
            restore_name=self.annotations[name].get(RESTORE_NAME_ANNOTATION),
            version=str(self.versions[name]),
        )

    def write(self, name: str, data: dict[str, str], owner: dict[str, Any] | None,
              writer: SecretWriter | None = None, checked: SecretHolder | None = None) -> None:
        if writer is None and owner is not None:
            writer = SecretWriter(uid=owner["metadata"]["uid"], name=owner["metadata"]["name"])
        found = self.holder_of(name)
        if found is not None:  # the real Secrets' own refusal, so the fake cannot drift from it
            refuse_overwrite(f"{self.namespace}/{name}", found, writer, checked)
        labels = {**(self.secrets[name].labels if found else {}), **MANAGED_BY}
        annotations = dict(self.annotations.get(name, {}))
        if writer is not None:
            labels[RESTORE_UID_LABEL] = writer.uid
            annotations[RESTORE_NAME_ANNOTATION] = writer.name
        self.writes.append(name)
        self.secrets[name] = WrittenSecret(data=dict(data), owner=owner, labels=labels)
        self.annotations[name] = annotations
        self.versions[name] = self.versions.get(name, 0) + 1


class FakeRestores:
    """AuroraRestores as {(namespace, name): object}, answering like k8s/resources.py AuroraRestores.get."""

    def __init__(self):
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, namespace: str, name: str, uid: str, spec: dict[str, Any], phase: str | None,
            deleting: bool = False) -> None:
        metadata = {"name": name, "namespace": namespace, "uid": uid}
        if deleting:
            metadata["deletionTimestamp"] = "2025-03-01T12:00:00Z"
        self.objects[(namespace, name)] = {"metadata": metadata, "spec": spec, "status": {"phase": phase} if phase
                                           else {}}

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))
