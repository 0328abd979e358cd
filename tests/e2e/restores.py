"""What e2e tests do with AuroraRestores and the simulated AWS: create, wait, look."""

import secrets
import time
from typing import Any

from kubernetes import client
from secret_scan import SESSION

from aurora_restore.api import GROUP, KIND, PLURAL, VERSION
from aurora_restore.api.policy import POLICY_KIND, POLICY_PLURAL

# The roles the session's policy lets each test namespace assume.
ALLOWED_ROLE_PATTERN = "arn:aws:iam::*:role/aurora-restore-*"
# The session's policy: the `namespace` fixture's namespaces (t-...) may do everything, with those roles. Policy
# tests make namespaces it does not cover (p-...) and policies of their own.
SESSION_POLICY = {
    "namespaces": ["t-*"], "targets": [{}], "sources": [{}], "roles": [ALLOWED_ROLE_PATTERN],
    "secretsManagerSecrets": ["*"], "replace": {"allowed": True, "onlyClustersCreatedByOperator": False},
    "allowFinalSnapshotSkip": True,
}
# What the account owner tags a cluster the operator did not create with, so that a policy may let it be replaced.
REPLACEABLE = {"dbrestore.io/replaceable": "true"}
# Where the chart is installed for the e2e session; the operator runs as its ServiceAccount.
OPERATOR_NAMESPACE = "aurora-restore-system"
OPERATOR_SERVICE_ACCOUNT = "aurora-restore-operator"
# make_source's master password, which restored clusters keep: long and random, so that the secret scan finds it
# only where it leaked, never by chance.
SOURCE_MASTER_PASSWORD = f"src-{secrets.token_urlsafe(24)}"


def create_restore(api_client, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}
    return client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


def create_policy(api_client, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A cluster-scoped AuroraRestorePolicy (what a cluster admin writes)."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": POLICY_KIND, "metadata": {"name": name}, "spec": spec}
    return client.CustomObjectsApi(api_client).create_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, body)


def delete_policy(api_client, name: str) -> None:
    client.CustomObjectsApi(api_client).delete_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, name)


def get_restore(api_client, namespace: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api_client).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def wait_for_phase(api_client, namespace: str, name: str, phases, timeout: float = 120) -> dict[str, Any]:
    """Poll until status.phase is one of `phases`; fail with the last status when it does not get there."""
    phases = {phases} if isinstance(phases, str) else set(phases)
    deadline = time.monotonic() + timeout
    obj: dict[str, Any] = {}
    while time.monotonic() < deadline:
        obj = get_restore(api_client, namespace, name)
        if (obj.get("status") or {}).get("phase") in phases:
            return obj
        time.sleep(0.2)
    raise AssertionError(f"{namespace}/{name} did not reach {sorted(phases)} in {timeout}s: {obj.get('status')}")


def delete_and_wait_gone(api_client, namespace: str, name: str, timeout: float = 120) -> None:
    """Delete the AuroraRestore and wait until the operator let it go (its finalizer removed)."""
    objects = client.CustomObjectsApi(api_client)
    objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def gone() -> bool:
        try:
            objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except client.exceptions.ApiException as error:
            return error.status == 404
        return False

    wait_until(gone, timeout=timeout, what=f"{namespace}/{name} deleted")


def events_for(api_client, namespace: str, name: str) -> list[client.CoreV1Event]:
    events = client.CoreV1Api(api_client).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    ).items
    return sorted(events, key=lambda e: int(e.metadata.resource_version))  # timestamps have 1 s resolution


def wait_until(check, timeout: float = 60, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {timeout}s")


def wait_available_cluster(rds, identifier: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: next(
            (c for c in rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
             if c["Status"] == "available"),
            None,
        ),
        timeout,
        what=f"cluster {identifier} available",
    )


def make_source(
    rds,
    cluster: str,
    snapshots: list[str],
    engine: str = "aurora-postgresql",
    engine_version: str = "15.4",
    kms_key_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """A source cluster with manual snapshots, all available (an existing target to replace: tags=REPLACEABLE)."""
    params: dict[str, Any] = {
        "DBClusterIdentifier": cluster,
        "Engine": engine,
        "EngineVersion": engine_version,
        "MasterUsername": "admin_user",
        "MasterUserPassword": SOURCE_MASTER_PASSWORD,
        "Tags": [{"Key": key, "Value": value} for key, value in (tags or {}).items()],
    }
    SESSION.remember_password(SOURCE_MASTER_PASSWORD, "make_source's master password")
    if kms_key_id:
        params.update(StorageEncrypted=True, KmsKeyId=kms_key_id)
    rds.create_db_cluster(**params)
    wait_available_cluster(rds, cluster)
    for name in snapshots:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=name, DBClusterIdentifier=cluster)
    for name in snapshots:
        wait_until(
            lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"][0][
                "Status"
            ]
            == "available",
            what=f"snapshot {name} available",
        )


def tags(rds, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}



class CallWindow:
    """The simulator's request log from now on. The log itself is never cleared: the IAM audit reads all of it."""

    def __init__(self, simulator):
        self.simulator = simulator
        self.start = len(simulator.calls())

    def calls(self, **criteria) -> list[dict[str, Any]]:
        return [
            call for call in self.simulator.calls()[self.start:]
            if all(call.get(key) == value for key, value in criteria.items())
        ]
