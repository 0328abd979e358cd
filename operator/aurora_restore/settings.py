"""Operator settings: one object, read from AURORA_RESTORE_* environment variables once at start-up."""

import os

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the operator. Invalid values stop start-up with a message naming the variable."""

    model_config = SettingsConfigDict(env_prefix="AURORA_RESTORE_", extra="ignore")

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
    allowed_roles: dict[str, list[str]] = Field(
        default_factory=dict,
        description='IAM roles restores may assume, per namespace ("*" for every namespace), as globs: JSON '
        '{"team-a": ["arn:aws:iam::111122223333:role/restore-*"]}. Default: none, only the operator\'s identity.',
    )
    history_limit: int = Field(default=20, ge=1, description="How many phases status.history keeps.")
    default_tags: dict[str, str] = Field(
        default_factory=dict, description='Tags added to the restored cluster and its instances (JSON: {"team": "data"}).'
    )
    db_ca_bundle: str | None = Field(
        default=None,
        description="PEM file of CAs to verify database TLS against (the RDS bundle); unset: encrypted, unverified.",
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

    @field_validator("db_ca_bundle")
    @classmethod
    def _ca_bundle_readable(cls, value: str | None) -> str | None:
        if value is not None and not os.access(value, os.R_OK):
            raise ValueError(f"AURORA_RESTORE_DB_CA_BUNDLE {value!r} is not a readable file")
        return value

    def roles_allowed_in(self, namespace: str) -> list[str]:
        """The role patterns a restore in `namespace` may assume."""
        return [*self.allowed_roles.get(namespace, []), *self.allowed_roles.get("*", [])]
