"""AuroraRestorePolicy through the real apiserver: default deny before any AWS call, each field refusing what it
does not name and allowing what it does, replace of a cluster the operator did not create, and another team's
Secrets Manager secret. Namespaces here (p-...) are not covered by the session's policy; each test brings its own.

The allowing half of each case is a dry run: it passes both checks (Pending and Preflight) and changes nothing.
"""

import uuid

import pytest
from kubernetes import client
from restores import (
    CallWindow,
    create_policy,
    create_restore,
    delete_policy,
    events_for,
    make_source,
    wait_for_phase,
)

pytestmark = pytest.mark.own_policies

ROLE = "arn:aws:iam::123456789012:role/aurora-restore-team"


@pytest.fixture
def policies(api_client):
    """Create policies for this test (named uniquely); deleted at the end."""
    created = []

    def create(spec: dict) -> str:
        name = f"p-{uuid.uuid4().hex[:8]}"
        create_policy(api_client, name, spec)
        created.append(name)
        return name

    yield create
    for name in created:
        try:
            delete_policy(api_client, name)
        except client.exceptions.ApiException as error:
            if error.status != 404:  # the test deleted it itself
                raise


def allow_all(namespace: str, **changes) -> dict:
    """Everything allowed in `namespace`, with `changes`."""
    return {"namespaces": [namespace], "targets": [{}], "sources": [{}], "roles": ["arn:aws:iam::*:role/*"],
            "secretsManagerSecrets": ["*"], "replace": {"allowed": True, "onlyClustersCreatedByOperator": False},
            "allowFinalSnapshotSkip": True, **changes}


def base_spec(uniq: str, **changes) -> dict:
    return {"source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
            "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1, "instanceClass": "db.r6g.large"}},
            "dryRun": True, **changes}


def finish(api_client, namespace: str, name: str, spec: dict) -> dict:
    create_restore(api_client, namespace, name, spec)
    return wait_for_phase(api_client, namespace, name, {"Planned", "Succeeded", "Failed"})["status"]


def assert_refused(status: dict, phase: str, *fragments: str) -> str:
    assert status["phase"] == "Failed", status
    assert (status["failure"]["reason"], status["failure"]["phase"]) == ("NotAllowedByPolicy", phase), status
    for fragment in fragments:
        assert fragment in status["failure"]["message"], status["failure"]["message"]
    return status["failure"]["message"]


def test_a_namespace_no_policy_covers_is_refused_before_any_aws_call(api_client, operator, namespace, uniq,
                                                                    aws_calls, session_policy):
    status = finish(api_client, namespace, "uncovered", base_spec(uniq, dryRun=False))
    assert_refused(status, "Pending", f"no AuroraRestorePolicy covers namespace {namespace}", session_policy)
    assert aws_calls.calls() == []
    assert "NotAllowedByPolicy" in [event.reason for event in events_for(api_client, namespace, "uncovered")]


# field: (the policy's value refusing, the value allowing, the spec's changes, the refusal's words, its phase).
# Preflight refuses what only AWS tells: the snapshot's cluster and owner.
FIELD_CASES = {
    "targets.clusterIdentifier": ({"targets": [{"clusterIdentifier": "qa-*"}]},
                                  {"targets": [{"clusterIdentifier": "tgt-*"}]}, {},
                                  "spec.target.clusterIdentifier 'tgt-", "Pending"),
    "targets.region": ({"targets": [{"region": "eu-*"}]}, {"targets": [{"region": "us-east-1"}]}, {},
                       "in us-east-1 is not among its targets", "Pending"),
    "sources.snapshotIdentifier": ({"sources": [{"snapshotIdentifier": "nightly-*"}]},
                                   {"sources": [{"snapshotIdentifier": "snap-*"}]}, {},
                                   "spec.source (region us-east-1, snapshot snap-", "Pending"),
    "sources.region": ({"sources": [{"region": "eu-west-1"}]}, {"sources": [{"region": "us-east-1"}]}, {},
                       "spec.source (region us-east-1", "Pending"),
    "sources.clusterIdentifier": ({"sources": [{"clusterIdentifier": "orders-*"}]},
                                  {"sources": [{"clusterIdentifier": "src-*"}]}, {},
                                  ", cluster src-", "Preflight"),
    "sources.accountId": ({"sources": [{"accountId": "999999999999"}]}, {"sources": [{"accountId": "123456789012"}]},
                          {}, "account 123456789012", "Preflight"),
    "roles": ({"roles": ["arn:aws:iam::*:role/other-*"]}, {"roles": ["arn:aws:iam::*:role/aurora-restore-*"]},
              {"target": {"roleArn": ROLE}}, f"spec.target.roleArn '{ROLE}' is not among its roles", "Pending"),
    "instanceClasses": ({"instanceClasses": ["db.t4g.*"]}, {"instanceClasses": ["db.r6g.*"]}, {},
                        "spec.target.instances.instanceClass 'db.r6g.large'", "Pending"),
    "maxInstances": ({"maxInstances": 0}, {"maxInstances": 1}, {},
                     "spec.target.instances.count 1 is above its maxInstances 0", "Pending"),
    "replace.allowed": ({"replace": {"allowed": False}}, {"replace": {"allowed": True}},
                        {"existingTarget": {"policy": "Replace"}}, "(replace.allowed is false)", "Pending"),
    "allowFinalSnapshotSkip": ({"allowFinalSnapshotSkip": False}, {"allowFinalSnapshotSkip": True},
                               {"existingTarget": {"policy": "Replace", "finalSnapshot": False}},
                               "spec.existingTarget.finalSnapshot false is not allowed", "Pending"),
    "secretsManagerSecrets": ({"secretsManagerSecrets": ["team-b/*"]}, {"secretsManagerSecrets": ["team-a/*"]},
                              {"masterPassword": {"secretsManagerSecretId": "team-a/master"}},
                              "spec.masterPassword.secretsManagerSecretId 'team-a/master'", "Pending"),
}


@pytest.mark.parametrize("field", FIELD_CASES)
def test_each_policy_field_refuses_what_it_does_not_allow_and_allows_what_it_does(
    api_client, aws, operator, namespace, uniq, policies, simulator, field
):
    refusing, allowing, spec_changes, fragment, phase = FIELD_CASES[field]
    make_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", [f"snap-{uniq}"])
    window = CallWindow(simulator)
    spec = base_spec(uniq)
    for key, value in spec_changes.items():
        spec[key] = {**spec.get(key, {}), **value}
    strict = policies(allow_all(namespace, **refusing))
    status = finish(api_client, namespace, "refused", spec)
    assert_refused(status, phase, f"not allowed in namespace {namespace}", f"policy {strict}: ", fragment)
    if phase == "Pending":
        assert window.calls() == []
    assert window.calls(service="rds", action="RestoreDBClusterFromSnapshot") == []

    delete_policy(api_client, strict)
    fitting = policies(allow_all(namespace, **allowing))
    status = finish(api_client, namespace, "allowed", spec)
    assert status["phase"] == "Planned", status
    assert status["policy"] == fitting


def test_a_namespace_glob_covers_and_a_selector_covers_by_label(api_client, aws, operator, namespace, uniq,
                                                                policies):
    make_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", [f"snap-{uniq}"])
    other = policies(allow_all("p-not-this-one-*"))
    status = finish(api_client, namespace, "by-glob", base_spec(uniq))
    assert_refused(status, "Pending", f"no AuroraRestorePolicy covers namespace {namespace}", other)

    by_label = policies(allow_all(namespace, namespaces=[], namespaceSelector={
        "matchExpressions": [{"key": "team", "operator": "In", "values": ["orders"]}]}))
    status = finish(api_client, namespace, "unlabelled", base_spec(uniq))
    assert_refused(status, "Pending", f"no AuroraRestorePolicy covers namespace {namespace}", by_label)

    client.CoreV1Api(api_client).patch_namespace(namespace, {"metadata": {"labels": {"team": "orders"}}})
    status = finish(api_client, namespace, "labelled", base_spec(uniq))
    assert status["phase"] == "Planned", status
    assert status["policy"] == by_label


def test_one_policy_must_allow_all_of_a_restore(api_client, aws, operator, namespace, uniq, policies):
    make_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", [f"snap-{uniq}"])
    targets_only = policies(allow_all(namespace, instanceClasses=["db.t4g.*"]))
    classes_only = policies(allow_all(namespace, targets=[{"clusterIdentifier": "qa-*"}]))
    status = finish(api_client, namespace, "split", base_spec(uniq))
    assert_refused(status, "Pending", f"policy {targets_only}: spec.target.instances.instanceClass",
                   f"policy {classes_only}: spec.target.clusterIdentifier")


def test_replacing_a_cluster_the_operator_did_not_create_needs_the_policy_and_the_tag(
    api_client, aws, operator, namespace, uniq, policies, simulator
):
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    make_source(rds, f"tgt-{uniq}", [])  # a user's own cluster with one instance, untagged
    rds.create_db_instance(DBInstanceIdentifier=f"old-{uniq}", DBClusterIdentifier=f"tgt-{uniq}",
                           Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    window = CallWindow(simulator)
    spec = base_spec(uniq, existingTarget={"policy": "Replace"})
    own_only = policies(allow_all(namespace, replace={"allowed": True}))
    status = finish(api_client, namespace, "own-only", spec)
    assert_refused(status, "Preflight", f"policy {own_only}: ", f"of cluster 'tgt-{uniq}', which the operator did "
                   "not create (no tag managed-by=aurora-restore-operator)")

    delete_policy(api_client, own_only)
    any_tagged = policies(allow_all(namespace, replace={"allowed": True, "onlyClustersCreatedByOperator": False}))
    status = finish(api_client, namespace, "untagged", spec)
    assert_refused(status, "Preflight", "needs the tag dbrestore.io/replaceable=true on that cluster")

    arn = rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]["DBClusterArn"]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "dbrestore.io/replaceable", "Value": "true"}])
    status = finish(api_client, namespace, "instance-untagged", spec)
    assert_refused(status, "Preflight", "needs the tag dbrestore.io/replaceable=true on each of its instances too; "
                   f"old-{uniq} lack it")

    instance_arn = rds.describe_db_instances(DBInstanceIdentifier=f"old-{uniq}")["DBInstances"][0]["DBInstanceArn"]
    rds.add_tags_to_resource(ResourceName=instance_arn, Tags=[{"Key": "dbrestore.io/replaceable", "Value": "true"}])
    status = finish(api_client, namespace, "tagged", spec)
    assert status["phase"] == "Planned", status
    assert status["policy"] == any_tagged
    assert [step["action"] for step in status["plan"]["steps"]][-1] == "DeleteDBCluster"
    for action in ("ModifyDBCluster", "DeleteDBCluster", "DeleteDBInstance", "RestoreDBClusterFromSnapshot"):
        assert window.calls(service="rds", action=action) == [], action


def test_another_namespaces_secrets_manager_secret_is_refused(api_client, aws, operator, namespace, uniq,
                                                              policies, simulator):
    make_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", [f"snap-{uniq}"])
    secrets = aws.client("secretsmanager", region_name="us-east-1")
    own, theirs = (secrets.create_secret(Name=f"aurora-restore/{team}/master-{uniq}",
                                         SecretString=f"{team}-{uuid.uuid4().hex}")["ARN"]
                   for team in (namespace, "t-other"))
    aws_calls = CallWindow(simulator)
    policy = policies(allow_all(namespace, secretsManagerSecrets=[
        f"arn:aws:secretsmanager:*:*:secret:aurora-restore/{namespace}/*"]))
    status = finish(api_client, namespace, "theirs", base_spec(
        uniq, dryRun=False, masterPassword={"secretsManagerSecretId": theirs}))
    assert_refused(status, "Pending", f"policy {policy}: spec.masterPassword.secretsManagerSecretId '{theirs}'")
    assert aws_calls.calls(service="secretsmanager") == []
    assert aws_calls.calls(service="rds") == []

    status = finish(api_client, namespace, "own", base_spec(uniq, masterPassword={"secretsManagerSecretId": own}))
    assert status["phase"] == "Planned", status
    assert status["policy"] == policy
