"""boto3 clients for the operator's identity and for the roles it assumes, cached and refreshed.

The base identity is boto3's default chain: in a pod that is IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE →
AssumeRoleWithWebIdentity, refreshed by botocore). A restore may name a role to assume from it
(spec.source.roleArn with an external ID, spec.target.roleArn): each role gets one session whose credentials
botocore refreshes shortly before they expire, never one AssumeRole per call.

Retries: botocore's standard mode absorbs short throttling bursts; whatever is still failing becomes a
RetryableError and the phase machine retries the whole step later with its own backoff.

Audit and metrics: every client counts each invocation (aurora_restore_aws_api_calls_total) and audits the
mutating ones (obs/audit.py), from botocore's after-call / after-call-error events, which fire once per
invocation after its retries (botocore/client.py `_make_api_call`). A call the fence or parameter validation
stops before sending is neither counted nor audited.

Timeouts: every client, the STS clients that assume roles included, has the connect and read timeouts of the
settings (AURORA_RESTORE_AWS_CONNECT_TIMEOUT_SECONDS, AURORA_RESTORE_AWS_READ_TIMEOUT_SECONDS).

The request budget (aws/budget.py): every HTTP attempt of every client, the STS clients that assume roles
included, first takes a token of its account's and region's bucket, from botocore's before-sign event. It fires
once per attempt (a retry makes and signs a new request) just before the request is signed, so a request that
waited for its token is signed when it leaves: SigV4 wants it to reach AWS within five minutes of its signature.

Service models: every session, the roles' too, shares the base session's botocore loader, which caches what it
reads, so each service model is loaded and kept once, not once per role.
"""

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
import botocore.exceptions
from botocore.exceptions import ClientError

from ..errors import NotLeading
from ..obs import audit, metrics
from .arn import account_of
from .budget import GaveUp, RequestBudget, priority_of
from . import transitions
from .identity import AccountOf
from .observer import RdsObserver

log = logging.getLogger(__name__)

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=10,
    read_timeout=60,
    user_agent_extra="aurora-restore-operator",
)
# botocore's standard retry mode waits at most this long between two attempts (botocore/retries/standard.py).
MAX_RETRY_BACKOFF_SECONDS = 20
ASSUMED_ROLE_SESSION_SECONDS = 3600


def user_agent_extra(replica: str | None) -> str:
    """What the operator appends to botocore's User-Agent: its name, and the replica's pod name when known."""
    return f"aurora-restore-operator pod/{replica}" if replica else "aurora-restore-operator"
SESSION_NAME = "aurora-restore-operator"


class AwsClients:
    """Thread-safe cache of clients per (service, region, role); the role sessions live as long as the operator."""

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        pool_size: int = 10,
        connect_timeout: float = CLIENT_CONFIG.connect_timeout,
        read_timeout: float = CLIENT_CONFIG.read_timeout,
        replica: str | None = None,
        leading: Callable[[], bool] | None = None,
        requests_per_second: float = 0.0,
        request_burst: int = 20,
        budget: RequestBudget | None = None,
        batch_window: float | None = None,
    ):
        self._base = session or boto3.session.Session()
        # The request budget (aws/budget.py); a rate of 0 turns it off.
        self._budget = budget or RequestBudget(requests_per_second, request_burst)
        # Batched observation (aws/observer.py): seconds a describe waits for others to join; None: off.
        self._batch_window = batch_window
        self._observers: dict[tuple, RdsObserver] = {}
        # The fence: every call is checked just before it is sent, so a replica that lost the leader Lease
        # mid-turn stops at its next call instead of racing the new leader (NotLeading).
        self._leading = leading or (lambda: True)
        # Every request names the replica that sent it (CloudTrail's userAgent, the simulator's request log).
        timeouts = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                          user_agent_extra=user_agent_extra(replica))
        # The default chain's own STS calls (IRSA's AssumeRoleWithWebIdentity) use the session's default config.
        botocore_session = self._base._session  # boto3 has no public accessor for it
        existing = botocore_session.get_default_client_config()
        botocore_session.set_default_client_config(existing.merge(timeouts) if existing else timeouts)
        self._loader = botocore_session.get_component("data_loader")
        self._config = CLIENT_CONFIG.merge(timeouts).merge(Config(max_pool_connections=pool_size))
        self._sessions: dict[tuple[str, str | None], boto3.session.Session] = {}
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str, role_arn: str | None = None, external_id: str | None = None):
        with self._lock:
            return self.client_unlocked(service, region, role_arn, external_id)

    def client_unlocked(self, service: str, region: str, role_arn: str | None = None, external_id: str | None = None):
        key = (service, region, role_arn, external_id)
        if key not in self._clients:
            session = self._session(role_arn, external_id, region) if role_arn else self._base
            aws_client = session.client(service, region_name=region, config=self._config)
            self._clients[key] = self._fenced(aws_client, self._account_hint(role_arn, external_id), role_arn)
        return self._clients[key]

    def _fenced(self, aws_client, account: Callable[[], str | None] = lambda: None, role_arn: str | None = None):
        aws_client.meta.events.register("before-call", self._check_leading)
        self._budgeted(aws_client, account, role_arn)
        observe(aws_client, account)
        return aws_client

    def _budgeted(self, aws_client, account: Callable[[], str | None], role_arn: str | None) -> None:
        """Make every attempt of this client's calls wait for a token of its account's and region's bucket.

        While the account is unknown the identity's role ARN stands for it, so one identity still shares one
        bucket. The fence is looked at while waiting and once more after the wait: the before-call check may
        be long past by then."""
        if not self._budget.enabled:
            return
        region = aws_client.meta.region_name
        service = aws_client.meta.service_model.signing_name
        identity = role_arn or os.environ.get("AWS_ROLE_ARN") or "base-identity"

        def spend(operation_name, **_):
            bucket = self._budget.bucket(account() or identity, region)
            priority = priority_of(service, operation_name, audit.current_turn())
            try:
                waited = bucket.acquire(priority, give_up=lambda: not self._leading())
            except GaveUp:
                waited = None
            if waited:
                metrics.record_aws_budget_wait(priority.name, waited)
            if waited is None:
                raise NotLeading(f"not sending {operation_name}: this replica no longer holds the leader Lease")
            self._fence(operation_name)

        aws_client.meta.events.register("before-sign", spend)

    def _account_hint(self, role_arn: str | None, external_id: str | None) -> Callable[[], str | None]:
        """The account a client acts in, when known without asking AWS: the role's ARN names it (IRSA's
        AWS_ROLE_ARN for the base identity), else an earlier GetCallerIdentity of that identity."""
        arn = role_arn or os.environ.get("AWS_ROLE_ARN")

        def account() -> str | None:
            if named := account_of(arn):
                return named
            for key, known in list(self._clients.items()):
                if key[0] == "identity" and key[2:] == (role_arn, external_id):
                    return vars(known).get("account_id")  # cached_property: set once asked, never asked here
            return None

        return account

    def observer(self, region: str, role_arn: str | None = None, external_id: str | None = None) -> RdsObserver | None:
        """The batcher of RDS describes shared by every restore acting with this identity in this region (None when
        batching is off)."""
        if self._batch_window is None:
            return None
        key = (region, role_arn, external_id)
        with self._lock:
            if key not in self._observers:
                rds = self.client_unlocked("rds", region, role_arn, external_id)
                self._observers[key] = RdsObserver(rds, self._batch_window)
            return self._observers[key]

    def _check_leading(self, model, **_):
        self._fence(model.name)

    def _fence(self, operation_name: str) -> None:
        if not self._leading():
            raise NotLeading(f"not sending {operation_name}: this replica no longer holds the leader Lease")

    def identity(self, region: str, role_arn: str | None = None, external_id: str | None = None) -> AccountOf:
        """Who the operator is (or the role it assumes): the account is asked once and remembered."""
        key = ("identity", region, role_arn, external_id)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = AccountOf(self.client_unlocked("sts", region, role_arn, external_id))
            return self._clients[key]

    def _session(self, role_arn: str, external_id: str | None, region: str) -> boto3.session.Session:
        """A session whose credentials come from AssumeRole with the base identity, refreshed before expiry."""
        key = (role_arn, external_id)
        if key not in self._sessions:
            sts = self._fenced(self._base.client("sts", region_name=region, config=self._config),
                               self._account_hint(None, None), None)

            def assume() -> dict:
                params = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME,
                          "DurationSeconds": ASSUMED_ROLE_SESSION_SECONDS}
                if external_id:
                    params["ExternalId"] = external_id
                credentials = sts.assume_role(**params)["Credentials"]
                expiry = credentials["Expiration"]
                if isinstance(expiry, datetime) and expiry.tzinfo is None:
                    expiry = expiry.replace(tzinfo=timezone.utc)
                return {
                    "access_key": credentials["AccessKeyId"],
                    "secret_key": credentials["SecretAccessKey"],
                    "token": credentials["SessionToken"],
                    "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else expiry,
                }

            # Deferred: the first AssumeRole happens inside the first real call, where its errors are classified.
            refreshable = DeferredRefreshableCredentials(refresh_using=assume, method="assume-role")
            core = botocore.session.get_session()
            core._credentials = refreshable  # botocore has no public setter for ready-made credentials
            self._sessions[key] = boto3.session.Session(botocore_session=core)
            # After boto3's Session, which adds its resource models' folder to the loader it finds (the base
            # session's loader has it already): every client of this role loads its models through the shared one.
            core.register_component("data_loader", self._loader)
        return self._sessions[key]


# Request context keys under which before-parameter-build leaves the call's resource and model for after-call.
_AUDIT_RESOURCE = "aurora_restore_audit_resource"
_OPERATION_MODEL = "aurora_restore_operation_model"


def observe(aws_client, account: Callable[[], str | None] = lambda: None) -> None:
    """Count every invocation of this client and audit the mutating ones (obs/audit.py).

    before-parameter-build sees the call's parameters (after-call does not): the resource's identifier is taken
    from them there and kept in the request context, which after-call and after-call-error receive."""
    region = aws_client.meta.region_name

    def remember_resource(params, model, context, **_):
        context[_OPERATION_MODEL] = model  # after-call-error is not given the model
        service, operation = model.service_model.signing_name, model.name
        if audit.is_audited(service, operation):
            context[_AUDIT_RESOURCE] = audit.resource_of(service, operation, params, region, account())

    def answered(http_response, parsed, model, context, **_):
        outcome = "Success"
        if http_response is not None and http_response.status_code >= 300:
            outcome = context.get("error_code_override") or (parsed or {}).get("Error", {}).get("Code") or "Unknown"
        _finished(model, context, outcome)
        if outcome == "Success" and model.service_model.signing_name == "rds":
            transitions.note_answer(parsed)  # e.g. the restored cluster, "creating": what the turn now waits on

    def not_answered(exception, context, **kwargs):
        if isinstance(exception, NotLeading) and (context.get("retries") or {}).get("attempt", 1) <= 1:
            return  # the fence stopped it before anything was sent
        _finished(kwargs.get("model") or context.get(_OPERATION_MODEL), context, outcome_of(exception))

    def _finished(model, context, outcome: str) -> None:
        if model is None:
            return
        service, operation = model.service_model.signing_name, model.name
        try:
            metrics.record_aws_call(service, operation, outcome)
            if audit.is_audited(service, operation):
                retries = context.get("retries") or {}
                audit.record(service, operation, region, context.get(_AUDIT_RESOURCE), outcome,
                             retries.get("invocation-id"), retries.get("attempt"))
        except Exception as error:  # bookkeeping must never fail the call it records (its answer stands)
            log.warning("could not record %s:%s: %s", service, operation, type(error).__name__)

    events = aws_client.meta.events
    events.register("before-parameter-build", remember_resource)
    events.register("after-call", answered)
    events.register("after-call-error", not_answered)


def outcome_of(exception: Exception) -> str:
    """The metric/audit outcome of a call that got no AWS answer to parse: Transport for connection errors and
    timeouts; the AWS error code when the call's credentials could not be refreshed (AssumeRole refused); else
    the exception's class (credentials that cannot be found, a request that cannot be signed)."""
    if isinstance(exception, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        return "Transport"
    if isinstance(exception, ClientError):
        return exception.response.get("Error", {}).get("Code") or "Unknown"
    return type(exception).__name__
