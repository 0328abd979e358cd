"""The chart in a real kube-apiserver: `helm install` creates what it should, and the operator, running with the
chart's ServiceAccount, RBAC and environment, completes a restore without a single 403.

There are no kubelets, so the Deployment never gets a Pod: the operator runs here as a process, authenticated
with a token of the chart's ServiceAccount, with the environment the chart gives the container, and with AWS
credentials the way IRSA provides them (AWS_ROLE_ARN from the ServiceAccount's annotation and a web identity
token file), against the AWS simulator.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import unquote

import boto3
import pytest
import yaml
from dockerfile import exec_form
from kubernetes import client

from aurora_restore.api import GROUP, KIND, PLURAL, VERSION
from aurora_restore.k8s.leases import lease_name as target_lease_name
from aurora_restore_devenv import operator_process
from aurora_restore_devenv.operator_process import OperatorProcess, free_port
from aurora_restore_devenv.simulator.databases.tls import ensure_certificates

ROLE_ARN = "arn:aws:iam::123456789012:role/aurora-restore-operator"  # the simulator's default account
REGION = "us-east-1"
FAST_SETTINGS = {"AURORA_RESTORE_POLL_INTERVAL_SECONDS": "0.3", "AURORA_RESTORE_RETRY_BACKOFF_MAX_SECONDS": "2"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_namespace(api_client, name: str) -> str:
    client.CoreV1Api(api_client).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def rds(simulator_url):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return session.client("rds", endpoint_url=simulator_url)


def wait_until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s")


def make_snapshot(rds, cluster: str, snapshot: str) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier=cluster, Engine="aurora-postgresql", EngineVersion="15.4",
        MasterUsername="admin_user", MasterUserPassword="source-password-1",
    )
    wait_until(lambda: rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["Status"] == "available",
               f"cluster {cluster} available")
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot, DBClusterIdentifier=cluster)
    wait_until(
        lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)["DBClusterSnapshots"][0][
            "Status"] == "available",
        f"snapshot {snapshot} available",
    )


def restore_and_wait(api_client, namespace: str, rds, timeout: float = 120, labels: dict | None = None) -> dict:
    """A same-region restore of a fresh snapshot; returns the resource once it is Succeeded or Failed."""
    suffix = uuid.uuid4().hex[:6]
    make_snapshot(rds, f"src-{suffix}", f"snap-{suffix}")
    objects = client.CustomObjectsApi(api_client)
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": "orders", "labels": labels or {}},
        "spec": {
            "source": {"region": REGION, "snapshotIdentifier": f"snap-{suffix}"},
            "target": {
                "clusterIdentifier": f"tgt-{suffix}",
                "instances": {"count": 1, "instanceClass": "db.r6g.large"},
            },
        },
    })

    def finished():
        obj = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "orders")
        return obj if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    return wait_until(finished, f"restore {namespace}/orders finished", timeout)


def installed_container(api_client, namespace: str, name: str) -> dict:
    """The operator container of the installed Deployment, as plain JSON."""
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(name, namespace)
    return api_client.sanitize_for_serialization(deployment)["spec"]["template"]["spec"]["containers"][0]


def container_environment(container: dict, pod_namespace: str, pod_name: str) -> dict[str, str]:
    """The container's env as the kubelet would set it (the only valueFrom the chart uses is the downward API's
    namespace and name of the pod)."""
    fields = {"metadata.namespace": pod_namespace, "metadata.name": pod_name}
    env = {}
    for item in container["env"]:
        if "valueFrom" in item:
            field_path = item["valueFrom"]["fieldRef"]["fieldPath"]
            assert item["valueFrom"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}, item
            assert field_path in fields, item
            env[item["name"]] = fields[field_path]
        else:
            env[item["name"]] = item["value"]
    return env


def pod_name_of(release: str) -> str:
    """A name such as the Deployment's pods get (<deployment>-<replica set hash>-<suffix>)."""
    return f"{release}-{uuid.uuid4().hex[:10]}-{uuid.uuid4().hex[:5]}"


def irsa_environment(control_plane, namespace: str, service_account: str, workdir: Path, simulator_url: str):
    """What the operator process needs to act as the chart's ServiceAccount, in Kubernetes and in AWS.

    KUBECONFIG holds a TokenRequest token of the ServiceAccount; AWS gets what EKS's pod identity webhook injects:
    the role from the ServiceAccount's annotation and a web identity token file (here the same token).
    """
    kubeconfig = control_plane.token_for_service_account(namespace, service_account, workdir / "sa.kubeconfig")
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    token_file = workdir / "web-identity-token"
    token_file.write_text(token)
    with control_plane.admin_api_client() as api_client:
        sa = client.CoreV1Api(api_client).read_namespaced_service_account(service_account, namespace)
    return {
        "KUBECONFIG": str(kubeconfig),
        "AWS_ROLE_ARN": sa.metadata.annotations["eks.amazonaws.com/role-arn"],
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ROLE_SESSION_NAME": "aurora-restore-operator",
        "AWS_ENDPOINT_URL": simulator_url,
        # No static keys: boto3 must take the web identity path of its default chain.
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
    }


def allowed(api_client, user: str, verb: str, resource: str, namespace: str) -> bool:
    """What RBAC answers for `user` (a SubjectAccessReview, as `kubectl auth can-i --as` asks)."""
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=["system:serviceaccounts", "system:authenticated"],
        resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace),
    ))
    return client.AuthorizationV1Api(api_client).create_subject_access_review(review).status.allowed


def assert_no_permission_errors(log: str, control_plane, namespace: str, service_account: str) -> None:
    # Not a bare "403": log timestamps have milliseconds, and AWS names hex digits.
    denial = re.search(r"\(403\)|[Ff]orbidden|Not enough permissions", log)
    assert denial is None, f"{denial.group(0)!r} in the operator log:\n{log[-5000:]}"
    user = f"system:serviceaccount:{namespace}:{service_account}"
    requests = [event for event in control_plane.read_audit_events() if event["user"]["username"] == user]
    assert requests, f"no request of {user} in the audit log"
    denied = [
        f"{event['verb']} {event['requestURI']}"
        for event in requests
        if event.get("responseStatus", {}).get("code") == 403
    ]
    assert not denied, f"requests of {user} the apiserver denied: {denied}"


def test_install_creates_the_operator_objects(helm, control_plane, admin_client):
    release_namespace = unique("ars")
    helm.install(control_plane.kubeconfig_path, "aurora-restore-operator", release_namespace,
                 {"aws": {"roleArn": ROLE_ARN, "region": REGION}})

    apps, core = client.AppsV1Api(admin_client), client.CoreV1Api(admin_client)
    rbac = client.RbacAuthorizationV1Api(admin_client)
    deployment = apps.read_namespaced_deployment("aurora-restore-operator", release_namespace)
    assert deployment.spec.template.spec.service_account_name == "aurora-restore-operator"
    assert deployment.spec.template.spec.containers[0].security_context.read_only_root_filesystem is True
    service_account = core.read_namespaced_service_account("aurora-restore-operator", release_namespace)
    assert service_account.metadata.annotations["eks.amazonaws.com/role-arn"] == ROLE_ARN
    cluster_role = rbac.read_cluster_role("aurora-restore-operator")
    assert {rule.api_groups[0] for rule in cluster_role.rules} == {"apiextensions.k8s.io", "dbrestore.io", "", "batch"}
    binding = rbac.read_cluster_role_binding("aurora-restore-operator")
    assert (binding.subjects[0].name, binding.subjects[0].namespace) == ("aurora-restore-operator", release_namespace)
    assert rbac.read_namespaced_role("aurora-restore-operator-leases", release_namespace).rules[0].resources == [
        "leases"
    ]
    rbac.read_namespaced_role_binding("aurora-restore-operator-leases", release_namespace)
    client.PolicyV1Api(admin_client).read_namespaced_pod_disruption_budget("aurora-restore-operator",
                                                                          release_namespace)
    client.NetworkingV1Api(admin_client).read_namespaced_network_policy("aurora-restore-operator", release_namespace)
    crd = client.ApiextensionsV1Api(admin_client).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)


def image_ca_bundle(tmp_path) -> dict[str, str]:
    """A stand-in for the image's RDS CA bundle: these restores connect to no database, but the operator needs a
    bundle to start."""
    return {"AURORA_RESTORE_DB_CA_BUNDLE": str(ensure_certificates(tmp_path / "ca").ca_certificate)}


def allow_restores_in(namespace: str) -> dict:
    """The chart's policy for these tests: restores of `namespace` may create any cluster from any snapshot."""
    return {"namespaces": [namespace], "targets": [{}], "sources": [{}]}


def test_operator_restores_as_the_service_account_of_a_namespaced_install(
    helm, control_plane, admin_client, simulator_url, rds, tmp_path
):
    """watchNamespaces: Roles in the watched namespace, the Leases in the release's namespace."""
    release, release_namespace = "aurora-restore-ns", unique("ars")
    watched = create_namespace(admin_client, unique("team"))
    helm.install(control_plane.kubeconfig_path, release, release_namespace,
                 {"watchNamespaces": [watched], "aws": {"roleArn": ROLE_ARN, "region": REGION},
                  "policy": {"create": True, "spec": allow_restores_in(watched)}})
    pod_name = pod_name_of(release)
    env = {
        **container_environment(installed_container(admin_client, release_namespace, release), release_namespace,
                                pod_name),
        **irsa_environment(control_plane, release_namespace, release, tmp_path, simulator_url),
        **FAST_SETTINGS,
        **image_ca_bundle(tmp_path),
    }
    assert env["AURORA_RESTORE_LEASE_NAMESPACE"] == release_namespace
    assert env["AURORA_RESTORE_POD_NAME"] == env["POD_NAME"] == pod_name
    # Secrets (passwords in, connection Secrets out) only in the watched namespace; never listed.
    user = f"system:serviceaccount:{release_namespace}:{release}"
    for verb in ("get", "create", "update", "delete"):
        assert allowed(admin_client, user, verb, "secrets", watched)
        assert not allowed(admin_client, user, verb, "secrets", release_namespace)
    assert not allowed(admin_client, user, "list", "secrets", watched)

    operator = OperatorProcess(env, tmp_path / "operator.log", namespace=watched, pod_name=pod_name).start()
    try:
        restore = restore_and_wait(admin_client, watched, rds)
    finally:
        returncode = operator.stop(60)  # SIGTERM
    log = operator.log_path.read_text()
    assert restore["status"]["phase"] == "Succeeded", f"{restore['status']}\n{log[-5000:]}"
    assert returncode == 0, f"SIGTERM: exit code {returncode}\n{log[-5000:]}"
    phases = [entry["phase"] for entry in restore["status"]["history"]]
    assert phases[0] == "Pending" and phases[-1] == "Succeeded" and "RestoringCluster" in phases
    assert_no_permission_errors(log, control_plane, release_namespace, release)


def leader_lease(api_client, namespace: str, name: str):
    try:
        return client.CoordinationV1Api(api_client).read_namespaced_lease(name, namespace)
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return None
        raise


def test_image_command_with_the_chart_arguments_restores_cluster_wide(
    helm, control_plane, admin_client, simulator_url, rds, tmp_path
):
    """The Dockerfile's ENTRYPOINT with the args and env of a cluster-wide install, as its ServiceAccount: it takes
    the leader Lease, restores, and on SIGTERM drains, releases the Lease and exits 0."""
    release, release_namespace = "aurora-restore-cw", unique("ars")
    watched = unique("team")
    helm.install(control_plane.kubeconfig_path, release, release_namespace,
                 {"aws": {"roleArn": ROLE_ARN, "region": REGION}, "settings": {"defaultTags": {"team": "data"}},
                  "policy": {"create": True, "spec": allow_restores_in(watched)}})
    container = installed_container(admin_client, release_namespace, release)
    assert "command" not in container
    entrypoint = exec_form("ENTRYPOINT")  # the chart's args replace the image's CMD
    assert entrypoint[:2] == ["aurora-restore", "run"] and container["args"][0] == "--all-namespaces"

    health_port = free_port()
    # The virtualenv's console script, as /opt/venv/bin/aurora-restore (first on PATH) in the image.
    command = [str(Path(sys.executable).parent / entrypoint[0])]
    for argument in entrypoint[1:] + container["args"]:
        if argument.startswith("--liveness="):
            assert argument == "--liveness=http://0.0.0.0:8080/healthz"
            argument = f"--liveness=http://127.0.0.1:{health_port}/healthz"  # loopback only, a free port
        command.append(argument)
    pod_name = pod_name_of(release)
    env = {
        **os.environ,
        **container_environment(container, release_namespace, pod_name),
        **irsa_environment(control_plane, release_namespace, release, tmp_path, simulator_url),
        **FAST_SETTINGS,
        **image_ca_bundle(tmp_path),
    }
    assert env["AURORA_RESTORE_POD_NAME"] == pod_name and env["AURORA_RESTORE_LEADER_ELECTION"] == "true"
    lease_name = env["AURORA_RESTORE_LEADER_LEASE_NAME"]
    assert lease_name == f"{release}-leader"
    create_namespace(admin_client, watched)
    log_path = tmp_path / "operator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def health():
            assert process.poll() is None, f"`{shlex.join(command)}` exited:\n{log_path.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=2) as response:
                    return json.loads(response.read()) if response.status == 200 else None
            except OSError:
                return None

        wait_until(lambda: (health() or {}).get("leader"), "the operator leading", timeout=60)
        assert health() == {"identity": pod_name, "leader": True, "healthy": True}
        lease = leader_lease(admin_client, release_namespace, lease_name)
        assert lease.spec.holder_identity == pod_name
        restore = restore_and_wait(admin_client, watched, rds)
    finally:
        # What the kubelet sends when the pod is deleted; the grace period allows it far more than this test.
        process.terminate()
        try:
            returncode = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            returncode = None
    log = log_path.read_text()
    assert restore["status"]["phase"] == "Succeeded", f"{restore['status']}\n{log[-5000:]}"
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(
        ResourceName=restore["status"]["cluster"]["arn"])["TagList"]}
    assert tags["team"] == "data"  # AURORA_RESTORE_DEFAULT_TAGS from the chart's values
    # A graceful shutdown: exit 0 after giving the leader Lease up (kept, with no holder), so that a standby
    # takes over at once; under the chart's RBAC, like everything before it.
    assert returncode == 0, f"SIGTERM: exit code {returncode}\n{log[-5000:]}"
    assert "released the leader Lease" in log, log[-5000:]
    assert leader_lease(admin_client, release_namespace, lease_name).spec.holder_identity is None
    assert_no_permission_errors(log, control_plane, release_namespace, release)


def with_deployment_args(args: list[str]):
    """operator_command, but with a Deployment's scope flags (all its --namespace flags) instead of one namespace."""
    scope = [argument for argument in args if not argument.startswith("--log-format")]
    original = operator_process.operator_command

    def command(_namespace, liveness_port: int) -> list[str]:
        dev = original(None, liveness_port)  # [python, -m, aurora_restore.cli, run, --all-namespaces, --liveness=...]
        return [*dev[:dev.index("--all-namespaces")], *scope, dev[-1]]

    return command


def test_shards_restore_side_by_side_under_the_shared_rbac(
    helm, control_plane, admin_client, simulator_url, rds, tmp_path, monkeypatch
):
    """A label shard and a namespace shard (two namespaces) of one release, each run with its Deployment's args and
    env as the shared ServiceAccount: each restores what is its own, leads on its own Lease, and takes its target's
    Lease in the release's namespace; nothing is denied (kopf lists and watches namespaces for the namespace
    shard)."""
    release, release_namespace = "aurora-restore-sh", unique("ars")
    labelled, first, team = unique("lab"), unique("team"), unique("team")
    helm.install(control_plane.kubeconfig_path, release, release_namespace, {
        "aws": {"roleArn": ROLE_ARN, "region": REGION},
        "shards": [{"name": "a", "labelSelector": "dbrestore.io/shard=a"},
                   {"name": "b", "namespaces": [first, team]}],
        "policy": {"create": True, "spec": {"namespaces": [labelled, team], "targets": [{}], "sources": [{}]}},
    })
    apps, policies = client.AppsV1Api(admin_client), client.PolicyV1Api(admin_client)
    for shard in ("a", "b"):  # the apiserver accepted one Deployment and one PodDisruptionBudget per shard
        deployment = apps.read_namespaced_deployment(f"{release}-{shard}", release_namespace)
        assert deployment.spec.selector.match_labels["dbrestore.io/shard"] == shard
        policies.read_namespaced_pod_disruption_budget(f"{release}-{shard}", release_namespace)
    for namespace in (labelled, first, team):
        create_namespace(admin_client, namespace)
    irsa = irsa_environment(control_plane, release_namespace, release, tmp_path, simulator_url)
    operators = {}
    for shard, args in (("a", ["--all-namespaces"]), ("b", [f"--namespace={first}", f"--namespace={team}"])):
        container = installed_container(admin_client, release_namespace, f"{release}-{shard}")
        assert container["args"] == [*args, "--log-format=json"]
        pod_name = pod_name_of(f"{release}-{shard}")
        env = {**container_environment(container, release_namespace, pod_name), **irsa, **FAST_SETTINGS,
               **image_ca_bundle(tmp_path)}
        assert env["AURORA_RESTORE_LEADER_LEASE_NAME"] == f"{release}-{shard}-leader"
        assert env["AURORA_RESTORE_LEASE_NAMESPACE"] == release_namespace
        with monkeypatch.context() as patch:  # the Deployment's own flags: a restore in its second namespace
            patch.setattr(operator_process, "operator_command", with_deployment_args(container["args"]))
            operators[shard] = OperatorProcess(env, tmp_path / f"operator-{shard}.log", pod_name=pod_name).start()
    try:
        for shard in ("a", "b"):
            wait_until(lambda: (operators[shard].health() or {}).get("leader"), f"shard {shard} leading")
            lease = leader_lease(admin_client, release_namespace, f"{release}-{shard}-leader")
            assert lease.spec.holder_identity == operators[shard].pod_name
        by_label = restore_and_wait(admin_client, labelled, rds, labels={"dbrestore.io/shard": "a"})
        by_namespace = restore_and_wait(admin_client, team, rds)
    finally:
        returncodes = {shard: operator.stop(60) for shard, operator in operators.items()}
    logs = {shard: operator.log_path.read_text() for shard, operator in operators.items()}
    assert by_label["status"]["phase"] == "Succeeded", f"{by_label['status']}\n{logs['a'][-5000:]}"
    assert by_namespace["status"]["phase"] == "Succeeded", f"{by_namespace['status']}\n{logs['b'][-5000:]}"
    assert returncodes == {"a": 0, "b": 0}, returncodes
    # Each restore in its own shard's log only (the other shard never saw it); the watch asked for shard a's only.
    ours, theirs = by_label["status"]["cluster"]["identifier"], by_namespace["status"]["cluster"]["identifier"]
    assert ours in logs["a"] and ours not in logs["b"]
    assert theirs in logs["b"] and theirs not in logs["a"]
    user = f"system:serviceaccount:{release_namespace}:{release}"
    cluster_wide = [unquote(event["requestURI"]) for event in control_plane.read_audit_events()
                    if event["user"]["username"] == user and event["verb"] in ("list", "watch")
                    and event["requestURI"].startswith(f"/apis/{GROUP}/{VERSION}/{PLURAL}")]  # shard a's only
    assert cluster_wide and all("labelSelector=dbrestore.io/shard=a" in uri for uri in cluster_wide), cluster_wide
    leases = client.CoordinationV1Api(admin_client)
    for restore in (by_label, by_namespace):
        leases.read_namespaced_lease(target_lease_name(REGION, restore["status"]["cluster"]["identifier"]),
                                     release_namespace)
    for log in logs.values():
        assert_no_permission_errors(log, control_plane, release_namespace, release)
