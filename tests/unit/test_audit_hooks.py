"""The botocore hooks of aws/clients.py, against a local HTTP endpoint that answers as RDS does: one audit line and
one count per invocation whatever its retries, with the invocation id botocore sent; Describe calls counted but
not audited; a connection error counted as Transport; no parameter value in an audit line."""

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from aurora_restore.aws.clients import AwsClients, observe
from aurora_restore.obs import audit, metrics

ACCOUNT = "123456789012"
THROTTLED = (b'<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>'
             b'</Error><RequestId>1</RequestId></ErrorResponse>')
REFUSED = (b'<ErrorResponse><Error><Type>Sender</Type><Code>DBInstanceAlreadyExists</Code><Message>exists</Message>'
           b'</Error><RequestId>2</RequestId></ErrorResponse>')


class FakeRds:
    """Answers the next requests from a script of (status, body); records every request's SDK headers."""

    def __init__(self):
        self.script: list[tuple[int, bytes]] = []
        self.requests: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                action = parse_qs(body)["Action"][0]
                fake.requests.append({"action": action, "invocation": self.headers.get("amz-sdk-invocation-id"),
                                      "sdk": self.headers.get("amz-sdk-request"), "body": body})
                status, payload = fake.script.pop(0) if fake.script else (200, success(action))
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def success(action: str) -> bytes:
    inner = {
        "CreateDBInstance": "<DBInstance><DBInstanceIdentifier>orders-1</DBInstanceIdentifier></DBInstance>",
        "DescribeDBClusters": "<DBClusters/>",
    }.get(action, "")
    return (f"<{action}Response><{action}Result>{inner}</{action}Result>"
            f"<ResponseMetadata><RequestId>3</RequestId></ResponseMetadata></{action}Response>").encode()


@pytest.fixture
def fake_rds():
    fake = FakeRds()
    yield fake
    fake.server.shutdown()


def rds_client(url: str, attempts: int = 4):
    session = boto3.session.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key="test-secret-key")
    client = session.client("rds", region_name="eu-west-1", endpoint_url=url, config=Config(
        retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=1, read_timeout=5))
    observe(client, lambda: ACCOUNT)
    return client


def calls_counted(operation: str, outcome: str) -> float:
    return metrics.AWS_CALLS.labels(service="rds", operation=operation, outcome=outcome)._value.get()


def audit_lines(caplog) -> list[dict]:
    return [record.audit for record in caplog.records if record.name == "aurora_restore.audit"]


def test_a_throttled_then_answered_create_is_one_audit_line_with_the_invocation_id_botocore_sent(
        fake_rds, caplog):
    caplog.set_level(logging.INFO, logger="aurora_restore.audit")
    fake_rds.script = [(400, THROTTLED), (400, THROTTLED)]
    before = calls_counted("CreateDBInstance", "Success")
    meta = {"namespace": "team-a", "name": "orders", "uid": "0b9c-uid"}
    with audit.turn(meta, "CreatingInstances") as turn:
        rds_client(fake_rds.url).create_db_instance(
            DBInstanceIdentifier="orders-1", DBInstanceClass="db.r6g.large", Engine="aurora-postgresql",
            DBClusterIdentifier="orders", Tags=[{"Key": "owner", "Value": "tag-value-not-logged"}])
    assert [request["action"] for request in fake_rds.requests] == ["CreateDBInstance"] * 3
    invocation_ids = {request["invocation"] for request in fake_rds.requests}
    assert len(invocation_ids) == 1 and None not in invocation_ids  # the retries share one id
    assert "attempt=3" in fake_rds.requests[-1]["sdk"]
    [line] = audit_lines(caplog)
    assert line == {
        "action": "rds:CreateDBInstance", "resource": f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:orders-1",
        "result": "Success", "uid": "0b9c-uid", "region": "eu-west-1", "invocationId": invocation_ids.pop(),
        "attempts": 3,
    }
    assert [(entry.action, entry.resource, entry.result) for entry in turn.entries] == [
        ("rds:CreateDBInstance", f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:orders-1", "Success")]
    assert calls_counted("CreateDBInstance", "Success") == before + 1
    assert "tag-value-not-logged" not in caplog.text and "db.r6g.large" not in caplog.text


def test_a_refused_call_is_audited_once_with_the_aws_error_code(fake_rds, caplog):
    caplog.set_level(logging.INFO, logger="aurora_restore.audit")
    fake_rds.script = [(400, REFUSED)]
    before = calls_counted("CreateDBInstance", "DBInstanceAlreadyExists")
    with pytest.raises(ClientError):
        rds_client(fake_rds.url).create_db_instance(
            DBInstanceIdentifier="orders-1", DBInstanceClass="db.r6g.large", Engine="aurora-postgresql")
    [line] = audit_lines(caplog)
    assert line["result"] == "DBInstanceAlreadyExists" and line["attempts"] == 1
    assert line["invocationId"] == fake_rds.requests[0]["invocation"]
    assert line["uid"] is None  # outside a turn: no restore to name
    assert calls_counted("CreateDBInstance", "DBInstanceAlreadyExists") == before + 1


def test_a_throttled_call_that_stays_throttled_is_one_line_with_the_code(fake_rds, caplog):
    caplog.set_level(logging.INFO, logger="aurora_restore.audit")
    fake_rds.script = [(400, THROTTLED)] * 2
    with pytest.raises(ClientError):
        rds_client(fake_rds.url, attempts=2).delete_db_instance(DBInstanceIdentifier="orders-1",
                                                                SkipFinalSnapshot=True)
    [line] = audit_lines(caplog)
    assert (line["action"], line["result"], line["attempts"]) == ("rds:DeleteDBInstance", "Throttling", 2)


def test_a_describe_is_counted_but_not_audited(fake_rds, caplog):
    caplog.set_level(logging.INFO, logger="aurora_restore.audit")
    before = calls_counted("DescribeDBClusters", "Success")
    rds_client(fake_rds.url).describe_db_clusters(DBClusterIdentifier="orders")
    assert audit_lines(caplog) == []
    assert calls_counted("DescribeDBClusters", "Success") == before + 1


def test_no_answer_at_all_is_counted_as_transport_and_audited_once(caplog):
    caplog.set_level(logging.INFO, logger="aurora_restore.audit")
    before = calls_counted("DeleteDBCluster", "Transport")
    with pytest.raises(EndpointConnectionError):  # nothing listens on port 9 of the loopback
        rds_client("http://127.0.0.1:9", attempts=1).delete_db_cluster(DBClusterIdentifier="orders",
                                                                       SkipFinalSnapshot=True)
    [line] = audit_lines(caplog)
    assert (line["result"], line["resource"]) == ("Transport", f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:orders")
    assert calls_counted("DeleteDBCluster", "Transport") == before + 1


def test_the_operators_clients_carry_the_hooks_and_name_the_account_of_their_role(fake_rds, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="aurora_restore.audit")
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_rds.url)
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::210987654321:role/aurora-restore-operator")
    session = boto3.session.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key="test-secret-key")
    rds = AwsClients(session=session).client("rds", "us-west-2")
    rds.modify_db_cluster(DBClusterIdentifier="orders", NewDBClusterIdentifier="orders-previous",
                          ApplyImmediately=True)
    [line] = audit_lines(caplog)
    assert line["action"] == "rds:ModifyDBCluster"
    assert line["resource"] == "arn:aws:rds:us-west-2:210987654321:cluster:orders"  # the name acted on


def test_an_identifier_that_is_already_an_arn_is_kept_and_an_unknown_account_leaves_the_identifier():
    arn = "arn:aws:rds:us-east-1:111122223333:cluster-snapshot:nightly"
    assert audit.resource_of("rds", "ModifyDBClusterSnapshotAttribute",
                             {"DBClusterSnapshotIdentifier": arn}, "eu-west-1", ACCOUNT) == arn
    assert audit.resource_of("rds", "CopyDBClusterSnapshot",
                             {"TargetDBClusterSnapshotIdentifier": "aurora-restore-x"}, "eu-west-1",
                             None) == "aurora-restore-x"
    assert audit.resource_of("rds", "RestoreDBClusterFromSnapshot", {"DBClusterIdentifier": "orders"},
                             "cn-north-1", ACCOUNT) == f"arn:aws-cn:rds:cn-north-1:{ACCOUNT}:cluster:orders"


def test_a_recording_that_fails_never_fails_the_call(fake_rds, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("bookkeeping bug")

    monkeypatch.setattr(audit, "record", broken)
    answer = rds_client(fake_rds.url).create_db_instance(
        DBInstanceIdentifier="orders-1", DBInstanceClass="db.r6g.large", Engine="aurora-postgresql")
    assert answer["DBInstance"]["DBInstanceIdentifier"] == "orders-1"
    assert "could not record rds:CreateDBInstance: ValueError" in caplog.text
