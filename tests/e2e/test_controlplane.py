"""The local control plane: a real kube-apiserver that authenticates, authorizes with RBAC and audits.

The first run on a machine builds the binaries from Go modules (minutes; progress is printed); later runs start a
control plane in a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import kubernetes
import pytest
from kubernetes.client import ApiException

from aurora_restore_devenv.controlplane import (
    Binaries,
    BinariesError,
    ControlPlane,
    ControlPlaneError,
    find_binaries,
    stop_from_state,
)
from aurora_restore_devenv.controlplane.certs import ADMIN_USER
from aurora_restore_devenv.controlplane.server import is_running

pytestmark = pytest.mark.e2e

T = TypeVar("T")


@pytest.fixture(scope="module")
def binaries(pytestconfig: pytest.Config) -> Binaries:
    """Find or build the binaries, showing build progress even though pytest captures output."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def progress(message: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n[control plane] {message}", file=sys.stderr, flush=True)

    return find_binaries(progress)


@pytest.fixture(scope="module")
def control_plane(binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with ControlPlane(tmp_path_factory.mktemp("controlplane"), binaries) as plane:
        yield plane


@pytest.fixture
def admin_api(control_plane: ControlPlane) -> Iterator[kubernetes.client.ApiClient]:
    with control_plane.admin_api_client() as api_client:
        yield api_client


def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    """Retry ``check`` until it stops raising AssertionError or ApiException; RBAC and audit lag a little."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, ApiException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create_namespace(api_client: kubernetes.client.ApiClient, name: str) -> None:
    kubernetes.client.CoreV1Api(api_client).create_namespace(
        kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name))
    )


def create_service_account(api_client: kubernetes.client.ApiClient, namespace: str, name: str) -> None:
    kubernetes.client.CoreV1Api(api_client).create_namespaced_service_account(
        namespace, kubernetes.client.V1ServiceAccount(metadata=kubernetes.client.V1ObjectMeta(name=name))
    )


def test_admin_kubeconfig_reaches_the_apiserver(control_plane: ControlPlane, admin_api) -> None:
    core = kubernetes.client.CoreV1Api(admin_api)
    create_namespace(admin_api, "admin-check")
    core.create_namespaced_config_map(
        "admin-check",
        kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(name="settings"), data={"engine": "aurora-postgresql"}
        ),
    )

    assert core.read_namespaced_config_map("settings", "admin-check").data == {"engine": "aurora-postgresql"}
    assert control_plane.url.startswith("https://127.0.0.1:")
    assert control_plane.kubeconfig_path == control_plane.workdir / "kubeconfig"


def test_rbac_denies_a_service_account_until_a_role_binding_allows_it(
    control_plane: ControlPlane, admin_api, tmp_path: Path
) -> None:
    create_namespace(admin_api, "rbac-check")
    create_service_account(admin_api, "rbac-check", "reader")
    kubeconfig = control_plane.token_for_service_account("rbac-check", "reader", tmp_path / "reader.kubeconfig")

    with kubernetes.config.new_client_from_config(config_file=str(kubeconfig)) as reader_api:
        reader = kubernetes.client.CoreV1Api(reader_api)
        with pytest.raises(ApiException) as denied:
            reader.list_namespaced_secret("rbac-check")
        assert denied.value.status == 403

        rbac = kubernetes.client.RbacAuthorizationV1Api(admin_api)
        rbac.create_namespaced_role(
            "rbac-check",
            kubernetes.client.V1Role(
                metadata=kubernetes.client.V1ObjectMeta(name="secret-reader"),
                rules=[kubernetes.client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["list"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            "rbac-check",
            kubernetes.client.V1RoleBinding(
                metadata=kubernetes.client.V1ObjectMeta(name="reader-reads-secrets"),
                role_ref=kubernetes.client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="secret-reader"
                ),
                subjects=[
                    kubernetes.client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace="rbac-check")
                ],
            ),
        )

        eventually(lambda: reader.list_namespaced_secret("rbac-check"))
        with pytest.raises(ApiException) as still_denied:
            reader.list_namespaced_config_map("rbac-check")
        assert still_denied.value.status == 403


def test_audit_log_records_user_verb_resource_and_outcome(
    control_plane: ControlPlane, admin_api, tmp_path: Path
) -> None:
    create_namespace(admin_api, "audit-check")
    create_service_account(admin_api, "audit-check", "snooper")
    kubeconfig = control_plane.token_for_service_account("audit-check", "snooper", tmp_path / "snooper.kubeconfig")
    with kubernetes.config.new_client_from_config(config_file=str(kubeconfig)) as snooper_api:
        with pytest.raises(ApiException):
            kubernetes.client.CoreV1Api(snooper_api).list_namespaced_secret("audit-check")

    def audited(user: str, verb: str, resource: str) -> dict:
        events = [
            event
            for event in control_plane.read_audit_events()
            if event["user"]["username"] == user
            and event["verb"] == verb
            and event.get("objectRef", {}).get("resource") == resource
            and event.get("objectRef", {}).get("namespace") == "audit-check"
        ]
        assert events, f"no audit event for {user} {verb} {resource}"
        return events[-1]

    assert eventually(lambda: audited(ADMIN_USER, "create", "serviceaccounts"))["responseStatus"]["code"] == 201
    denied = eventually(lambda: audited("system:serviceaccount:audit-check:snooper", "list", "secrets"))
    assert denied["responseStatus"]["code"] == 403
    assert denied["level"] == "Metadata"
    assert "requestObject" not in denied and "responseObject" not in denied


def test_find_binaries_uses_kubebuilder_assets(
    binaries: Binaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etcd").symlink_to(binaries.etcd)
    (tmp_path / "kube-apiserver").symlink_to(binaries.kube_apiserver)
    if binaries.kubectl:
        (tmp_path / "kubectl").symlink_to(binaries.kubectl)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))

    found = find_binaries()

    assert found.etcd == tmp_path / "etcd"
    assert found.kube_apiserver == tmp_path / "kube-apiserver"
    assert found.kubectl == (tmp_path / "kubectl" if binaries.kubectl else None)


def test_kubebuilder_assets_without_etcd_is_a_clear_error(
    binaries: Binaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kube-apiserver").symlink_to(binaries.kube_apiserver)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))

    with pytest.raises(BinariesError, match=r"KUBEBUILDER_ASSETS=.* has no executable etcd\b"):
        find_binaries()


def test_building_without_go_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("AURORA_RESTORE_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(BinariesError, match=r"no `go` on PATH"):
        find_binaries()


def test_stop_leaves_no_process_behind(binaries: Binaries, tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path, binaries).start()
    pids = plane.pids
    assert len(pids) == 2 and all(is_running(pid) for pid in pids)

    plane.stop()

    assert not any(is_running(pid) for pid in pids)
    assert not (tmp_path / "controlplane.json").exists()


def test_a_failed_start_reports_the_log_and_stops_etcd(binaries: Binaries, tmp_path: Path) -> None:
    broken_apiserver = tmp_path / "kube-apiserver"
    broken_apiserver.write_text("#!/bin/sh\necho 'error: this apiserver is broken on purpose' >&2\nexit 3\n")
    broken_apiserver.chmod(0o755)
    plane = ControlPlane(tmp_path / "work", Binaries(binaries.etcd, broken_apiserver, None))

    with pytest.raises(ControlPlaneError, match=r"(?s)exited with code 3.*broken on purpose"):
        plane.start()

    assert plane.pids and not any(is_running(pid) for pid in plane.pids)


START_IN_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from aurora_restore_devenv.controlplane import Binaries, ControlPlane
workdir, etcd, kube_apiserver = sys.argv[1:4]
plane = ControlPlane(Path(workdir), Binaries(Path(etcd), Path(kube_apiserver), None), stop_at_exit=False).start()
print(json.dumps(plane.pids))
"""


def test_stop_from_state_stops_a_control_plane_another_process_started(binaries: Binaries, tmp_path: Path) -> None:
    started = subprocess.run(
        [sys.executable, "-c", START_IN_ANOTHER_PROCESS, *map(str, (tmp_path, binaries.etcd, binaries.kube_apiserver))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    pids = json.loads(started.stdout)
    try:
        assert all(is_running(pid) for pid in pids), "the control plane should outlive the process that started it"
        with pytest.raises(ControlPlaneError, match="already running"):
            ControlPlane(tmp_path, binaries).start()

        assert stop_from_state(tmp_path) is True

        assert not any(is_running(pid) for pid in pids)
        assert stop_from_state(tmp_path) is False
    finally:
        stop_from_state(tmp_path)
