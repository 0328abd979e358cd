"""Operator settings: one object, read from AURORA_RESTORE_* environment variables once at start-up."""

import os

from pydantic import Field
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
    history_limit: int = Field(default=20, ge=1, description="How many phases status.history keeps.")
    default_tags: dict[str, str] = Field(
        default_factory=dict, description='Tags added to every AWS resource created (JSON: {"team": "data"}).'
    )
    db_ca_bundle: str | None = Field(
        default=None,
        description="PEM file of CAs to verify database TLS against (the RDS bundle); unset: encrypted, unverified.",
    )
    operator_id: str = Field(
        default="aurora-restore-operator", description="Names this operator in events and Lease holders."
    )
