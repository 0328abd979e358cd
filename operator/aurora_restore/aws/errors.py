"""Every piece of knowledge about AWS error codes, in one place: which ones pass with time, which ones never will."""

from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, ReadTimeoutError

from ..errors import RetryableError, TerminalError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "EC2ThrottledException",
    }
)
SERVER_CODES = frozenset({"InternalFailure", "InternalError", "ServiceUnavailable", "InternalServerError"})
# A resource is busy (modifying, backing-up, being created): the same call works once it settles.
TRANSITIONAL_STATE_CODES = frozenset(
    {
        "InvalidDBClusterStateFault",
        "InvalidDBInstanceState",
        "InvalidDBInstanceStateFault",
        "InvalidDBClusterSnapshotStateFault",
        "InvalidDBSnapshotState",
        "SnapshotQuotaExceeded",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "DBClusterNotFoundFault",
        "DBClusterSnapshotNotFoundFault",
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBSnapshotNotFound",
    }
)


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "Unknown")


def is_not_found(error: ClientError) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def classify(error: Exception, action: str) -> RetryableError | TerminalError:
    """Turn a botocore exception raised by `action` into the operator's Retryable/Terminal error."""
    if isinstance(error, (BotoConnectionError, ReadTimeoutError)):
        return RetryableError("AwsUnreachable", f"{action}: AWS endpoint unreachable ({type(error).__name__})")
    if not isinstance(error, ClientError):
        return TerminalError("AwsError", f"{action}: {type(error).__name__}")
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "") or code
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in THROTTLING_CODES:
        return RetryableError("AwsThrottling", f"{action} throttled by AWS ({code}); retrying")
    if code in SERVER_CODES or status >= 500:
        return RetryableError("AwsServerError", f"{action} failed on the AWS side ({code}); retrying")
    if code in TRANSITIONAL_STATE_CODES:
        return RetryableError("AwsResourceBusy", f"{action}: {message}")
    return TerminalError(code, f"{action} refused by AWS: {code}: {message}")

KMS_KEY_CODES = frozenset({"KMSKeyNotAccessibleFault", "KMSKeyNotFound", "NotFoundException", "KMSInvalidStateFault"})
