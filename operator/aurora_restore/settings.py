"""Operator settings: one object, read from AURORA_RESTORE_* environment variables once at start-up."""

import os
import socket
import ssl

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where the image carries the RDS CA bundle (the Dockerfile's rds-ca stage, checked against its sha256).
IMAGE_CA_BUNDLE = "/etc/aurora-restore/rds-ca-bundle.pem"


class Settings(BaseSettings):
    """Every knob of the operator. Invalid values stop start-up with a message naming the variable."""

    # hide_input_in_errors: a refused value (a signing key too short) must not be echoed by the error start-up logs.
    model_config = SettingsConfigDict(env_prefix="AURORA_RESTORE_", extra="ignore", hide_input_in_errors=True)

    poll_interval_seconds: float = Field(
        default=30.0, gt=0, description="How long to wait before looking at AWS again while a resource settles."
    )
    retry_backoff_max_seconds: float = Field(
        default=300.0, gt=0, description="Longest wait between retries after AWS throttling or 5xx errors."
    )
    lease_namespace: str = Field(
        default_factory=lambda: os.environ.get("POD_NAMESPACE", "default"),
        description="Namespace of the per-target Leases (one place, so restores in any namespace serialise).",
    )
    history_limit: int = Field(default=20, ge=1, description="How many phases status.history keeps.")
    schedule_poll_seconds: float = Field(
        default=30.0, gt=0, description="Longest an AuroraRestoreSchedule's daemon sleeps between turns (it wakes "
        "at each due time; a changed spec, or a run that finished, is seen within this)."
    )
    default_tags: dict[str, str] = Field(
        default_factory=dict, description='Tags added to the restored cluster and its instances (JSON: {"team": "data"}).'
    )
    db_ca_bundle: str = Field(
        default=IMAGE_CA_BUNDLE,
        description="PEM file of the CAs that restored databases' TLS certificates must chain to: by default the "
        "RDS CA bundle the image carries.",
    )
    db_tls_verify: bool = Field(
        default=True,
        description="Verify each database's certificate against db_ca_bundle and its host name. false: encrypted "
        "but unverified (a server impersonating the database goes unnoticed); logged as a warning at start.",
    )
    worker_threads: int = Field(
        default=32,
        ge=1,
        le=512,
        description="Threads running steps (each AWS or Kubernetes round trip holds one); also the size of the "
        "AWS and Kubernetes connection pools.",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus metrics on this port (unset: no metrics)."
    )
    operator_id: str = Field(
        default="aurora-restore-operator", description="Names this operator as the source of the Events it posts."
    )
    # Timeouts: no call may hang forever and hold a worker thread (a hung call is retried like any outage).
    aws_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Connect timeout of every AWS call (botocore connect_timeout), STS included."
    )
    aws_read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Read timeout of every AWS call (botocore read_timeout), STS included."
    )
    kubernetes_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of every Kubernetes API request, the operator's and kopf's own "
        "(watches excepted: they end by their server timeout)."
    )
    database_connect_timeout_seconds: int = Field(
        default=10, ge=1, description="Timeout of connecting to a restored database (PostgreSQL and MySQL)."
    )
    database_statement_timeout_seconds: int = Field(
        default=60, ge=1, description="Longest a statement on a restored database may run (PostgreSQL "
        "statement_timeout; MySQL read and write timeouts)."
    )

    # Scale (docs/scale.md): batched describes, event wake-ups, the AWS request budget, shards.
    aws_batch_describes: bool = Field(
        default=True, description="Coalesce concurrent describes of clusters, instances and snapshots in one "
        "account, role and region into one paginated describe (false: every step describes for itself).",
    )
    aws_batch_window_seconds: float = Field(
        default=0.5, ge=0, le=5, description="How long a describe waits for others to join its batch before the "
        "batch is sent.",
    )
    events_queue_url: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="SQS queue that an EventBridge rule fills with RDS "
        "events: the operator long-polls it and wakes the restores an event concerns (unset: polling only).",
    )
    events_safety_poll_seconds: float = Field(
        default=300.0, gt=0, description="With an events queue, how often a restore waiting on an AWS transition "
        "still looks by itself (events are hints: AWS delivers them best-effort); never shorter than the poll interval.",
    )
    aws_requests_per_second: float = Field(
        default=8.0, ge=0, description="Sustained AWS requests per second per account and region, every call "
        "(retries included) passing a token bucket; 0 turns the budget off. RDS allows about 12 for the whole "
        "account.",
    )
    aws_request_burst: int = Field(
        default=20, ge=1, description="Requests the AWS budget lets through at once after a quiet spell.",
    )
    watch_label_selector: str | None = Field(
        default=None, min_length=1, description="Only AuroraRestores (and schedules) whose labels match this "
        "Kubernetes label selector are this operator's: a shard (server-side filtering of kopf's watches).",
    )

    # Notifications (docs/notifications.md).
    notification_sns_topic_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_-]{1,256}(\.fifo)?$",
        description="SNS topic a restore whose spec.notification names no snsTopicArn publishes to (unset: none).",
    )
    notification_allow_http: bool = Field(
        default=False, description="Allow plain http webhook URLs (default: https only).",
    )
    notification_max_attempts: int = Field(
        default=5, ge=1, le=20, description="Delivery attempts of one notification before it ends Failed.",
    )
    notification_retry_base_seconds: float = Field(
        default=10.0, gt=0, description="Wait after a notification's first failed attempt, doubled after each.",
    )
    notification_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Connect and read timeout of one webhook request.",
    )
    notification_signing_key: str | None = Field(
        default=None, min_length=16, repr=False,
        description="Sign webhook bodies: X-Aurora-Restore-Signature: sha256=<HMAC-SHA256 of the body> (unset: "
        "unsigned).",
    )

    # High availability (docs/reliability.md): of N replicas the holder of one Lease acts, the others stand by.
    pod_name: str = Field(
        default_factory=lambda: os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        description="This replica's name (the chart passes the pod's; else host name and pid, so two processes on "
        "one host never share a leader identity): its leader Lease identity, and part of its AWS and Kubernetes "
        "user agents, so logs on both sides tell which replica acted.",
    )
    leader_election: bool = Field(
        default=True, description="Elect a leader on a Lease before acting (false: act at once, one replica only)."
    )
    leader_lease_name: str = Field(
        default="aurora-restore-operator-leader", min_length=1, max_length=253,
        description="Name of the leader Lease, in the lease namespace.",
    )
    leader_lease_duration_seconds: float = Field(
        default=15.0, gt=0, description="How long a standby waits, after the leader's last renewal it saw, "
        "before taking over.",
    )
    leader_renew_deadline_seconds: float = Field(
        default=10.0, gt=0, description="The leader stops taking steps when it could not renew for this long.",
    )
    leader_retry_period_seconds: float = Field(
        default=2.0, gt=0, description="How often the leader renews and a standby tries to take over.",
    )
    shutdown_timeout_seconds: float = Field(
        default=360.0, gt=0, description="On SIGTERM, how long to wait for the steps in flight to finish and "
        "write their outcome before exiting anyway: by default longer than the longest AWS call with its retries "
        "(longest_aws_call_seconds); the chart's terminationGracePeriodSeconds exceeds it.",
    )

    def longest_aws_call_seconds(self) -> float:
        """One AWS call with all its botocore retries: every attempt times out (connect + read) and the standard
        retry mode waits at most 20 s between attempts."""
        from .aws.clients import CLIENT_CONFIG, MAX_RETRY_BACKOFF_SECONDS

        attempts = CLIENT_CONFIG.retries["total_max_attempts"]
        return (attempts * (self.aws_connect_timeout_seconds + self.aws_read_timeout_seconds)
                + (attempts - 1) * MAX_RETRY_BACKOFF_SECONDS)

    @model_validator(mode="after")
    def _leader_timings(self) -> "Settings":
        from .k8s.leader_lease import LeaseTimings

        try:
            LeaseTimings(self.leader_lease_duration_seconds, self.leader_renew_deadline_seconds,
                         self.leader_retry_period_seconds)
        except ValueError as error:
            raise ValueError(f"AURORA_RESTORE_LEADER_*: {error}") from None
        return self

    @model_validator(mode="after")
    def _ca_bundle_loads(self) -> "Settings":
        """A bundle that cannot be used stops start-up, rather than every database connection failing later.
        Loaded as connections load it; an empty path would make Python trust the system's CAs instead."""
        if not self.db_tls_verify:
            return self
        problem = "it is empty" if not self.db_ca_bundle else None
        if problem is None:
            try:
                ssl.create_default_context(cafile=self.db_ca_bundle)
            except OSError as error:  # ssl.SSLError too: a file without PEM certificates
                problem = error.strerror or str(error)
        if problem:
            raise ValueError(
                f"AURORA_RESTORE_DB_CA_BUNDLE {self.db_ca_bundle!r} is not a readable PEM file of CA certificates "
                f"({problem}); it verifies database TLS (AURORA_RESTORE_DB_TLS_VERIFY=false turns that off)"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_retired_settings(cls, values):
        """A retired variable still set would silently stop applying: refuse to start instead."""
        if "AURORA_RESTORE_ALLOWED_ROLES" in os.environ:
            raise ValueError("AURORA_RESTORE_ALLOWED_ROLES is retired: the roles a namespace may assume are now "
                             "`roles` of an AuroraRestorePolicy (docs/security.md, moving from allowedRoles)")
        return values
