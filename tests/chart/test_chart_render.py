"""The chart without a cluster: helm lint, helm template for default and non-default values, the values schema."""

import json

import pytest
from helm_cli import CHART, REPO, HelmError, find, operator_container

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
    "settings": {
        "settings": {"pollIntervalSeconds": 10, "defaultTags": {"cost-center": "data", "env": "stage"}},
        "dbCaBundle": {"configMapName": "rds-ca-bundle"},
        "logFormat": "json",
        "image": {"repository": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/aurora-restore", "tag": "1.2.3",
                  "digest": "sha256:" + "a" * 64},
    },
}

WATCH_RULES = [
    {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestores"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestores/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update"]},
]
CRD_RULE = {
    "apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]
}
POLICIES_RULE = {"apiGroups": ["dbrestore.io"], "resources": ["aurorarestorepolicies"], "verbs": ["list"]}
NAMESPACE_LABELS_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}
NAMESPACES_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}
LEASE_RULES = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
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
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
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
    # The image's ENTRYPOINT runs kopf (test_dockerfile.py); the chart only chooses the scope.
    assert "command" not in container
    assert container["args"] == ["--all-namespaces", "--log-format=full"]

    env = env_of(container)
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["AURORA_RESTORE_LEASE_NAMESPACE"] == "ops"
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
    assert container["args"][-1] == "--log-format=json"
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
        "--namespace=team-a", "--namespace=team-b", "--namespace=ops", "--log-format=full"
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


BAD_VALUES = {
    "two replicas": ({"replicaCount": 2}, "at '/replicaCount': value must be one of 0, 1"),
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
