"""spec.output.snapshot end to end: the sanitized-snapshot pipeline of examples/refresh-sanitized-snapshot.yaml
(restore, mask on a real PostgreSQL server, verify, snapshot, copy with a key the consumers may use, share,
delete the cluster), then a second account restoring from the shared snapshot's ARN and reading only masked
rows; the tenant policy refusing an account; a failed restore keeping its finished output and removing an unfinished
one.

The producer is the operator's own account; the consumer account restores through the existing cross-account
flow (source.accountId/roleArn of the producer, target.roleArn of the consumer): the snapshot is already shared,
so SharingSnapshot adds nothing and leaves the share as it found it; the consumer copies it with its own key."""

import json
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import boto3
import pytest
import yaml
from databases import connect, create_secret, execute
from kubernetes import client
from restores import (
    CallWindow,
    create_policy,
    create_restore,
    delete_policy,
    make_source,
    tags,
    wait_for_phase,
    wait_until,
)
from secret_scan import SESSION

from aurora_restore.api.schedule import render_template
from aurora_restore.db.masking import FAKE_NAMES, reference_hash
from aurora_restore.scheduling.cron import placeholders

pytestmark = pytest.mark.own_policies

PRODUCER = "123456789012"  # the operator's own identity
CONSUMER = "444444444444"
PRODUCER_ROLE = f"arn:aws:iam::{PRODUCER}:role/aurora-restore-producer"
CONSUMER_ROLE = f"arn:aws:iam::{CONSUMER}:role/aurora-restore-consumer"
EXAMPLE = Path(__file__).parents[2] / "examples" / "refresh-sanitized-snapshot.yaml"
SOURCE_PASSWORD = "shop-Source-pass-4"
CONSUMER_PASSWORD = "dev-Consumer-pass-5"
CUSTOMERS = [(1, "Ada Lovelace", "ada.lovelace@pii-shop.example", "+44 20 7946 0201"),
             (2, "Grace Hopper", "grace.hopper@pii-shop.example", "+1 202 555 0202"),
             (3, "Kiri Tane", "kiri.tane@pii-shop.example", "+64 4 555 0203")]
ORDERS = [(10, "ada.lovelace@pii-shop.example", 30), (11, "ada.lovelace@pii-shop.example", 12),
          (12, "kiri.tane@pii-shop.example", 7)]
AUDIT = [(1, "ada.lovelace@pii-shop.example logged in")]
# What no row may hold any more (none can occur in a hex hash or a fake name by chance).
PII = ("pii-shop.example", "@", "Lovelace", "Hopper", "Tane", "+44", "+1 ", "+64")


@pytest.fixture
def sharing_policy(api_client, namespace):
    """The test namespace may restore anything with the aurora-restore-* roles, and share with CONSUMER only."""
    name = f"share-{namespace}"
    create_policy(api_client, name, {
        "namespaces": [namespace], "targets": [{}], "sources": [{}], "roles": ["arn:aws:iam::*:role/aurora-restore-*"],
        "secretsManagerSecrets": ["*"], "snapshotShareAccounts": [CONSUMER],
    })
    yield name
    delete_policy(api_client, name)


def session_in(account: str, simulator_url: str) -> boto3.session.Session:
    """A session acting in `account`, through the simulator's STS."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=simulator_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/tester", RoleSessionName="tests")[
        "Credentials"]
    return boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                 aws_secret_access_key=credentials["SecretAccessKey"],
                                 aws_session_token=credentials["SessionToken"], region_name="us-east-1")


def customer_key(session, alias: str, *accounts: str) -> str:
    """A customer-managed key of the session's account in us-east-1, whose key policy lets `accounts` use it too."""
    kms = session.client("kms", region_name="us-east-1")
    owner = session.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    principals = sorted({f"arn:aws:iam::{account}:root" for account in (owner, *accounts)})
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "kms:*", "Resource": "*"}]}
    key_id = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def make_shop_source(rds, cluster: str, snapshot: str, ca_file: str) -> None:
    """shop-prod with personal data in database `shop`, and a nightly snapshot of it."""
    SESSION.remember_password(SOURCE_PASSWORD, "test_output_snapshot's source master password")
    rds.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", MasterUsername="admin_user",
                          MasterUserPassword=SOURCE_PASSWORD, DatabaseName="shop")
    described = wait_until(lambda: next((c for c in rds.describe_db_clusters(DBClusterIdentifier=cluster)[
        "DBClusters"] if c["Status"] == "available"), None), 120, what=f"cluster {cluster} available")
    with connect("aurora-postgresql", described["Endpoint"], described["Port"], "admin_user", SOURCE_PASSWORD,
                 "shop", ca_file) as conn:
        execute(conn, "CREATE TABLE customers (id integer PRIMARY KEY, name varchar(80), email varchar(120), "
                      "phone varchar(40))")
        execute(conn, "CREATE TABLE orders (id integer PRIMARY KEY, customer_email varchar(120), amount integer)")
        execute(conn, "CREATE TABLE audit_log (id integer PRIMARY KEY, detail text)")
        for row in CUSTOMERS:
            execute(conn, "INSERT INTO customers VALUES (%s, %s, %s, %s)", row)
        for row in ORDERS:
            execute(conn, "INSERT INTO orders VALUES (%s, %s, %s)", row)
        for row in AUDIT:
            execute(conn, "INSERT INTO audit_log VALUES (%s, %s)", row)
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot, DBClusterIdentifier=cluster)
    wait_until(lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)[
        "DBClusterSnapshots"][0]["Status"] == "available", 120, what=f"snapshot {snapshot} available")


def restore_accounts(rds, identifier: str) -> list[str]:
    result = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=identifier)
    for attribute in result["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]:
        if attribute["AttributeName"] == "restore":
            return attribute.get("AttributeValues", [])
    return []


def test_the_example_pipeline_makes_a_masked_snapshot_a_second_account_restores(
    api_client, aws, operator, namespace, uniq, sharing_policy, db_ca_file, simulator_url
):
    """examples/refresh-sanitized-snapshot.yaml as it is (namespace aside): its schedule's template, rendered as
    the schedule renders a run, is created as an AuroraRestore."""
    secret, schedule = yaml.safe_load_all(EXAMPLE.read_text())
    template = schedule["spec"]["template"]
    assert template["output"]["snapshot"]["shareWith"] == [CONSUMER]
    rds = aws.client("rds", region_name="us-east-1")
    source = template["source"]["latest"]["clusterIdentifier"]
    make_shop_source(rds, source, f"{source}-nightly-{uniq}", db_ca_file)
    customer_key(aws, template["target"]["kmsKeyId"])
    shared_key = customer_key(aws, template["output"]["snapshot"]["kmsKeyId"], CONSUMER)
    for key in ("master", "masking-key"):
        SESSION.remember_password(secret["stringData"][key], f"the sanitized-snapshot example's {key}")
    create_secret(api_client, namespace, secret["metadata"]["name"], secret["stringData"])
    spec = render_template(template, placeholders(datetime.now(timezone.utc), ZoneInfo("UTC")))
    create_restore(api_client, namespace, "sanitize", spec)

    status = wait_for_phase(api_client, namespace, "sanitize", {"Succeeded", "Failed"}, timeout=400)["status"]
    assert status["phase"] == "Succeeded", status
    phases = [entry["phase"] for entry in status["history"]]
    assert phases.index("Masking") < phases.index("Verifying") < phases.index("SnapshottingOutput") < \
        phases.index("Publishing") < phases.index("CleaningUp")
    started = datetime.fromisoformat(status["startedAt"].replace("Z", "+00:00"))
    identifier = f"shop-sanitized-{started.strftime('%Y%m%d')}"
    output = status["outputSnapshot"]
    assert output["identifier"] == identifier and output["sharedWith"] == [CONSUMER]
    assert output["intermediateDeleted"] is True and output["clusterDeletedAt"]
    assert identifier in status["message"] and output["arn"] in status["message"]
    assert status.get("connectionSecrets", []) == []
    # deleteClusterAfter: the cluster is gone, the snapshot is kept, encrypted with the consumers' key, shared.
    with pytest.raises(rds.exceptions.DBClusterNotFoundFault):
        rds.describe_db_clusters(DBClusterIdentifier=spec["target"]["clusterIdentifier"])
    snapshot = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=identifier)["DBClusterSnapshots"][0]
    assert snapshot["Status"] == "available" and snapshot["StorageEncrypted"]
    assert shared_key in snapshot["KmsKeyId"] or snapshot["KmsKeyId"].endswith(
        template["output"]["snapshot"]["kmsKeyId"])
    assert restore_accounts(rds, identifier) == [CONSUMER]
    uid = get_uid(api_client, namespace, "sanitize")
    snapshot_tags = tags(rds, output["arn"])
    assert snapshot_tags["dbrestore.io/restore-uid"] == uid and snapshot_tags["dbrestore.io/snapshot-role"] == "output"
    with pytest.raises(rds.exceptions.DBClusterSnapshotNotFoundFault):
        rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=output["intermediateIdentifier"])

    # The consumer account restores from the shared snapshot's ARN, copying it with its own key.
    consumer = session_in(CONSUMER, simulator_url)
    customer_key(consumer, f"alias/dev-shop-{uniq}")
    SESSION.remember_password(CONSUMER_PASSWORD, "test_output_snapshot's consumer master password")
    create_secret(api_client, namespace, "consumer-master", {"password": CONSUMER_PASSWORD})
    create_restore(api_client, namespace, "dev-shop", {
        "source": {"region": "us-east-1", "snapshotIdentifier": output["arn"], "accountId": PRODUCER,
                   "roleArn": PRODUCER_ROLE},
        "target": {"clusterIdentifier": f"dev-shop-{uniq}", "roleArn": CONSUMER_ROLE, "instances": {"count": 1}},
        "copy": {"kmsKeyId": f"alias/dev-shop-{uniq}"},
        "masterPassword": {"secretRef": {"name": "consumer-master", "key": "password"}},
    })
    status = wait_for_phase(api_client, namespace, "dev-shop", {"Succeeded", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Succeeded", status
    consumer_rds = consumer.client("rds", region_name="us-east-1")
    cluster = consumer_rds.describe_db_clusters(DBClusterIdentifier=f"dev-shop-{uniq}")["DBClusters"][0]
    assert f":{CONSUMER}:" in cluster["DBClusterArn"]
    key = secret["stringData"]["masking-key"].encode()
    with connect("aurora-postgresql", cluster["Endpoint"], cluster["Port"], "admin_user", CONSUMER_PASSWORD,
                 "shop", db_ca_file) as conn:
        customers = execute(conn, "SELECT id, name, email, phone FROM customers ORDER BY id")
        assert [(i, email) for i, _, email, _ in customers] == [(c[0], reference_hash(key, c[2])) for c in CUSTOMERS]
        assert all(name in FAKE_NAMES for _, name, _, _ in customers)
        assert [phone for *_, phone in customers] == [None] * len(CUSTOMERS)
        assert execute(conn, "SELECT COUNT(*) FROM audit_log") == [(0,)]
        joined = execute(conn, "SELECT o.id FROM orders o JOIN customers c ON c.email = o.customer_email ORDER BY 1")
        assert joined == [(10,), (11,), (12,)]  # hashed keys still join
        everything = execute(conn, "SELECT c.*::text FROM customers c UNION ALL SELECT o.*::text FROM orders o")
    assert not [row for (row,) in everything if any(marker in row for marker in PII)], everything
    # The share existed before the consumer's restore: it is kept for the next consumer.
    assert restore_accounts(rds, identifier) == [CONSUMER]


def get_uid(api_client, namespace: str, name: str) -> str:
    return client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        "dbrestore.io", "v1alpha1", namespace, "aurorarestores", name)["metadata"]["uid"]


def test_an_account_the_policy_does_not_allow_is_refused_before_any_aws_call(
    api_client, operator, namespace, uniq, sharing_policy, simulator
):
    window = CallWindow(simulator)
    create_restore(api_client, namespace, "refused", {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}"},
        "output": {"snapshot": {"identifier": f"out-{uniq}", "shareWith": [CONSUMER, "999999999999"]}},
    })
    status = wait_for_phase(api_client, namespace, "refused", {"Succeeded", "Failed"})["status"]
    assert status["failure"]["reason"] == "NotAllowedByPolicy" and status["failure"]["phase"] == "Pending"
    assert (f"policy {sharing_policy}: spec.output.snapshot.shareWith account '999999999999' is not among its "
            f"snapshotShareAccounts") in status["failure"]["message"]
    assert window.calls(service="rds") == []


def start_restore_with_output(api_client, rds, namespace: str, uniq: str, name: str) -> None:
    """A plain restore of a fresh source with a connection Secret and an output snapshot shared with CONSUMER."""
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    create_secret(api_client, namespace, "master", {"password": CONSUMER_PASSWORD})
    SESSION.remember_password(CONSUMER_PASSWORD, "test_output_snapshot's consumer master password")
    create_restore(api_client, namespace, name, {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "masterPassword": {"secretRef": {"name": "master", "key": "password"}},
        "connectionSecret": {"name": f"conn-{uniq}"},
        "output": {"snapshot": {"identifier": f"out-{uniq}-{{date}}", "shareWith": [CONSUMER]}},
    })


def output_snapshots(rds, identifier: str) -> list[dict]:
    return [s for s in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
            if s["DBClusterSnapshotIdentifier"] == identifier and s["Status"] != "deleting"]


def test_a_restore_failing_after_its_output_was_finished_keeps_it(
    api_client, aws, operator, namespace, uniq, sharing_policy
):
    """Publishing fails (a Secret nobody's operator wrote took the connection Secret's name after Preflight), after
    SnapshottingOutput took, copied and shared the snapshot of the masked, verified cluster: that snapshot is the
    product, consumers may already restore from it, so the failed restore keeps it (and touches no foreign
    Secret)."""
    rds = aws.client("rds", region_name="us-east-1")
    start_restore_with_output(api_client, rds, namespace, uniq, "fails")
    wait_for_phase(api_client, namespace, "fails", {"RestoringCluster", "CreatingInstances", "Failed"}, timeout=60)
    create_secret(api_client, namespace, f"conn-{uniq}", {"endpoint": "someone-elses"})
    status = wait_for_phase(api_client, namespace, "fails", {"Succeeded", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Failed", status
    assert status["failure"]["reason"] == "SecretNotOurs" and status["failure"]["phase"] == "Publishing"
    output = status["outputSnapshot"]
    assert output["sharedWith"] == [CONSUMER] and output["availableAt"] and not output.get("deleted")
    [kept] = output_snapshots(rds, output["identifier"])
    attributes = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=output["identifier"])
    [restore_attribute] = [a for a in attributes["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]
                           if a["AttributeName"] == "restore"]
    assert restore_attribute["AttributeValues"] == [CONSUMER]
    assert rds.describe_db_clusters(DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"]  # kept for inspection
    secret = client.CoreV1Api(api_client).read_namespaced_secret(f"conn-{uniq}", namespace)
    assert secret.string_data is None and "endpoint" in secret.data  # left as it was


def test_a_refused_share_removes_the_unfinished_output(
    api_client, aws, operator, namespace, uniq, sharing_policy, simulator
):
    """AWS refuses the share (once, as it refuses an aws/rds-encrypted snapshot): the output never became the
    product, so the failed restore deletes the snapshot it took."""
    rds = aws.client("rds", region_name="us-east-1")
    simulator.add_fault("rds", "ModifyDBClusterSnapshotAttribute", "InvalidParameterValue", status=400, count=1,
                        message="the snapshot cannot be shared")
    start_restore_with_output(api_client, rds, namespace, uniq, "refused")
    status = wait_for_phase(api_client, namespace, "refused", {"Succeeded", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Failed", status
    assert status["failure"]["phase"] == "SnapshottingOutput"
    assert status["failure"]["reason"] == "OutputSnapshotNotShareable" and CONSUMER in status["failure"]["message"]
    output = status["outputSnapshot"]
    assert output["deleted"] is True and not output.get("availableAt")
    assert output_snapshots(rds, output["identifier"]) == []
