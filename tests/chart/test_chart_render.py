"""The chart without a cluster: helm lint, helm template for default and non-default values, the values schema."""

import importlib
import json

import pytest
from helm_cli import CHART, REPO, HelmError, find, operator_container

from aurora_restore.k8s.leader_lease import LeaseTimings
from aurora_restore.settings import Settings

ROLE_ARN = "arn:aws:iam::123456789012:role/aurora-restore-operator"

VARIANTS = {
    "default": None,
    "watch-namespaces": {"watchNamespaces": ["team-a", "team-b"]},
    "irsa-and-region": {"aws": {"roleArn": ROLE_ARN, "region": "eu-west-1"}},
    "metrics": {"metrics": {"enabled": True, "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
    "policy": {"policy": {"create": True, "spec": {"namespaces": ["team-*"], "targets": [{"clusterIdentifier": "stage-*"}],
                                                   "sources": [{"region": "us-east-1"}]}}},
    "no-network-policy": {"networkPolicy": {"enabled": False}, "podDisruptionBudget": {"enabled": False}},
    "shards": {"shards": [{"name": "a", "labelSelector": "dbrestore.io/shard=a"},
                          {"name": "b", "labelSelector": "dbrestore.io/shard in (b, c)"},
                          {"name": "team-c", "namespaces": ["team-c"]}],
               "replicaCount": 2, "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}},
    "settings": {
        "settings": {"pollIntervalSeconds": 10, "defaultTags": {"cost-center": "data", "env": "stage"}},
        "dbCaBundle": {"configMapName": "rds-ca-bundle"},
        "logFormat": "plain",
        "image": {"repository": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/aurora-restore", "tag": "1.2.3",
                  "digest": "sha256:" + "a" * 64},
    },
}

WATCH_RULES = [
    {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestores"],
     "verbs": ["get", "list", "watch", "patch", "create", "delete"]},
    {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestores/status"], "verbs": ["patch"]},
    {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestoreschedules"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestoreschedules/status"], "verbs": ["patch"]},
    {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestoreschedules/finalizers"], "verbs": ["update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update", "delete"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "create", "delete"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
]
CRD_RULE = {
    "apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]
}
POLICIES_RULE = {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestorepolicies"], "verbs": ["list"]}
NAMESPACE_LABELS_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}
NAMESPACES_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}
LEASE_RULES = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "delete"]}
]


def env_of(container) -> dict:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


@pytest.mark.parametrize("values", VARIANTS.values(), ids=VARIANTS.keys())
def test_lint_and_template_are_clean(helm, values):
    helm.lint(values)
    objects = helm.template(values)
    for obj in objects:
        assert obj["metadata"]["name"].startswith("aurora-restore-"), obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "aurora-restore-operator"
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "AuroraRestorePolicy"):
            assert obj["metadata"]["namespace"], obj["kind"]


def test_default_deployment_is_locked_down(helm):
    objects = helm.template()
    deployment = find(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = operator_container(objects)

    assert deployment["spec"]["replicas"] == 1
    # A new pod starts (as a standby) before an old one stops; leader election keeps it from acting meanwhile.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
    }
    assert pod["terminationGracePeriodSeconds"] == 390
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsUser"] >= 10000 and security["runAsNonRoot"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["ports"] == [{"name": "health", "containerPort": 8080, "protocol": "TCP"}]
    assert container["image"] == "aurora-restore-operator:0.1.0"
    # The image's ENTRYPOINT runs `aurora-restore run` (test_dockerfile.py); the chart only chooses the scope.
    assert "command" not in container
    assert container["args"] == ["--all-namespaces", "--log-format=json"]  # JSON lines: docs/audit.md#logs

    env = env_of(container)
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # The pod's name is its replica identity (the leader Lease's holder), from the downward API.
    assert env["POD_NAME"] == env["AURORA_RESTORE_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["AURORA_RESTORE_LEASE_NAMESPACE"] == "ops"
    assert env["AURORA_RESTORE_LEADER_ELECTION"] == "true"
    assert env["AURORA_RESTORE_LEADER_LEASE_NAME"] == "aurora-restore-operator-leader"
    assert env["AURORA_RESTORE_LEADER_LEASE_DURATION_SECONDS"] == "15"
    assert env["AURORA_RESTORE_LEADER_RENEW_DEADLINE_SECONDS"] == "10"
    assert env["AURORA_RESTORE_LEADER_RETRY_PERIOD_SECONDS"] == "2"
    assert env["AURORA_RESTORE_SHUTDOWN_TIMEOUT_SECONDS"] == "360"
    assert env["AURORA_RESTORE_POLL_INTERVAL_SECONDS"] == "30"
    assert json.loads(env["AURORA_RESTORE_DEFAULT_TAGS"]) == {}
    assert "AURORA_RESTORE_ALLOWED_ROLES" not in env  # retired: AuroraRestorePolicy roles[]
    assert "AWS_REGION" not in env and "AURORA_RESTORE_DB_CA_BUNDLE" not in env

    service_account = find(objects, "ServiceAccount")
    assert pod["serviceAccountName"] == service_account["metadata"]["name"] == "aurora-restore-operator"
    assert "annotations" not in service_account["metadata"]
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert not [obj for obj in objects if obj["kind"] in ("Service", "ServiceMonitor")]


def test_settings_image_and_region_come_from_values(helm):
    objects = helm.template({**VARIANTS["settings"], **VARIANTS["irsa-and-region"]})
    container = operator_container(objects)
    env = env_of(container)
    assert env["AURORA_RESTORE_POLL_INTERVAL_SECONDS"] == "10"
    assert json.loads(env["AURORA_RESTORE_DEFAULT_TAGS"]) == {"cost-center": "data", "env": "stage"}
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AURORA_RESTORE_DB_CA_BUNDLE"] == "/etc/aurora-restore/db-ca/global-bundle.pem"
    assert {"name": "db-ca", "mountPath": "/etc/aurora-restore/db-ca", "readOnly": True} in container["volumeMounts"]
    volumes = find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "db-ca", "configMap": {"name": "rds-ca-bundle"}} in volumes
    assert container["args"][-1] == "--log-format=plain"
    assert container["image"] == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/aurora-restore:1.2.3@sha256:" + "a" * 64
    )
    annotations = find(objects, "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": ROLE_ARN}


def test_database_tls_is_verified_unless_a_boolean_value_turns_it_off(helm, monkeypatch):
    """By default verified against the image's RDS CA bundle (no AURORA_RESTORE_DB_CA_BUNDLE, nothing mounted);
    `settings.dbTlsVerify: false` turns it off, in words the operator's settings read as false."""
    container = operator_container(helm.template())
    env = env_of(container)
    assert env["AURORA_RESTORE_DB_TLS_VERIFY"] == "true" and "AURORA_RESTORE_DB_CA_BUNDLE" not in env
    assert [mount["name"] for mount in container["volumeMounts"]] == ["tmp"]

    env = env_of(operator_container(helm.template({"settings": {"dbTlsVerify": False}})))
    assert env["AURORA_RESTORE_DB_TLS_VERIFY"] == "false"
    monkeypatch.setenv("AURORA_RESTORE_DB_TLS_VERIFY", env["AURORA_RESTORE_DB_TLS_VERIFY"])
    assert Settings().db_tls_verify is False

    with pytest.raises(HelmError) as error:  # a string such as "no" is refused, never taken for true
        helm.template({"settings": {"dbTlsVerify": "no"}})
    assert "at '/settings/dbTlsVerify': got string, want boolean" in error.value.stderr


def test_cluster_wide_rbac(helm):
    objects = helm.template()
    assert find(objects, "ClusterRole")["rules"] == [CRD_RULE, POLICIES_RULE, NAMESPACE_LABELS_RULE, *WATCH_RULES]
    binding = find(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "aurora-restore-operator", "namespace": "ops"}]
    assert find(objects, "Role", namespace="ops")["rules"] == LEASE_RULES
    assert find(objects, "RoleBinding", namespace="ops")["roleRef"]["name"] == "aurora-restore-operator-leases"


def test_namespaced_rbac_has_one_role_per_watched_namespace(helm):
    objects = helm.template({"watchNamespaces": ["team-a", "team-b", "ops"]})
    assert operator_container(objects)["args"] == [
        "--namespace=team-a", "--namespace=team-b", "--namespace=ops", "--log-format=json"
    ]
    assert find(objects, "ClusterRole")["rules"] == [CRD_RULE, POLICIES_RULE, NAMESPACES_RULE]
    for namespace in ("team-a", "team-b", "ops"):
        role = find(objects, "Role", name="aurora-restore-operator", namespace=namespace)
        assert role["rules"] == WATCH_RULES
        binding = find(objects, "RoleBinding", name="aurora-restore-operator", namespace=namespace)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": "aurora-restore-operator"}
        assert binding["subjects"][0]["namespace"] == "ops"
    assert find(objects, "Role", name="aurora-restore-operator-leases", namespace="ops")["rules"] == LEASE_RULES


def test_no_rbac_rule_uses_wildcards(helm):
    for values in VARIANTS.values():
        for obj in helm.template(values):
            for rule in obj.get("rules", []):
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule


def test_release_names_are_prefixed_once(helm):
    assert find(helm.template(release="stage"), "Deployment")["metadata"]["name"] == "aurora-restore-stage"
    assert find(helm.template(release="aurora-restore-x"), "Deployment")["metadata"]["name"] == "aurora-restore-x"


def test_metrics_are_opt_in(helm):
    objects = helm.template(VARIANTS["metrics"])
    container = operator_container(objects)
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert {"name": "AURORA_RESTORE_METRICS_PORT", "value": "9090"} in container["env"]
    default_env = {e["name"] for e in operator_container(helm.template())["env"]}
    assert "AURORA_RESTORE_METRICS_PORT" not in default_env
    service = find(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = find(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    ingress = find(objects, "NetworkPolicy")["spec"]["ingress"]
    assert ingress == [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 9090, "protocol": "TCP"}]}]


def test_network_policy_allows_only_dns_https_and_database_egress(helm):
    policy = find(helm.template(), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["ingress"] == []
    dns, https, databases = policy["egress"]
    assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    assert https == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    assert databases == {
        "to": [{"ipBlock": {"cidr": cidr}} for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")],
        "ports": [{"port": 5432, "protocol": "TCP"}, {"port": 3306, "protocol": "TCP"}],
    }

    kubeadm = find(helm.template({"networkPolicy": {"apiServerPorts": [6443]}}), "NetworkPolicy")["spec"]
    assert kubeadm["egress"][1]["ports"] == [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]
    assert not [obj for obj in helm.template(VARIANTS["no-network-policy"]) if obj["kind"] == "NetworkPolicy"]


def test_notes_warn_about_missing_credentials_and_name_the_metrics(helm):
    notes = helm.notes({"metrics": {"enabled": True}, "watchNamespaces": ["team-a"]})
    assert "acts on AuroraRestores in the namespaces team-a" in notes
    assert "WARNING: aws.roleArn is empty" in notes
    assert "Prometheus metrics (aurora_restore_*) on port 9090" in notes
    notes = helm.notes(VARIANTS["irsa-and-region"])
    assert f"AWS: IAM role {ROLE_ARN} through IRSA" in notes and "WARNING" not in notes
    assert "all namespaces" in notes and "Metrics:" not in notes
    unused = helm.notes({**VARIANTS["irsa-and-region"], "serviceAccount": {"create": False, "name": "own"}})
    assert f"WARNING: serviceAccount.create is false, so aws.roleArn ({ROLE_ARN}) is not applied" in unused
    assert "Annotate ServiceAccount\nown yourself" in unused and "through IRSA" not in unused


def test_notes_name_the_leader_lease(helm):
    notes = helm.notes({"replicaCount": 2})
    assert "Its 2 replicas elect a leader on the Lease ops/aurora-restore-operator-leader" in notes
    assert "kubectl -n ops get lease aurora-restore-operator-leader" in notes
    assert "set replicaCount: 2" in helm.notes()
    assert "logs deployment/aurora-restore-operator" in helm.notes({"leaderElection": {"enabled": False}})


def test_replicas_elect_a_leader_on_a_lease_of_the_release(helm):
    """Any number of replicas from 0; the leader election values become the operator's settings."""
    for replicas in (0, 1, 2, 3):
        assert find(helm.template({"replicaCount": replicas}), "Deployment")["spec"]["replicas"] == replicas
    objects = helm.template({"replicaCount": 2, "leaderElection": {
        "leaseName": "restorer-leader", "leaseDurationSeconds": 30, "renewDeadlineSeconds": 20,
        "retryPeriodSeconds": 4}}, release="stage")
    env = env_of(operator_container(objects))
    assert env["AURORA_RESTORE_LEADER_LEASE_NAME"] == "restorer-leader"
    assert (env["AURORA_RESTORE_LEADER_LEASE_DURATION_SECONDS"], env["AURORA_RESTORE_LEADER_RENEW_DEADLINE_SECONDS"],
            env["AURORA_RESTORE_LEADER_RETRY_PERIOD_SECONDS"]) == ("30", "20", "4")
    default_name = env_of(operator_container(helm.template(release="stage")))["AURORA_RESTORE_LEADER_LEASE_NAME"]
    assert default_name == "aurora-restore-stage-leader"
    # The leader Lease is one more Lease in the release's namespace: the Lease Role (get, create, update, delete) covers
    # what leader election does (read, create, replace).
    assert env["AURORA_RESTORE_LEASE_NAMESPACE"] == "ops"
    assert find(objects, "Role", name="aurora-restore-stage-leases", namespace="ops")["rules"] == LEASE_RULES
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1  # a drain evicts one at a time


def test_the_chart_settings_are_what_the_operator_accepts(helm, monkeypatch):
    """The rendered environment loads as the operator's Settings, with the same defaults."""
    env = env_of(operator_container(helm.template()))
    for name, value in env.items():
        if isinstance(value, str) and name.startswith("AURORA_RESTORE_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AURORA_RESTORE_POD_NAME", "aurora-restore-operator-5d8f-x2x7q")
    monkeypatch.setenv("AURORA_RESTORE_DB_TLS_VERIFY", "false")  # no CA bundle where the image has it
    settings = Settings()
    assert settings.leader_election is True
    assert settings.pod_name == "aurora-restore-operator-5d8f-x2x7q"
    for field in ("leader_lease_duration_seconds", "leader_renew_deadline_seconds", "leader_retry_period_seconds",
                  "shutdown_timeout_seconds"):
        assert getattr(settings, field) == Settings.model_fields[field].default, field
    assert settings.leader_lease_name == env["AURORA_RESTORE_LEADER_LEASE_NAME"] == "aurora-restore-operator-leader"
    assert settings.lease_namespace == "ops"


def kopf_stop_seconds() -> float:
    """How long kopf may take to stop the restore daemons once the drain is over: their cancellation backoff
    plus cancellation timeout (main.py)."""
    import kopf

    importlib.import_module("aurora_restore.main")  # registers the handlers with kopf's default registry
    [daemon] = [handler for handler in kopf.get_default_registry()._spawning.get_all_handlers()
                if handler.id == "restore"]
    return daemon.cancellation_backoff + daemon.cancellation_timeout


def test_the_grace_period_outlasts_the_drain_and_the_drain_the_longest_aws_call(helm):
    """SIGTERM to SIGKILL covers the shutdown timeout, then kopf's stop; the shutdown timeout covers the longest
    AWS call with its retries (with the chart's timeouts)."""
    pod = find(helm.template(), "Deployment")["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    shutdown = float(env["AURORA_RESTORE_SHUTDOWN_TIMEOUT_SECONDS"])
    assert kopf_stop_seconds() == 15
    assert pod["terminationGracePeriodSeconds"] > shutdown + kopf_stop_seconds()
    longest_call = Settings(
        aws_connect_timeout_seconds=float(env["AURORA_RESTORE_AWS_CONNECT_TIMEOUT_SECONDS"]),
        aws_read_timeout_seconds=float(env["AURORA_RESTORE_AWS_READ_TIMEOUT_SECONDS"]),
        db_tls_verify=False,
    ).longest_aws_call_seconds()
    assert longest_call == 340
    assert shutdown >= longest_call

    # A longer shutdown timeout needs a longer grace period: just over the sum renders, the sum does not.
    longer = {"settings": {"shutdownTimeoutSeconds": 600}, "terminationGracePeriodSeconds": 616}
    assert find(helm.template(longer), "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 616


GRACE_TOO_SHORT = {
    "equal to the sum": ({"terminationGracePeriodSeconds": 375}, "(375)", "(360)", "at least 376"),
    "shorter than the shutdown": ({"terminationGracePeriodSeconds": 30}, "(30)", "(360)", "at least 376"),
    "shutdown raised alone": ({"settings": {"shutdownTimeoutSeconds": 400}}, "(390)", "(400)", "at least 416"),
}


@pytest.mark.parametrize("values,grace,shutdown,least", GRACE_TOO_SHORT.values(), ids=GRACE_TOO_SHORT.keys())
def test_a_grace_period_too_short_to_drain_is_refused_saying_why(helm, values, grace, shutdown, least):
    with pytest.raises(HelmError) as error:
        helm.template(values)
    message = error.value.stderr
    assert f"terminationGracePeriodSeconds {grace} must exceed settings.shutdownTimeoutSeconds {shutdown} + 15 s" \
        in message
    assert "10 s cancellation backoff + 5 s cancellation timeout" in message and least in message
    assert "killed before it has drained and released the leader Lease" in message


def test_a_shutdown_timeout_shorter_than_the_longest_aws_call_is_refused(helm):
    """Longer AWS timeouts make the longest call longer: the drain must still be able to wait for it."""
    values = {"settings": {"awsReadTimeoutSeconds": 120}}  # 4 x (10 + 120) + 60 = 580 > 360
    with pytest.raises(HelmError) as error:
        helm.template(values)
    assert "settings.shutdownTimeoutSeconds (360) must be at least the longest AWS call" in error.value.stderr
    assert "= 580" in error.value.stderr
    fitting = {"settings": {"awsReadTimeoutSeconds": 120, "shutdownTimeoutSeconds": 580},
               "terminationGracePeriodSeconds": 600}
    assert find(helm.template(fitting), "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 600


BAD_LEASE_TIMINGS = {
    "renew deadline = duration": {"renewDeadlineSeconds": 15},
    "renew deadline > duration": {"leaseDurationSeconds": 10, "renewDeadlineSeconds": 12},
    "retry period = renew deadline": {"retryPeriodSeconds": 10},
    "renew deadline <= 1.2 x retry period": {"retryPeriodSeconds": 9},
}


@pytest.mark.parametrize("timings", BAD_LEASE_TIMINGS.values(), ids=BAD_LEASE_TIMINGS.keys())
def test_lease_timings_out_of_order_are_refused(helm, timings):
    """leaseDurationSeconds > renewDeadlineSeconds > 1.2 x retryPeriodSeconds: the chart refuses what the operator
    would refuse to start with."""
    duration, deadline, retry = ({"leaseDurationSeconds": 15, "renewDeadlineSeconds": 10, "retryPeriodSeconds": 2,
                                  **timings}[key] for key in ("leaseDurationSeconds", "renewDeadlineSeconds",
                                                              "retryPeriodSeconds"))
    with pytest.raises(HelmError) as error:
        helm.template({"leaderElection": timings})
    assert (f"leaderElection needs leaseDurationSeconds ({duration}) > renewDeadlineSeconds ({deadline}) > "
            f"1.2 x retryPeriodSeconds ({retry})") in error.value.stderr
    with pytest.raises(ValueError):
        LeaseTimings(duration, deadline, retry)


def test_without_leader_election_one_pod_at_most_and_never_two_at_once(helm):
    objects = helm.template({"leaderElection": {"enabled": False}})
    assert find(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert env_of(operator_container(objects))["AURORA_RESTORE_LEADER_ELECTION"] == "false"
    with pytest.raises(HelmError) as error:
        helm.template({"leaderElection": {"enabled": False}, "replicaCount": 2})
    assert "replicaCount 2 needs leaderElection.enabled" in error.value.stderr


BAD_VALUES = {
    "negative replicas": ({"replicaCount": -1}, "at '/replicaCount': minimum: got -1, want 0"),
    "replicas as text": ({"replicaCount": "2"}, "at '/replicaCount': got string, want integer"),
    "leader key": ({"leaderElection": {"lease": "x"}}, "additional properties 'lease' not allowed"),
    "lease name": ({"leaderElection": {"leaseName": "Leader_1"}},
                   "at '/leaderElection/leaseName': 'Leader_1' does not match"),
    "lease duration": ({"leaderElection": {"leaseDurationSeconds": 0}}, "at '/leaderElection/leaseDurationSeconds'"),
    "retry period": ({"leaderElection": {"retryPeriodSeconds": 0}}, "at '/leaderElection/retryPeriodSeconds'"),
    "shutdown timeout": ({"settings": {"shutdownTimeoutSeconds": 0}}, "at '/settings/shutdownTimeoutSeconds'"),
    "grace period": ({"terminationGracePeriodSeconds": 390.5},
                     "at '/terminationGracePeriodSeconds': got number, want integer"),
    "role ARN": ({"aws": {"roleArn": "my-role"}}, "at '/aws/roleArn': 'my-role' does not match pattern '^(arn:aws"),
    "region": ({"aws": {"region": "Europe"}}, "at '/aws/region': 'Europe' does not match"),
    "namespace name": ({"watchNamespaces": ["Team_A"]}, "at '/watchNamespaces/0': 'Team_A' does not match"),
    "duplicate namespace": ({"watchNamespaces": ["a", "a"]}, "at '/watchNamespaces': items at 0 and 1 are equal"),
    "misspelt key": ({"watchNamespace": ["a"]}, "additional properties 'watchNamespace' not allowed"),
    "poll interval": ({"settings": {"pollIntervalSeconds": 0}}, "at '/settings/pollIntervalSeconds': minimum"),
    "tag value": (
        {"settings": {"defaultTags": {"team": 7}}}, "at '/settings/defaultTags/team': got number, want string"
    ),
    "log format": ({"logFormat": "xml"}, "at '/logFormat': value must be one of 'plain', 'full', 'json'"),
    "image digest": ({"image": {"digest": "latest"}}, "at '/image/digest': 'latest' does not match pattern '^(sha256:"),
    "name prefix": ({"fullnameOverride": "restorer"}, "at '/fullnameOverride': 'restorer' does not match"),
    "retired allowed roles": ({"settings": {"allowedRoles": {"team-a": ["restore-*"]}}},
                              "additional properties 'allowedRoles' not allowed"),
    "policy key": ({"policy": {"enabled": True}}, "additional properties 'enabled' not allowed"),
    "policy covering nothing": ({"policy": {"create": True}}, "at '/policy/spec'"),
    "shard without a part": ({"shards": [{"name": "a"}]}, "at '/shards/0': 'anyOf' failed"),
    "shard name": ({"shards": [{"name": "Shard_A", "labelSelector": "x=1"}]}, "at '/shards/0/name': 'Shard_A'"),
    "shard key": ({"shards": [{"name": "a", "selector": "x=1"}]}, "additional properties 'selector' not allowed"),
    "empty shard namespaces": ({"shards": [{"name": "a", "namespaces": []}]}, "at '/shards/0/namespaces'"),
    "batch describes as text": ({"settings": {"awsBatchDescribes": "yes"}},
                                "at '/settings/awsBatchDescribes': got string, want null or boolean"),
    "batch window": ({"settings": {"awsBatchWindowSeconds": 9}}, "at '/settings/awsBatchWindowSeconds': maximum"),
    "negative request rate": ({"settings": {"awsRequestsPerSecond": -1}},
                              "at '/settings/awsRequestsPerSecond': minimum"),
    "request burst": ({"settings": {"awsRequestBurst": 0}}, "at '/settings/awsRequestBurst': minimum"),
    "events queue": ({"settings": {"eventsQueueUrl": "my-queue"}}, "at '/settings/eventsQueueUrl': 'my-queue'"),
    "safety poll": ({"settings": {"eventsSafetyPollSeconds": 0}}, "at '/settings/eventsSafetyPollSeconds'"),
}


def test_no_policy_by_default_one_from_values_when_asked(helm):
    assert not [obj for obj in helm.template() if obj["kind"] == "AuroraRestorePolicy"]
    spec = {"namespaces": ["*"], "targets": [{}], "sources": [{}], "roles": ["*"], "secretsManagerSecrets": ["*"],
            "replace": {"allowed": True, "onlyClustersCreatedByOperator": False}, "allowFinalSnapshotSkip": True}
    policy = find(helm.template({"policy": {"create": True, "spec": spec}}), "AuroraRestorePolicy")
    assert policy["apiVersion"] == "dbrestore.io/v1alpha1"
    assert policy["metadata"]["name"] == "aurora-restore-operator" and "namespace" not in policy["metadata"]
    assert policy["spec"] == spec
    named = find(helm.template({"policy": {"create": True, "name": "team-a", "spec": {"namespaces": ["a"]}}}),
                 "AuroraRestorePolicy")
    assert named["metadata"]["name"] == "team-a"


@pytest.mark.parametrize("values,expected", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values_naming_the_field(helm, values, expected):
    with pytest.raises(HelmError) as error:
        helm.template(values)
    assert "values don't meet the specifications of the schema" in error.value.stderr
    assert expected in error.value.stderr


def test_chart_crds_are_the_generated_crds():
    generated = sorted(path.name for path in (REPO / "crds").glob("*.yaml"))
    shipped = sorted(path.name for path in (CHART / "crds").glob("*.yaml"))
    assert shipped == generated
    for name in generated:
        assert (CHART / "crds" / name).read_text() == (REPO / "crds" / name).read_text(), (
            f"helm/aurora-restore-operator/crds/{name} differs from crds/{name}: copy it over"
        )


# --- scale: shards and the scale settings (docs/scale.md) ---------------------------------------------------------

SHARD_LABEL = "dbrestore.io/shard"
SCALE_VARIABLES = ("AURORA_RESTORE_AWS_BATCH_DESCRIBES", "AURORA_RESTORE_AWS_BATCH_WINDOW_SECONDS",
                   "AURORA_RESTORE_EVENTS_QUEUE_URL", "AURORA_RESTORE_EVENTS_SAFETY_POLL_SECONDS",
                   "AURORA_RESTORE_AWS_REQUESTS_PER_SECOND", "AURORA_RESTORE_AWS_REQUEST_BURST")


def deployments(objects) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Deployment"}


def test_without_shards_one_deployment_watches_everything_as_before(helm):
    objects = helm.template()
    assert list(deployments(objects)) == ["aurora-restore-operator"]
    env = env_of(operator_container(objects))
    assert "AURORA_RESTORE_WATCH_LABEL_SELECTOR" not in env
    for obj in objects:
        assert SHARD_LABEL not in obj["metadata"]["labels"], obj["kind"]
    assert find(objects, "PodDisruptionBudget")["metadata"]["name"] == "aurora-restore-operator"


def test_each_shard_is_a_deployment_with_its_own_part_and_leader_lease(helm):
    objects = helm.template(VARIANTS["shards"], release="stage")
    by_name = deployments(objects)
    assert sorted(by_name) == ["aurora-restore-stage-a", "aurora-restore-stage-b", "aurora-restore-stage-team-c"]
    selectors, leases = [], []
    for shard in ("a", "b", "team-c"):
        deployment = by_name[f"aurora-restore-stage-{shard}"]
        spec = deployment["spec"]
        assert spec["replicas"] == 2
        selector = spec["selector"]["matchLabels"]
        assert selector[SHARD_LABEL] == shard and spec["template"]["metadata"]["labels"][SHARD_LABEL] == shard
        selectors.append(selector)
        pod = spec["template"]["spec"]
        assert pod["serviceAccountName"] == "aurora-restore-stage"  # one ServiceAccount (and RBAC) for all
        container = pod["containers"][0]
        env = env_of(container)
        # Each its own leader Lease; every one, like every per-target Lease, in the release's namespace.
        assert env["AURORA_RESTORE_LEASE_NAMESPACE"] == "ops"
        leases.append(env["AURORA_RESTORE_LEADER_LEASE_NAME"])
        if shard == "team-c":
            assert container["args"] == ["--namespace=team-c", "--log-format=json"]
            assert "AURORA_RESTORE_WATCH_LABEL_SELECTOR" not in env
        else:
            assert container["args"] == ["--all-namespaces", "--log-format=json"]
        assert env["AURORA_RESTORE_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert leases == ["aurora-restore-stage-a-leader", "aurora-restore-stage-b-leader",
                      "aurora-restore-stage-team-c-leader"]
    assert env_of(by_name["aurora-restore-stage-a"]["spec"]["template"]["spec"]["containers"][0])[
        "AURORA_RESTORE_WATCH_LABEL_SELECTOR"] == "dbrestore.io/shard=a"
    assert env_of(by_name["aurora-restore-stage-b"]["spec"]["template"]["spec"]["containers"][0])[
        "AURORA_RESTORE_WATCH_LABEL_SELECTOR"] == "dbrestore.io/shard in (b, c)"
    # No Deployment's pods match another's selector.
    for deployment in by_name.values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert [s for s in selectors if s.items() <= labels.items()] == [deployment["spec"]["selector"]["matchLabels"]]
    # One PodDisruptionBudget per shard, selecting exactly its pods.
    budgets = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "PodDisruptionBudget"}
    assert sorted(budgets) == sorted(by_name)
    for name, budget in budgets.items():
        assert budget["spec"]["selector"]["matchLabels"] == by_name[name]["spec"]["selector"]["matchLabels"]
        assert budget["spec"]["maxUnavailable"] == 1
    # One NetworkPolicy, Service and ServiceMonitor cover every shard's pods; the shard labels their series.
    common = {key: value for key, value in selectors[0].items() if key != SHARD_LABEL}
    assert find(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == common
    assert find(objects, "Service")["spec"]["selector"] == common
    assert find(objects, "ServiceMonitor")["spec"]["podTargetLabels"] == [SHARD_LABEL]


def test_a_configured_leader_lease_name_is_suffixed_per_shard(helm):
    objects = helm.template({**VARIANTS["shards"], "leaderElection": {"leaseName": "restorer"}})
    names = [env_of(d["spec"]["template"]["spec"]["containers"][0])["AURORA_RESTORE_LEADER_LEASE_NAME"]
             for d in deployments(objects).values()]
    assert names == ["restorer-a", "restorer-b", "restorer-team-c"]


def test_shards_share_the_rbac_that_watch_namespaces_scopes(helm):
    """Cluster-wide without watchNamespaces (a namespace shard then also needs namespaces listed and watched, as kopf
    does for `--namespace`); with it, one Role per listed namespace, and a shard's namespaces must be among them."""
    cluster = helm.template(VARIANTS["shards"])
    assert find(cluster, "ClusterRole")["rules"] == [CRD_RULE, POLICIES_RULE, NAMESPACES_RULE, *WATCH_RULES]
    labels_only = helm.template({"shards": [{"name": "a", "labelSelector": "s=a"},
                                            {"name": "b", "labelSelector": "s=b"}]})
    assert find(labels_only, "ClusterRole")["rules"] == [CRD_RULE, POLICIES_RULE, NAMESPACE_LABELS_RULE, *WATCH_RULES]

    scoped = helm.template({"watchNamespaces": ["team-a", "team-b"], "shards": [
        {"name": "a", "namespaces": ["team-a"]}, {"name": "rest", "labelSelector": "tier=gold"}]})
    assert find(scoped, "ClusterRole")["rules"] == [CRD_RULE, POLICIES_RULE, NAMESPACES_RULE]
    assert find(scoped, "Role", name="aurora-restore-operator", namespace="team-b")["rules"] == WATCH_RULES
    args = {name: d["spec"]["template"]["spec"]["containers"][0]["args"] for name, d in deployments(scoped).items()}
    assert args == {  # a label shard without namespaces watches watchNamespaces
        "aurora-restore-operator-a": ["--namespace=team-a", "--log-format=json"],
        "aurora-restore-operator-rest": ["--namespace=team-a", "--namespace=team-b", "--log-format=json"],
    }
    with pytest.raises(HelmError) as error:
        helm.template({"watchNamespaces": ["team-a"], "shards": [{"name": "a", "namespaces": ["team-z"]}]})
    assert "shards: a watches the namespace team-z, which watchNamespaces" in error.value.stderr


def test_each_shard_reads_an_events_queue_of_its_own(helm):
    """A reader deletes every message it receives: two shards on one queue would each miss the other's events."""
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/rds-events"
    shards = [{"name": "a", "labelSelector": "s=a"}, {"name": "b", "labelSelector": "s=b"}]
    with pytest.raises(HelmError) as error:
        helm.template({"settings": {"eventsQueueUrl": queue}, "shards": shards})
    assert f"shards: a and b read the same RDS events queue {queue}" in error.value.stderr
    objects = helm.template({"settings": {"eventsQueueUrl": queue},
                             "shards": [shards[0], {**shards[1], "eventsQueueUrl": queue + "-b"}]})
    queues = [env_of(d["spec"]["template"]["spec"]["containers"][0])["AURORA_RESTORE_EVENTS_QUEUE_URL"]
              for d in deployments(objects).values()]
    assert queues == [queue, queue + "-b"]


def test_shard_names_are_unique(helm):
    with pytest.raises(HelmError) as error:
        helm.template({"shards": [{"name": "a", "labelSelector": "s=a"}, {"name": "a", "labelSelector": "s=b"}]})
    assert "shards: the name a is used twice" in error.value.stderr


def test_notes_list_the_shards_and_their_leases(helm):
    notes = helm.notes(VARIANTS["shards"])
    assert "It runs 3 shards" in notes
    assert ("aurora-restore-operator-a: AuroraRestores and schedules labelled dbrestore.io/shard=a, in all namespaces; "
            "Lease aurora-restore-operator-a-leader") in notes
    assert "aurora-restore-operator-team-c: in team-c; Lease aurora-restore-operator-team-c-leader" in notes


def test_unset_scale_settings_render_no_variable_so_the_operator_defaults_apply(helm):
    env = env_of(operator_container(helm.template()))
    assert not [name for name in SCALE_VARIABLES if name in env]


def test_scale_settings_come_from_values_as_the_operator_reads_them(helm, monkeypatch):
    values = {"settings": {"awsBatchDescribes": False, "awsBatchWindowSeconds": 0.25,
                           "eventsQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/rds-events",
                           "eventsSafetyPollSeconds": 600, "awsRequestsPerSecond": 0, "awsRequestBurst": 5}}
    # Sharded, the label shards read queues of their own; the namespace shard reads settings.eventsQueueUrl.
    own_queues = [{**shard, "eventsQueueUrl": f"https://sqs.us-east-1.amazonaws.com/123456789012/{shard['name']}"}
                  if "labelSelector" in shard else shard for shard in VARIANTS["shards"]["shards"]]
    for objects in (helm.template(values), helm.template({**values, "shards": own_queues})):
        for name, deployment in deployments(objects).items():
            env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
            queue = {"aurora-restore-operator-a": "a", "aurora-restore-operator-b": "b"}.get(name, "rds-events")
            assert {name: env[name] for name in SCALE_VARIABLES} == {
                "AURORA_RESTORE_AWS_BATCH_DESCRIBES": "false", "AURORA_RESTORE_AWS_BATCH_WINDOW_SECONDS": "0.25",
                "AURORA_RESTORE_EVENTS_QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/123456789012/{queue}",
                "AURORA_RESTORE_EVENTS_SAFETY_POLL_SECONDS": "600", "AURORA_RESTORE_AWS_REQUESTS_PER_SECOND": "0",
                "AURORA_RESTORE_AWS_REQUEST_BURST": "5",
            }
    for name, value in env.items():  # the last shard's environment, as its pod gets it
        if isinstance(value, str) and name.startswith("AURORA_RESTORE_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AURORA_RESTORE_POD_NAME", "aurora-restore-operator-team-c-5d8f-x2x7q")
    monkeypatch.setenv("AURORA_RESTORE_DB_TLS_VERIFY", "false")
    settings = Settings()
    assert settings.aws_batch_describes is False and settings.aws_batch_window_seconds == 0.25
    assert settings.events_queue_url.endswith("/rds-events") and settings.events_safety_poll_seconds == 600
    assert settings.aws_requests_per_second == 0 and settings.aws_request_burst == 5
    assert settings.leader_lease_name == "aurora-restore-operator-team-c-leader"


def test_a_label_shards_environment_is_what_the_operator_accepts(helm, monkeypatch):
    objects = helm.template(VARIANTS["shards"])
    env = env_of(deployments(objects)["aurora-restore-operator-b"]["spec"]["template"]["spec"]["containers"][0])
    for name, value in env.items():
        if isinstance(value, str) and name.startswith("AURORA_RESTORE_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AURORA_RESTORE_POD_NAME", "aurora-restore-operator-b-5d8f-x2x7q")
    monkeypatch.setenv("AURORA_RESTORE_DB_TLS_VERIFY", "false")
    settings = Settings()
    assert settings.watch_label_selector == "dbrestore.io/shard in (b, c)"
    assert settings.leader_lease_name == "aurora-restore-operator-b-leader" and settings.lease_namespace == "ops"
