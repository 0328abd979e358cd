"""The local control plane: a real kube-apiserver that authenticates, authorizes with RBAC and audits, and a
kube-controller-manager whose garbage collector and namespace controller delete what a cluster deletes.

The first run on a machine builds the binaries from Go modules (minutes; progress is printed); later runs start a
control plane in a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
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
    cached_binaries_dir,
    find_binaries,
    stop_from_state,
)
from aurora_restore_devenv.controlplane.binaries import PROMETHEUS_VERSION, find_promtool
from aurora_restore_devenv.controlplane.certs import ADMIN_USER
from aurora_restore_devenv.controlplane.proxy import ConnectionCutter
from aurora_restore_devenv.controlplane.server import is_running

pytestmark = pytest.mark.e2e

T = TypeVar("T")


@pytest.fixture(scope="module")
def progress(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Show build progress even though pytest captures output."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def show(message: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n[control plane] {message}", file=sys.stderr, flush=True)

    return show


@pytest.fixture(scope="module")
def binaries(progress: Callable[[str], None]) -> Binaries:
    """Find or build the binaries."""
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


def create_config_map(
    api_client: kubernetes.client.ApiClient,
    namespace: str,
    name: str,
    *,
    owner: kubernetes.client.V1ConfigMap | None = None,
    block_owner_deletion: bool | None = None,
    finalizers: list[str] | None = None,
) -> kubernetes.client.V1ConfigMap:
    """A ConfigMap, optionally a dependent of another ConfigMap (owner) through an ownerReference."""
    owner_references = None
    if owner is not None:
        owner_references = [
            kubernetes.client.V1OwnerReference(
                api_version="v1",
                kind="ConfigMap",
                name=owner.metadata.name,
                uid=owner.metadata.uid,
                block_owner_deletion=block_owner_deletion,
            )
        ]
    return kubernetes.client.CoreV1Api(api_client).create_namespaced_config_map(
        namespace,
        kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(
                name=name, owner_references=owner_references, finalizers=finalizers
            )
        ),
    )


def assert_not_found(read: Callable[[], object]) -> None:
    """Raise AssertionError (so eventually() retries) while ``read`` still finds its object."""
    try:
        read()
    except ApiException as error:
        assert error.status == 404, error
        return
    raise AssertionError("the object still exists")


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
    # envtest's assets have no kube-controller-manager: it comes from the cache.
    assert found.kube_controller_manager == cached_binaries_dir() / "kube-controller-manager"


def test_kubebuilder_assets_with_a_controller_manager_provide_it(
    binaries: Binaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert binaries.kube_controller_manager is not None
    for name, path in (
        ("etcd", binaries.etcd),
        ("kube-apiserver", binaries.kube_apiserver),
        ("kube-controller-manager", binaries.kube_controller_manager),
    ):
        (tmp_path / name).symlink_to(path)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))

    assert find_binaries().kube_controller_manager == tmp_path / "kube-controller-manager"


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
    assert len(pids) == 3 and all(is_running(pid) for pid in pids)
    state = json.loads(plane.state_path.read_text())
    assert plane.controller_manager is not None
    assert state["kube_controller_manager"]["pid"] == plane.controller_manager.pid

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


def test_a_failed_controller_manager_start_reports_its_log_and_stops_everything(
    binaries: Binaries, tmp_path: Path
) -> None:
    broken = tmp_path / "kube-controller-manager"
    broken.write_text("#!/bin/sh\necho 'error: this controller-manager is broken on purpose' >&2\nexit 4\n")
    broken.chmod(0o755)
    plane = ControlPlane(
        tmp_path / "work", Binaries(binaries.etcd, binaries.kube_apiserver, None, kube_controller_manager=broken)
    )

    with pytest.raises(ControlPlaneError, match=r"(?s)kube-controller-manager exited with code 4.*broken on purpose"):
        plane.start()

    assert len(plane.pids) == 3 and not any(is_running(pid) for pid in plane.pids)


START_IN_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from aurora_restore_devenv.controlplane import Binaries, ControlPlane
workdir, etcd, kube_apiserver, kube_controller_manager = sys.argv[1:5]
binaries = Binaries(Path(etcd), Path(kube_apiserver), None, Path(kube_controller_manager))
plane = ControlPlane(Path(workdir), binaries, stop_at_exit=False).start()
print(json.dumps(plane.pids))
"""


def test_stop_from_state_stops_a_control_plane_another_process_started(binaries: Binaries, tmp_path: Path) -> None:
    paths = (tmp_path, binaries.etcd, binaries.kube_apiserver, binaries.kube_controller_manager)
    started = subprocess.run(
        [sys.executable, "-c", START_IN_ANOTHER_PROCESS, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    pids = json.loads(started.stdout)
    try:
        assert len(pids) == 3
        assert all(is_running(pid) for pid in pids), "the control plane should outlive the process that started it"
        with pytest.raises(ControlPlaneError, match="already running"):
            ControlPlane(tmp_path, binaries).start()

        assert stop_from_state(tmp_path) is True

        assert not any(is_running(pid) for pid in pids)
        assert stop_from_state(tmp_path) is False
    finally:
        stop_from_state(tmp_path)


def grant_config_map_reads(api_client: kubernetes.client.ApiClient, namespace: str, service_account: str) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        kubernetes.client.V1Role(
            metadata=kubernetes.client.V1ObjectMeta(name="config-map-reader"),
            rules=[kubernetes.client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        kubernetes.client.V1RoleBinding(
            metadata=kubernetes.client.V1ObjectMeta(name="config-map-reader"),
            role_ref=kubernetes.client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="config-map-reader"
            ),
            subjects=[
                kubernetes.client.RbacV1Subject(kind="ServiceAccount", name=service_account, namespace=namespace)
            ],
        ),
    )


def test_restart_apiserver_keeps_etcd_data_and_existing_clients(binaries: Binaries, tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "plane", binaries).start()
    cutter = ConnectionCutter("127.0.0.1", plane.secure_port).start()
    try:
        admin_api = plane.admin_api_client()  # created before the restart, used after it
        core = kubernetes.client.CoreV1Api(admin_api)
        create_namespace(admin_api, "restart-check")
        core.create_namespaced_config_map(
            "restart-check",
            kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="before"), data={"a": "1"}),
        )
        create_service_account(admin_api, "restart-check", "reader")
        grant_config_map_reads(admin_api, "restart-check", "reader")
        token_kubeconfig = plane.token_for_service_account("restart-check", "reader", tmp_path / "reader.kubeconfig")
        reader_api = kubernetes.config.new_client_from_config(config_file=str(token_kubeconfig))
        reader = kubernetes.client.CoreV1Api(reader_api)
        eventually(lambda: reader.read_namespaced_config_map("before", "restart-check"))
        proxied_api = kubernetes.config.new_client_from_config(
            config_file=str(cutter.write_kubeconfig(plane.kubeconfig_path, tmp_path / "proxied.kubeconfig"))
        )
        assert kubernetes.client.CoreV1Api(proxied_api).read_namespaced_config_map("before", "restart-check").data
        old_apiserver, etcd, url = plane.apiserver.pid, plane.etcd.pid, plane.url
        assert plane.controller_manager is not None
        controller_manager = plane.controller_manager.pid

        began = time.monotonic()
        plane.restart_apiserver(down_seconds=0.5)

        assert time.monotonic() - began >= 0.5
        assert not is_running(old_apiserver)
        assert plane.apiserver.pid != old_apiserver and is_running(plane.apiserver.pid)
        assert plane.etcd.pid == etcd and is_running(etcd), "etcd must not be restarted"
        assert plane.controller_manager.pid == controller_manager and is_running(controller_manager)
        assert plane.url == url
        state = json.loads(plane.state_path.read_text())
        assert state["kube_apiserver"]["pid"] == plane.apiserver.pid and state["etcd"]["pid"] == etcd
        assert state["kube_controller_manager"]["pid"] == controller_manager
        # etcd's data survived, and clients made before the restart (certificate, token, proxy) still work.
        assert core.read_namespaced_config_map("before", "restart-check").data == {"a": "1"}
        core.create_namespaced_config_map(
            "restart-check", kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="after"))
        )
        assert eventually(lambda: reader.read_namespaced_config_map("before", "restart-check")).data == {"a": "1"}
        proxied = kubernetes.client.CoreV1Api(proxied_api)
        assert eventually(lambda: proxied.read_namespaced_config_map("after", "restart-check")).metadata.name
        # The controller-manager has reconnected by itself: its garbage collector still acts.
        owner = core.read_namespaced_config_map("before", "restart-check")
        create_config_map(admin_api, "restart-check", "dependent", owner=owner)
        core.delete_namespaced_config_map("before", "restart-check")
        eventually(
            lambda: assert_not_found(lambda: core.read_namespaced_config_map("dependent", "restart-check")),
            timeout=60,
        )
        for api_client in (admin_api, reader_api, proxied_api):
            api_client.close()
    finally:
        cutter.stop()
        plane.stop()
    assert not any(is_running(pid) for pid in plane.pids)
    assert not plane.state_path.exists()


def test_connection_cutter_breaks_a_watch_and_lets_new_requests_through(
    control_plane: ControlPlane, admin_api, tmp_path: Path
) -> None:
    create_namespace(admin_api, "cut-check")
    with ConnectionCutter("127.0.0.1", control_plane.secure_port) as cutter:
        kubeconfig = cutter.write_kubeconfig(control_plane.kubeconfig_path, tmp_path / "proxied.kubeconfig")
        assert f"https://127.0.0.1:{cutter.port}" in kubeconfig.read_text()
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        with kubernetes.config.new_client_from_config(config_file=str(kubeconfig)) as proxied_api:
            proxied = kubernetes.client.CoreV1Api(proxied_api)
            events: list[str] = []
            ended: list[str] = []

            def watch() -> None:
                try:
                    # Without a cut, this watch would last 60 s.
                    for event in kubernetes.watch.Watch().stream(
                        proxied.list_namespaced_config_map, "cut-check", timeout_seconds=60
                    ):
                        events.append(event["object"].metadata.name)
                    ended.append("stream ended")
                except Exception as error:  # noqa: BLE001 - any way the stream breaks counts
                    ended.append(f"{type(error).__name__}: {error}")

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            kubernetes.client.CoreV1Api(admin_api).create_namespaced_config_map(
                "cut-check", kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="seen"))
            )
            eventually(lambda: _assert("seen" in events))  # the watch runs through the proxy
            assert cutter.connections() >= 1

            assert cutter.cut_all() >= 1

            watcher.join(timeout=10)
            assert not watcher.is_alive(), "the watch survived cut_all()"
            assert ended, "the watch thread ended without a result"
            assert cutter.connections() == 0
            accepted = cutter.accepted
            assert proxied.read_namespaced_config_map("seen", "cut-check").metadata.name == "seen"
            assert cutter.accepted > accepted and cutter.connections() >= 1, "the new request bypassed the proxy"
    assert cutter.connections() == 0


def _assert(condition: bool) -> None:
    assert condition


def test_garbage_collector_deletes_the_dependents_of_a_deleted_owner(admin_api) -> None:
    """Background propagation (the API's default): the owner goes at once, the collector deletes its dependents."""
    core = kubernetes.client.CoreV1Api(admin_api)
    namespace = "gc-background"
    create_namespace(admin_api, namespace)
    owner = create_config_map(admin_api, namespace, "owner")
    create_config_map(admin_api, namespace, "dependent", owner=owner)
    create_config_map(admin_api, namespace, "unrelated")

    core.delete_namespaced_config_map(
        "owner", namespace, body=kubernetes.client.V1DeleteOptions(propagation_policy="Background")
    )

    assert_not_found(lambda: core.read_namespaced_config_map("owner", namespace))
    eventually(lambda: assert_not_found(lambda: core.read_namespaced_config_map("dependent", namespace)), timeout=60)
    assert core.read_namespaced_config_map("unrelated", namespace).metadata.name == "unrelated"


def test_foreground_deletion_keeps_the_owner_until_its_blocking_dependent_is_gone(admin_api) -> None:
    """Foreground propagation: the owner stays (deletionTimestamp, finalizer foregroundDeletion) until the
    collector has deleted every dependent with blockOwnerDeletion; a finalizer on the dependent holds both."""
    core = kubernetes.client.CoreV1Api(admin_api)
    namespace = "gc-foreground"
    hold = "aurora-restore.test/hold"
    create_namespace(admin_api, namespace)
    owner = create_config_map(admin_api, namespace, "owner")
    create_config_map(admin_api, namespace, "dependent", owner=owner, block_owner_deletion=True, finalizers=[hold])

    core.delete_namespaced_config_map(
        "owner", namespace, body=kubernetes.client.V1DeleteOptions(propagation_policy="Foreground")
    )

    def dependent_is_being_deleted() -> None:
        assert core.read_namespaced_config_map("dependent", namespace).metadata.deletion_timestamp is not None

    eventually(dependent_is_being_deleted, timeout=60)
    waiting_owner = core.read_namespaced_config_map("owner", namespace)
    assert waiting_owner.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in (waiting_owner.metadata.finalizers or [])

    core.patch_namespaced_config_map("dependent", namespace, {"metadata": {"finalizers": None}})

    eventually(lambda: assert_not_found(lambda: core.read_namespaced_config_map("dependent", namespace)), timeout=30)
    eventually(lambda: assert_not_found(lambda: core.read_namespaced_config_map("owner", namespace)), timeout=60)


def test_a_deleted_namespace_goes_away_with_its_objects(admin_api) -> None:
    core = kubernetes.client.CoreV1Api(admin_api)
    namespace = "ns-deletion"
    create_namespace(admin_api, namespace)
    create_config_map(admin_api, namespace, "settings")

    core.delete_namespace(namespace)

    eventually(lambda: assert_not_found(lambda: core.read_namespace(namespace)), timeout=60)
    assert core.list_namespaced_config_map(namespace).items == []


def test_find_promtool_returns_a_working_promtool(progress: Callable[[str], None]) -> None:
    promtool = find_promtool(progress)

    result = subprocess.run([str(promtool), "--version"], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "promtool, version" in result.stdout
    if "PROMTOOL" not in os.environ:  # a promtool of one's own may be any version
        assert f"version {PROMETHEUS_VERSION.removeprefix('v')} " in result.stdout


def test_the_job_controller_gives_a_job_its_pod_and_counts_a_pod_marked_succeeded(admin_api) -> None:
    """No kubelet runs the Pod the job controller creates; writing the Pod's status as a kubelet would (phase
    Succeeded, through pods/status) makes the job controller mark the Job Complete."""
    batch, core = kubernetes.client.BatchV1Api(admin_api), kubernetes.client.CoreV1Api(admin_api)
    namespace = "job-controller"
    create_namespace(admin_api, namespace)
    batch.create_namespaced_job(namespace, {
        "metadata": {"name": "one"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "busybox"}]}}},
    })

    def the_pod():
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=one").items
        assert len(pods) == 1
        return pods[0]

    pod = eventually(the_pod, timeout=60)
    assert pod.status.phase == "Pending" and not pod.spec.node_name  # nothing schedules or runs it
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": {
        "phase": "Succeeded",
        "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": False,
                               "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                                           "startedAt": now, "finishedAt": now}}}],
    }})

    def complete() -> None:
        conditions = batch.read_namespaced_job("one", namespace).status.conditions or []
        assert any(c.type == "Complete" and c.status == "True" for c in conditions), conditions

    eventually(complete, timeout=60)
