"""aws/errors.py against real botocore exceptions: what retries, what fails, and with which reason."""

import gzip
import json
from pathlib import Path

import botocore
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    MetadataRetrievalError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    RefreshWithMFAUnsupportedError,
    ResponseStreamingError,
    SSLError,
    TokenRetrievalError,
)

from aurora_restore.aws.errors import QUOTA_CODES, THROTTLING_CODES, TRANSITIONAL_STATE_CODES, classify
from aurora_restore.errors import RetryableError, TerminalError

URL = "https://rds.eu-west-1.amazonaws.com/"
ACTION = "copy_db_cluster_snapshot in eu-west-1"


def client_error(code: str, status: int = 400, message: str = "refused") -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "CopyDBClusterSnapshot")


def rds_error_codes() -> dict[str, str]:
    """Shape name -> error code of every RDS exception in the installed botocore's newest model."""
    models = sorted((Path(botocore.__file__).parent / "data" / "rds").glob("*/service-2.json*"))
    raw = models[-1].read_bytes()
    shapes = json.loads(gzip.decompress(raw) if models[-1].suffix == ".gz" else raw)["shapes"]
    return {name: shape.get("error", {}).get("code", name) for name, shape in shapes.items() if shape.get("exception")}


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url=URL),
        ConnectTimeoutError(endpoint_url=URL),
        ProxyConnectionError(proxy_url="http://proxy:3128"),
        SSLError(endpoint_url=URL, error="EOF occurred in violation of protocol"),
        ReadTimeoutError(endpoint_url=URL),
        ConnectionClosedError(endpoint_url=URL),
        ResponseStreamingError(error="connection reset"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_no_answer_from_aws_is_retried_as_unreachable(error):
    classified = classify(error, ACTION)
    assert isinstance(classified, RetryableError)
    assert classified.reason == "AwsUnreachable"
    assert type(error).__name__ in classified.message


@pytest.mark.parametrize(
    "error",
    [
        CredentialRetrievalError(provider="assume-role-with-web-identity", error_msg="STS unavailable"),
        TokenRetrievalError(provider="sso", error_msg="token refresh failed"),
        MetadataRetrievalError(error_msg="IMDS timed out"),
        NoCredentialsError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_credentials_that_could_not_be_fetched_or_refreshed_are_retried(error):
    classified = classify(error, ACTION)
    assert isinstance(classified, RetryableError)
    assert classified.reason == "AwsCredentialsUnavailable"


@pytest.mark.parametrize(
    "error",
    [
        ParamValidationError(report="Invalid type for parameter CopyTags"),
        RefreshWithMFAUnsupportedError(),
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        NoRegionError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_no_retry_can_fix_are_terminal(error):
    classified = classify(error, ACTION)
    assert isinstance(classified, TerminalError)
    assert classified.reason == "AwsError"
    assert ACTION in classified.message


def test_a_parameter_validation_error_is_reported_as_a_bug_without_the_values():
    report = "Invalid type for parameter MasterUserPassword, value: 12345678, type: <class 'int'>"
    classified = classify(ParamValidationError(report=report), ACTION)
    assert "bug" in classified.message and "Invalid type for parameter MasterUserPassword" in classified.message
    assert "12345678" not in classified.message


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_throttling_is_retried(code):
    classified = classify(client_error(code), ACTION)
    assert (type(classified), classified.reason) == (RetryableError, "AwsThrottling")


@pytest.mark.parametrize(("code", "status"), [("InternalFailure", 500), ("ServiceUnavailable", 503), ("Odd", 502)])
def test_server_errors_are_retried(code, status):
    classified = classify(client_error(code, status), ACTION)
    assert (type(classified), classified.reason) == (RetryableError, "AwsServerError")


@pytest.mark.parametrize("code", sorted(TRANSITIONAL_STATE_CODES))
def test_a_busy_resource_is_retried(code):
    classified = classify(client_error(code), ACTION)
    assert (type(classified), classified.reason) == (RetryableError, "AwsResourceBusy")


def test_expired_credentials_are_retried():
    classified = classify(client_error("ExpiredToken", 403), ACTION)
    assert (type(classified), classified.reason) == (RetryableError, "AwsCredentialsExpired")


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [
        ("SnapshotQuotaExceeded", 400, "delete old manual snapshots"),
        ("DBClusterQuotaExceededFault", 403, "DB clusters in the region"),
        ("InstanceQuotaExceeded", 400, "spec.target.instances.count"),
        ("StorageQuotaExceeded", 400, "total storage"),
        ("DBClusterRoleQuotaExceeded", 400, "IAM roles per DB cluster"),
        ("SharedSnapshotQuotaExceeded", 400, "restore attribute"),
        ("SomeNewQuotaExceededFault", 400, "higher limit"),
    ],
)
def test_a_quota_fails_at_once_saying_which_quota_and_what_to_do(code, status, says):
    classified = classify(client_error(code, status, "Cannot create more"), ACTION)
    assert isinstance(classified, TerminalError)
    assert classified.reason == "QuotaExceeded"
    assert code in classified.message and says in classified.message and "Cannot create more" in classified.message


def test_every_rds_quota_fault_of_botocores_model_is_a_quota_and_the_table_has_no_unknown_code():
    codes = rds_error_codes()
    quota_codes = {code for name, code in codes.items() if "QuotaExceeded" in name}
    assert {"SnapshotQuotaExceeded", "DBClusterQuotaExceededFault", "InstanceQuotaExceeded",
            "StorageQuotaExceeded", "DBClusterRoleQuotaExceeded"} <= quota_codes
    for code in quota_codes:
        assert classify(client_error(code), ACTION).reason == "QuotaExceeded", code
    assert set(QUOTA_CODES) <= set(codes.values()), set(QUOTA_CODES) - set(codes.values())


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidParameterValue", "KMSKeyNotAccessibleFault", "Unheard"])
def test_refusals_and_unknown_codes_are_terminal_with_the_aws_code(code):
    classified = classify(client_error(code, 400, "no"), ACTION)
    assert (type(classified), classified.reason) == (TerminalError, code)
    assert classified.message == f"{ACTION} refused by AWS: {code}: no"


def test_an_answer_that_could_not_be_parsed_is_retried_like_a_server_error():
    from botocore.parsers import ResponseParserError

    classified = classify(ResponseParserError("Unable to parse response (not well-formed), invalid XML"), ACTION)
    assert isinstance(classified, RetryableError)
    assert classified.reason == "AwsServerError" and "not well-formed" not in classified.message
