"""Notifications reach SNS (read back through an SQS subscription on the simulator) and webhooks (a receiver in
this test), with the documented payload; a failing or refused webhook never fails the restore."""

import base64
import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError
from kubernetes import client
from restores import (
    SESSION_POLICY, create_policy, create_restore, delete_policy, events_for, get_restore, make_source,
    wait_for_phase, wait_until,
)

pytestmark = pytest.mark.own_policies

ACCOUNT = "123456789012"
PAYLOAD_VERSION = "aurora-restore.dbrestore.io/v1"


def this_machines_ipv4() -> str | None:
    """A non-loopback IPv4 address of this machine (the operator refuses loopback webhooks)."""
    candidates = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends nothing, it only picks a route
            candidates.append(probe.getsockname()[0])
        except OSError:
            pass
    try:
        candidates.append(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    return next((a for a in candidates if not a.startswith(("127.", "0.", "169.254."))), None)


class Receiver:
    """A webhook receiver: records every POST, answers `status`."""

    def __init__(self, address: str, status: int = 200):
        self.requests: list[dict] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_port}/hooks/{uuid.uuid4().hex}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def operator_env(operator_env):
    """The receivers are plain http; retries a second apart, three attempts, so a failing webhook ends soon."""
    return {**operator_env, "AURORA_RESTORE_NOTIFICATION_ALLOW_HTTP": "true",
            "AURORA_RESTORE_NOTIFICATION_RETRY_BASE_SECONDS": "1", "AURORA_RESTORE_NOTIFICATION_MAX_ATTEMPTS": "3"}


@pytest.fixture
def address():
    found = this_machines_ipv4()
    if found is None:
        pytest.skip("this machine has no non-loopback IPv4 address for the webhook receiver")
    return found


@pytest.fixture
def receivers(address):
    made = []

    def make(status: int = 200, bind: str | None = None) -> Receiver:
        made.append(Receiver(bind or address, status))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def policy(api_client, namespace, address):
    """The session's policy for this namespace, allowing this test's topics and the receiver's address."""
    name = f"notify-{namespace}"
    create_policy(api_client, name, {**SESSION_POLICY, "namespaces": [namespace],
                                     "snsTopics": [f"arn:aws:sns:us-east-1:{ACCOUNT}:notify-*"],
                                     "webhookHosts": [address]})
    yield name
    delete_policy(api_client, name)


@pytest.fixture
def source(aws, uniq):
    make_source(aws.client("rds", region_name="us-east-1"), f"src-{uniq}", [f"snap-{uniq}"])
    return f"snap-{uniq}"


def spec(uniq: str, source: str, notification: dict, dry_run: bool = True) -> dict:
    return {"source": {"region": "us-east-1", "snapshotIdentifier": source},
            "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1, "instanceClass": "db.r6g.large"}},
            "dryRun": dry_run, "notification": notification}


def webhook_secret(api_client, namespace: str, name: str, url: str) -> None:
    client.CoreV1Api(api_client).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=name), data={"url": base64.b64encode(url.encode()).decode()}))


def notifications_settled(api_client, namespace: str, name: str):
    """The restore's status once it is terminal and no notification is Pending."""
    def settled():
        status = get_restore(api_client, namespace, name).get("status") or {}
        entries = status.get("notifications") or []
        done = status.get("phase") in ("Planned", "Succeeded", "Failed") and entries and all(
            entry["state"] != "Pending" for entry in entries)
        return status if done else None

    return wait_until(settled, timeout=120, what=f"{namespace}/{name}'s notifications settled")


def test_sns_subscribers_get_the_planned_payload(api_client, aws, operator, namespace, policy, source, uniq):
    topic, queue = sqs_subscribed(aws, uniq)
    sqs = aws.client("sqs", region_name="us-east-1")
    restore = create_restore(api_client, namespace, "planned", spec(uniq, source, {"snsTopicArn": topic}))
    status = notifications_settled(api_client, namespace, "planned")
    assert status["phase"] == "Planned"
    [entry] = status["notifications"]
    assert (entry["channel"], entry["phase"], entry["state"], entry["attempts"]) == ("sns", "Planned", "Delivered", 1)

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=5).get("Messages", [])
    [envelope] = [json.loads(m["Body"]) for m in messages]
    assert envelope["MessageId"] == entry["messageId"]
    assert envelope["Subject"] == f"AuroraRestore {namespace}/planned Planned"
    assert envelope["MessageAttributes"]["phase"]["Value"] == "Planned"
    payload = json.loads(envelope["Message"])
    uid = restore["metadata"]["uid"]
    assert payload["version"] == PAYLOAD_VERSION and payload["id"] == f"{uid}/Planned"
    assert payload["restore"] == {"name": "planned", "namespace": namespace, "uid": uid}
    assert payload["phase"] == "Planned" and payload["dryRun"] is True
    assert payload["source"]["snapshotIdentifier"] == source and payload["source"]["snapshotArn"].endswith(source)
    assert payload["target"] == {"region": "us-east-1", "clusterIdentifier": f"tgt-{uniq}"}
    assert payload["durationSeconds"] >= 0 and payload["failure"] is None


def test_the_simulator_refuses_the_subjects_sns_refuses(aws, uniq):
    sns = aws.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name=f"notify-subject-{uniq}")["TopicArn"]
    for bad in ("two\nlines", "bell\x07", "x" * 100):
        with pytest.raises(ClientError) as refused:
            sns.publish(TopicArn=topic, Message="{}", Subject=bad)
        assert refused.value.response["Error"]["Code"] == "InvalidParameter"
    assert sns.publish(TopicArn=topic, Message="{}", Subject="x" * 99)["MessageId"]


@pytest.mark.parametrize("webhook_format", ["JSON", "Slack"])
def test_a_webhook_gets_the_payload(api_client, operator, namespace, policy, source, uniq, receivers, webhook_format):
    receiver = receivers()
    webhook_secret(api_client, namespace, "hook", receiver.url)
    restore = create_restore(api_client, namespace, "hooked", spec(uniq, source, {
        "webhookSecretRef": {"name": "hook"}, "webhookFormat": webhook_format}))
    status = notifications_settled(api_client, namespace, "hooked")
    assert [(e["channel"], e["phase"], e["state"]) for e in status["notifications"]] == [
        ("webhook", "Planned", "Delivered")]
    [request] = receiver.requests
    uid = restore["metadata"]["uid"]
    assert request["headers"]["X-Aurora-Restore-Notification-Id"] == f"{uid}/Planned"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    if webhook_format == "JSON":
        assert body["version"] == PAYLOAD_VERSION and body["phase"] == "Planned"
        assert body["restore"]["uid"] == uid
    else:
        assert set(body) == {"text", "blocks"}
        assert f"{namespace}/hooked is Planned" in body["text"] and body["blocks"][0]["type"] == "section"
    assert receiver.url not in json.dumps(status)


def test_a_failing_webhook_is_retried_and_ends_failed_without_failing_the_restore(
        api_client, operator, namespace, policy, source, uniq, receivers):
    receiver = receivers(status=500)
    webhook_secret(api_client, namespace, "hook", receiver.url)
    create_restore(api_client, namespace, "failing", spec(uniq, source, {"webhookSecretRef": {"name": "hook"}}))
    status = notifications_settled(api_client, namespace, "failing")
    assert status["phase"] == "Planned"
    [entry] = status["notifications"]
    assert (entry["state"], entry["attempts"]) == ("Failed", 3) and "HTTP 500" in entry["error"]
    assert len(receiver.requests) == 3
    [event] = [e for e in events_for(api_client, namespace, "failing") if e.reason == "NotificationFailed"]
    assert event.type == "Warning" and f"Secret {namespace}/hook key url" in event.message
    assert receiver.url not in event.message and receiver.url not in json.dumps(status)


def test_a_webhook_on_the_loopback_is_refused(api_client, operator, namespace, policy, source, uniq, receivers,
                                              address):
    receiver = receivers(bind="127.0.0.1")
    # The policy allows the machine's address, not 127.0.0.1: allow it too, so that the URL check is what refuses.
    client.CustomObjectsApi(api_client).patch_cluster_custom_object(
        "dbrestore.io", "v1alpha1", "aurorarestorepolicies", policy, {"spec": {"webhookHosts": [address, "127.*"]}})
    webhook_secret(api_client, namespace, "hook", receiver.url)
    create_restore(api_client, namespace, "loopback", spec(uniq, source, {"webhookSecretRef": {"name": "hook"}}))
    status = notifications_settled(api_client, namespace, "loopback")
    assert status["phase"] == "Planned"
    [entry] = status["notifications"]
    assert (entry["state"], entry["attempts"]) == ("Failed", 1) and "loopback" in entry["error"]
    assert receiver.requests == [] and "127.0.0.1" not in entry["error"]


def test_a_webhook_host_the_policy_does_not_allow_fails_the_restore(api_client, aws, operator, namespace, policy,
                                                                    source, uniq):
    webhook_secret(api_client, namespace, "hook", "https://hooks.example.net/services/secret-token")
    create_restore(api_client, namespace, "refused", spec(uniq, source, {"webhookSecretRef": {"name": "hook"}}))
    status = wait_for_phase(api_client, namespace, "refused", {"Planned", "Failed"})["status"]
    assert (status["phase"], status["failure"]["reason"]) == ("Failed", "NotAllowedByPolicy")
    assert "webhookHosts" in status["failure"]["message"] and "example.net" not in status["failure"]["message"]


def sqs_subscribed(aws, uniq: str) -> tuple[str, str]:
    """A topic allowed by the test's policy, with an SQS queue subscribed to it: (topic ARN, queue URL)."""
    sns, sqs = aws.client("sns", region_name="us-east-1"), aws.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name=f"notify-{uniq}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"notify-{uniq}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue


def test_the_success_is_reported_with_the_endpoint(api_client, aws, operator, namespace, policy, source, uniq,
                                                   receivers):
    receiver = receivers()
    webhook_secret(api_client, namespace, "hook", receiver.url)
    topic, queue = sqs_subscribed(aws, uniq)
    create_restore(api_client, namespace, "full", spec(uniq, source, {"webhookSecretRef": {"name": "hook"},
                                                                      "snsTopicArn": topic}, dry_run=False))
    status = wait_for_phase(api_client, namespace, "full", {"Succeeded", "Failed"}, timeout=240)["status"]
    assert status["phase"] == "Succeeded", status
    assert sorted((e["channel"], e["phase"], e["state"]) for e in status["notifications"]) == [
        ("sns", "Succeeded", "Delivered"), ("webhook", "Succeeded", "Delivered")]
    [request] = receiver.requests
    payload = request["body"]
    cluster = aws.client("rds", region_name="us-east-1").describe_db_clusters(
        DBClusterIdentifier=f"tgt-{uniq}")["DBClusters"][0]
    endpoint = {"writer": cluster["Endpoint"], "reader": cluster["ReaderEndpoint"], "port": cluster["Port"]}
    assert payload["phase"] == "Succeeded" and payload["dryRun"] is False
    assert payload["endpoint"] == endpoint

    messages = aws.client("sqs", region_name="us-east-1").receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=5).get("Messages", [])
    [envelope] = [json.loads(m["Body"]) for m in messages]
    [sns_entry] = [e for e in status["notifications"] if e["channel"] == "sns"]
    assert envelope["MessageId"] == sns_entry["messageId"]
    assert envelope["Subject"] == f"AuroraRestore {namespace}/full Succeeded"
    published = json.loads(envelope["Message"])
    assert published["phase"] == "Succeeded" and published["endpoint"] == endpoint
    assert published["id"] == payload["id"] and published["failure"] is None


def test_a_failure_is_reported_with_its_reason_and_message(api_client, operator, namespace, policy, uniq,
                                                           receivers):
    receiver = receivers()
    webhook_secret(api_client, namespace, "hook", receiver.url)
    create_restore(api_client, namespace, "failed", spec(uniq, f"missing-{uniq}", {
        "webhookSecretRef": {"name": "hook"}}))
    status = notifications_settled(api_client, namespace, "failed")
    assert status["phase"] == "Failed" and status["failure"]["reason"] != "NotAllowedByPolicy", status["failure"]
    [entry] = status["notifications"]
    assert (entry["phase"], entry["state"]) == ("Failed", "Delivered")
    [request] = receiver.requests
    payload = request["body"]
    assert payload["phase"] == "Failed" and payload["endpoint"] is None
    assert payload["failure"] == {"phase": status["failure"]["phase"], "reason": status["failure"]["reason"],
                                  "message": status["failure"]["message"]}
    assert f"missing-{uniq}" in payload["failure"]["message"]
