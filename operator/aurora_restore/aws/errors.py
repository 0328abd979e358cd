"""Every piece of knowledge about AWS error codes, in one place: which ones pass with time, which ones never will.

`classify` turns any botocore exception into the operator's RetryableError or TerminalError:

- no answer at all (connection refused or closed, timeouts, a credential refresh that failed): retry;
- an answer: by its error code, from the tables below (throttling, 5xx and busy resources retry; quotas,
  refusals and unknown codes are terminal and keep AWS's code, or `QuotaExceeded`, as the reason);
- a request botocore refused to send (ParamValidationError): a bug of the operator, terminal.
- an answer botocore could not parse (ResponseParserError: a truncated or garbled body from an overloaded or
  broken endpoint): retryable, like a 5xx.
"""

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    MetadataRetrievalError,
    NoCredentialsError,
    ParamValidationError,
    TokenRetrievalError,
)

from botocore.parsers import ResponseParserError

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
# 5xx: AWS failed on its side; any status >= 500 counts too.
SERVER_CODES = frozenset(
    {"InternalFailure", "InternalError", "ServiceUnavailable", "InternalServerError", "InternalServiceError",
     "ServerInternalException", "ServiceUnavailableException"}  # the last two: RAM's
)
# A resource is busy (modifying, backing-up, being created): the same call works once it settles.
TRANSITIONAL_STATE_CODES = frozenset(
    {
        "InvalidDBClusterStateFault",
        "InvalidDBInstanceState",
        "InvalidDBInstanceStateFault",
        "InvalidDBClusterSnapshotStateFault",
        "InvalidDBSnapshotState",
    }
)
# The credentials expired between botocore's refresh and AWS's check: the next call refreshes them.
EXPIRED_CREDENTIALS_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
# Quotas do not free themselves while a restore waits: each fails the restore at once (reason QuotaExceeded) with
# what is exhausted and what to do. Keys are RDS's error codes (botocore's model: the shape's "error" code, which
# differs from the shape name for some, e.g. SnapshotQuotaExceededFault answers SnapshotQuotaExceeded).
LIMIT_INCREASE = "ask AWS for a higher limit (Service Quotas, service Amazon RDS)"
# code -> (what is exhausted, what to do)
QUOTA_CODES: dict[str, tuple[str, str]] = {
    "SnapshotQuotaExceeded": ("manual DB cluster snapshots in the region", "delete old manual snapshots, or "
                              + LIMIT_INCREASE),
    "SharedSnapshotQuotaExceeded": ("accounts a manual snapshot can be shared with",
                                    "remove accounts from the snapshot's restore attribute"),
    "DBClusterQuotaExceededFault": ("DB clusters in the region", "delete unused clusters, or " + LIMIT_INCREASE),
    "InstanceQuotaExceeded": ("DB instances in the region", "delete unused instances, lower "
                              "spec.target.instances.count, or " + LIMIT_INCREASE),
    "StorageQuotaExceeded": ("total storage of all DB instances in the region",
                             "delete unused databases, or " + LIMIT_INCREASE),
    "DBClusterRoleQuotaExceeded": ("IAM roles per DB cluster", LIMIT_INCREASE),
    "DBInstanceRoleQuotaExceeded": ("IAM roles per DB instance", LIMIT_INCREASE),
    "DBClusterEndpointQuotaExceededFault": ("custom endpoints per DB cluster", "delete unused endpoints"),
    "DBParameterGroupQuotaExceeded": ("DB parameter groups in the region",
                                      "delete unused groups, or " + LIMIT_INCREASE),
    "DBSubnetGroupQuotaExceeded": ("DB subnet groups in the region", "delete unused groups, or " + LIMIT_INCREASE),
    "DBSubnetQuotaExceededFault": ("subnets per DB subnet group", LIMIT_INCREASE),
    "AuthorizationQuotaExceeded": ("security group authorizations", LIMIT_INCREASE),
    "QuotaExceeded.DBSecurityGroup": ("DB security groups", LIMIT_INCREASE),
    "OptionGroupQuotaExceededFault": ("option groups", LIMIT_INCREASE),
    "EventSubscriptionQuotaExceeded": ("event subscriptions", LIMIT_INCREASE),
    "DBClusterAutomatedBackupQuotaExceededFault": ("retained automated backups of DB clusters",
                                                   "delete old retained backups, or " + LIMIT_INCREASE),
    "DBInstanceAutomatedBackupQuotaExceeded": ("retained automated backups of DB instances",
                                               "delete old retained backups, or " + LIMIT_INCREASE),
    "GlobalClusterQuotaExceededFault": ("global databases", LIMIT_INCREASE),
}
# Refusals retrying cannot change (listed so that no later rule makes them retryable); any code in no table is
# terminal too.
TERMINAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "OptInRequired",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "MissingParameter",
        "ValidationError",
        "ValidationException",
        "InvalidRestoreFault",
        "KMSKeyNotAccessibleFault",
        "DBClusterAlreadyExistsFault",
        "DBClusterSnapshotAlreadyExistsFault",
        "DBInstanceAlreadyExists",
        "InsufficientDBInstanceCapacity",
        "InsufficientDBClusterCapacityFault",
        "InvalidVPCNetworkStateFault",
        "InvalidSubnet",
        # RAM (a cross-account clone's share): refusals waiting cannot change
        "OperationNotPermittedException",
        "InvalidParameterException",
        "MalformedArnException",
        "IdempotentParameterMismatchException",
        "ResourceShareInvitationExpiredException",
        "ResourceShareInvitationArnNotFoundException",
        "ResourceShareInvitationAlreadyRejectedException",
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
KMS_KEY_CODES = frozenset({"KMSKeyNotAccessibleFault", "KMSKeyNotFound", "NotFoundException", "KMSInvalidStateFault"})

# botocore exceptions raised without an answer from AWS that pass with time. ConnectionError covers
# EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError and SSLError; HTTPClientError covers
# ConnectionClosedError, ReadTimeoutError and ResponseStreamingError (neither is a subclass of the other).
UNREACHABLE_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError)
# What a call raises besides AWS's own answer (ClientError): botocore's errors, and an answer it could not parse
# (ResponseParserError is not a BotoCoreError). Every gateway catches these and classifies them.
TRANSPORT_ERRORS = (BotoCoreError, ResponseParserError)
# The identity's credentials could not be fetched or refreshed (an STS or IMDS blip, an IRSA token being rotated,
# a token file not mounted yet): operator-wide, fixed without touching the restore, so retried.
CREDENTIAL_ERRORS = (CredentialRetrievalError, TokenRetrievalError, MetadataRetrievalError, NoCredentialsError)


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "Unknown")


def is_not_found(error: ClientError) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def is_quota(code: str) -> bool:
    """A quota fault: one of QUOTA_CODES, or a code that says so (AWS adds quotas more often than we do)."""
    return code in QUOTA_CODES or "QuotaExceeded" in code


def classify(error: Exception, action: str) -> RetryableError | TerminalError:
    """Turn a botocore exception raised by `action` into the operator's Retryable/Terminal error."""
    if isinstance(error, UNREACHABLE_ERRORS):
        return RetryableError("AwsUnreachable", f"{action}: AWS endpoint unreachable ({type(error).__name__})")
    if isinstance(error, CREDENTIAL_ERRORS):
        return RetryableError(
            "AwsCredentialsUnavailable",
            f"{action}: the operator's AWS credentials could not be obtained ({type(error).__name__}); retrying",
        )
    if isinstance(error, ParamValidationError):
        # The report echoes parameter values (a password, say): keep what precedes each ", value:".
        report = "; ".join(line.split(", value:")[0].strip() for line in str(error).splitlines()[1:] if line.strip())
        return TerminalError("AwsError", f"{action}: the operator built an invalid request (a bug): {report}")
    if isinstance(error, ResponseParserError):
        return RetryableError("AwsServerError", f"{action}: AWS's answer could not be parsed; retrying")
    if not isinstance(error, ClientError):  # botocore's own words may quote configuration values: the type only
        return TerminalError("AwsError", f"{action}: {type(error).__name__}")
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "") or code
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in THROTTLING_CODES:
        return RetryableError("AwsThrottling", f"{action} throttled by AWS ({code}); retrying")
    if code in TERMINAL_CODES:
        return TerminalError(code, f"{action} refused by AWS: {code}: {message}")
    if is_quota(code):
        what, todo = QUOTA_CODES.get(code, ("an AWS quota of the account and region", LIMIT_INCREASE))
        return TerminalError("QuotaExceeded", f"{action} refused by AWS: {code} ({message}): the quota of {what} "
                             f"is reached; quotas do not free themselves: {todo}, then create a new AuroraRestore")
    if code in SERVER_CODES or status >= 500:
        return RetryableError("AwsServerError", f"{action} failed on the AWS side ({code}); retrying")
    if code in TRANSITIONAL_STATE_CODES:
        return RetryableError("AwsResourceBusy", f"{action}: {message}")
    if code in EXPIRED_CREDENTIALS_CODES:
        return RetryableError("AwsCredentialsExpired", f"{action}: credentials expired ({code}); retrying")
    return TerminalError(code, f"{action} refused by AWS: {code}: {message}")
