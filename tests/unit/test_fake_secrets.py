"""The password fakes behave like the real readers: the same cases, run against both, give the same answers.

The real Kubernetes reader runs over an in-memory CoreV1Api (a dict of V1Secret, data base64-encoded as the
apiserver stores it); the real Secrets Manager gateway runs over a boto3 client answered by botocore's Stubber.
"""

import base64
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aurora_restore.aws.secrets import SecretsManagerGateway
from aurora_restore.errors import TerminalError
from aurora_restore.k8s.secrets import Secrets, SecretKeyMissing

from .fake_secrets import FakeSecrets, FakeSecretsManager

NAMESPACE = "team-a"
FIELD = "spec.masterPassword.secretRef"
OWNER = {"metadata": {"name": "nightly", "uid": "7d3f9a2e-4c1b-4e8a-9f0d-2b6c8e1a5f37"}}


class InMemoryCoreV1:
    """The three Secret calls k8s/secrets.py makes, as the apiserver answers them."""

    def __init__(self):
        self.objects: dict[tuple[str, str], client.V1Secret] = {}

    def read_namespaced_secret(self, name, namespace):
        if (namespace, name) not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        return self.objects[(namespace, name)]

    def create_namespaced_secret(self, namespace, body):
        if (namespace, body.metadata.name) in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self._store(namespace, body)

    def replace_namespaced_secret(self, name, namespace, body):
        self.read_namespaced_secret(name, namespace)
        self._store(namespace, body)

    def _store(self, namespace, body):
        data = {key: base64.b64encode(value.encode()).decode() for key, value in (body.string_data or {}).items()}
        self.objects[(namespace, body.metadata.name)] = client.V1Secret(metadata=body.metadata, data=data)


class RealSecrets:
    """k8s/secrets.py Secrets over InMemoryCoreV1, with the same set-up methods as FakeSecrets."""

    def __init__(self):
        # Built without __init__, which only makes a CoreV1Api (half a second of imports) for us to replace.
        self.reader = Secrets.__new__(Secrets)
        self.reader.namespace = NAMESPACE
        self.api = self.reader.api = InMemoryCoreV1()

    def add(self, name, data):
        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        self.api.objects[(NAMESPACE, name)] = client.V1Secret(metadata=client.V1ObjectMeta(name=name), data=encoded)

    def stored(self, name):
        secret = self.api.objects[(NAMESPACE, name)]
        data = {key: base64.b64decode(value).decode() for key, value in secret.data.items()}
        owners = secret.metadata.owner_references or []
        return data, [(o.name, o.uid) for o in owners]


class FakeSecretsAdapter:
    def __init__(self):
        self.reader = FakeSecrets(NAMESPACE)

    def add(self, name, data):
        self.reader.add(name, data)

    def stored(self, name):
        secret = self.reader.secrets[name]
        owner = secret.owner
        return secret.data, [(owner["metadata"]["name"], owner["metadata"]["uid"])] if owner else []


@pytest.fixture(params=["fake", "real"])
def store(request):
    return FakeSecretsAdapter() if request.param == "fake" else RealSecrets()


def outcome_of(read):
    try:
        return "value", read()
    except TerminalError as error:
        return type(error), error.reason, error.message


def test_absent_secret_reads_as_none(store):
    assert store.reader.read_key("aurora-master", "password", FIELD) is None


def test_present_key_reads_as_its_text(store):
    store.add("aurora-master", {"password": "pä55 w:rd"})
    assert store.reader.read_key("aurora-master", "password", FIELD) == "pä55 w:rd"


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            {"passwd": "hunter2"},
            (SecretKeyMissing, "SecretKeyMissing", f"{FIELD}: Secret {NAMESPACE}/aurora-master has no key 'password'"),
        ),
        (
            {"password": ""},
            (
                SecretKeyMissing,
                "SecretKeyEmpty",
                f"{FIELD}: key 'password' of Secret {NAMESPACE}/aurora-master is empty",
            ),
        ),
    ],
    ids=["key-missing", "key-empty"],
)
def test_unusable_key_fails_naming_field_secret_and_key(store, data, expected):
    store.add("aurora-master", data)
    assert outcome_of(lambda: store.reader.read_key("aurora-master", "password", FIELD)) == expected


@pytest.mark.parametrize("owner", [None, OWNER], ids=["retain", "delete"])
def test_write_creates_then_replaces_its_own_secret(store, owner):
    store.reader.write("staging-db", {"password": "one"}, owner)
    store.reader.write("staging-db", {"password": "two", "port": "5432"}, owner)
    data, owners = store.stored("staging-db")
    assert data == {"password": "two", "port": "5432"}
    assert owners == ([("nightly", OWNER["metadata"]["uid"])] if owner else [])


def test_write_refuses_a_secret_someone_else_made(store):
    store.add("staging-db", {"password": "theirs"})
    assert outcome_of(lambda: store.reader.write("staging-db", {"password": "ours"}, None)) == (
        TerminalError,
        "SecretNotOurs",
        f"Secret {NAMESPACE}/staging-db exists and was not written by this operator; left untouched",
    )
    assert store.stored("staging-db")[0] == {"password": "theirs"}


# --- Secrets Manager ----------------------------------------------------------------------------------------------


def test_secrets_manager_fake_answers_like_the_gateway():
    boto = boto3.client(
        "secretsmanager", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    gateway = SecretsManagerGateway(boto, "eu-west-1")
    fake = FakeSecretsManager()
    fake.put("present", '{"password": "hunter2"}')
    with Stubber(boto) as stub:
        stub.add_client_error(
            "get_secret_value",
            service_error_code="ResourceNotFoundException",
            service_message="Secrets Manager can't find the specified secret.",
            http_status_code=400,
            expected_params={"SecretId": "absent"},
        )
        stub.add_response(
            "get_secret_value",
            {
                "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:present-AbCdEf",
                "Name": "present",
                "SecretString": '{"password": "hunter2"}',
                "CreatedDate": datetime(2025, 3, 1, tzinfo=timezone.utc),
            },
            expected_params={"SecretId": "present"},
        )
        real = [gateway.get_secret_string("absent"), gateway.get_secret_string("present")]
        stub.assert_no_pending_responses()
    assert real == [fake.get_secret_string("absent"), fake.get_secret_string("present")] == [
        None,
        '{"password": "hunter2"}',
    ]
    assert fake.reads == ["absent", "present"]
