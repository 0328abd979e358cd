"""Pydantic models of the AuroraRestore spec and status: the single source of the CRD schema.

Field descriptions become the CRD's descriptions (what `kubectl explain` shows), so they are written for users.
"""

import re
import unicodedata
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .duration import DURATION_PATTERN, parse_duration
from .phase import Phase

# The tags the operator puts on every cluster and instance it creates (steps/context.py sets them; a unit test
# keeps the two lists equal), counted against AWS's 50 tags per resource.
OPERATOR_TAG_KEYS = ("managed-by", "dbrestore.io/restore-uid", "dbrestore.io/restore")
# Set by an AWS account owner on a cluster it did not let the operator create, to let a policy allow replacing it
# (steps/policy.py); never by the operator (its IAM policy forbids the key).
REPLACEABLE_TAG = "dbrestore.io/replaceable"

# RDS identifiers: 1-63 letters, digits or hyphens, starting with a letter, no "--", not ending with "-".
# Written without look-arounds: both pydantic and the apiserver (Go RE2) must accept it.
RDS_IDENTIFIER_PATTERN = r"^[a-zA-Z](-?[a-zA-Z0-9])*$"
# RDS stores identifiers in lower case and returns them so; comparing with AWS's answers needs the same.
RdsIdentifier = Annotated[str, Field(pattern=RDS_IDENTIFIER_PATTERN, max_length=63), AfterValidator(str.lower)]
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$"
# A cluster snapshot by name or ARN, as DescribeDBClusterSnapshots takes it: a name follows the identifier rules (up
# to 255 characters there), after "rds:" for an automated snapshot or "awsbackup:" for one AWS Backup took.
SNAPSHOT_IDENTIFIER_PATTERN = (
    r"^(arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:cluster-snapshot:)?((rds|awsbackup):)?[a-zA-Z](-?[a-zA-Z0-9])*$"
)
SNAPSHOT_IDENTIFIER_MAX_LENGTH = 400
# An IAM role ARN as STS takes it (AssumeRole RoleArn, 20 to 2048 characters): an optional path of printable ASCII
# characters, then a role name of 1 to 64 letters, digits and +=,.@_-.
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/([!-~]{0,510}/)?[a-zA-Z0-9+=,.@_-]{1,64}$"
ROLE_ARN_MAX_LENGTH = 2048
# Names the operator looks up in AWS before anything is created (Preflight), in the characters AWS takes, so that
# no other string is ever sent. DBSubnetGroupName: "no more than 255 letters, numbers, periods, underscores,
# spaces, or hyphens"; parameter groups: letters, digits and hyphens, first a letter (the default groups AWS makes
# have periods too: default.aurora-postgresql15); security groups: sg- and hexadecimal digits; KMS keys: a key ID,
# key ARN, alias name or alias ARN (1 to 2048 characters, none of them a space or a control character).
SubnetGroupName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9 ._-]{1,255}$")]
ParameterGroupName = Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9.-]{0,254}$")]
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{1,17}$")]
KmsKeyId = Annotated[str, Field(pattern=r"^[!-~]+$", max_length=2048)]  # RE2 repeats at most 1000 times
EngineVersion = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$")]
# Zones (us-east-1a), Local Zones (us-west-2-lax-1a) and Wavelength Zones (us-east-1-wl1-bos-wlz-1).
AvailabilityZone = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]


def _tag_characters(text: str) -> bool:
    """RDS's Tag.Key and Tag.Value pattern `^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$`: letters, separators, numbers."""
    return all(unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@" for c in text)


class ApiModel(BaseModel):
    """camelCase in YAML, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# --- spec -------------------------------------------------------------------------------------------------------


class LatestSnapshot(ApiModel):
    """Pick the newest matching snapshot of a cluster at the time the restore starts."""

    cluster_identifier: RdsIdentifier = Field(description="The source DB cluster whose snapshots are considered.")
    snapshot_type: Literal["automated", "manual", "shared", "any"] = Field(
        default="any", description="Only snapshots of this type: automated, manual, shared or any."
    )
    name_pattern: str | None = Field(
        default=None, description='Shell-style glob the snapshot identifier must match, e.g. "nightly-*".'
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags every candidate snapshot must carry.")
    max_age: str | None = Field(
        default=None,
        min_length=2,
        pattern=DURATION_PATTERN,
        description="Ignore snapshots older than this (e.g. 26h); the restore fails if none is young enough.",
    )
    include_operator_snapshots: bool = Field(
        default=False,
        description="Also consider snapshots this operator made (copies, final snapshots); by default they are "
        "skipped so a restore never picks another restore's temporary copy.",
    )
    pick: Literal["newest", "random"] = Field(
        default="newest",
        description="newest (default) restores the newest match; random picks any match uniformly (within maxAge, "
        "like AWS Backup's RANDOM_WITHIN_WINDOW), so drills test older snapshots too.",
    )


class PointInTime(ApiModel):
    """Restore a cluster as it was at a moment in time (same region as the source cluster)."""

    cluster_identifier: RdsIdentifier = Field(description="The source DB cluster.")
    restore_time: datetime | None = Field(default=None, description="The moment to restore to (RFC 3339, UTC).")
    use_latest_restorable_time: bool | None = Field(
        default=None, description="Restore to the latest restorable time instead of restoreTime."
    )

    @model_validator(mode="after")
    def _exactly_one_time(self) -> "PointInTime":
        if (self.restore_time is not None) == bool(self.use_latest_restorable_time):
            raise ValueError("needs exactly one of restoreTime or useLatestRestorableTime: true")
        return self


class CloneSource(ApiModel):
    """An Aurora fast clone (copy-on-write) of a running cluster, as it is now: minutes instead of hours, and
    storage is shared with the source until pages diverge. In another account (source.accountId and roleArn) the
    cluster is shared with the target account through AWS RAM for the clone, and the share removed afterwards."""

    cluster_identifier: RdsIdentifier = Field(
        description="The source DB cluster to clone (in source.region; in source.accountId when set)."
    )


class Source(ApiModel):
    """Where the data comes from: exactly one of snapshotIdentifier, latest, pointInTime or clone."""

    region: str = Field(pattern=REGION_PATTERN, description="AWS region of the source snapshot or cluster.")
    snapshot_identifier: str | None = Field(
        default=None,
        pattern=SNAPSHOT_IDENTIFIER_PATTERN,
        max_length=SNAPSHOT_IDENTIFIER_MAX_LENGTH,
        description="A DB cluster snapshot identifier (rds:... for an automated one) or ARN to restore.",
    )
    latest: LatestSnapshot | None = Field(default=None, description="Restore the newest snapshot matching filters.")
    point_in_time: PointInTime | None = Field(default=None, description="Restore a cluster to a point in time.")
    clone: CloneSource | None = Field(
        default=None, description="Clone a running cluster (copy-on-write, latest restorable time) instead."
    )
    account_id: str | None = Field(
        default=None,
        pattern=r"^[0-9]{12}$",
        description="AWS account owning the snapshot when it is not the target's: it is shared, then copied.",
    )
    role_arn: str | None = Field(
        default=None,
        pattern=ROLE_ARN_PATTERN,
        max_length=ROLE_ARN_MAX_LENGTH,
        description="IAM role to assume for calls in the source account (must be allowed for this namespace).",
    )
    external_id: str | None = Field(
        default=None,
        min_length=2,
        max_length=1224,
        pattern=r"^[a-zA-Z0-9_+=,.@:/-]*$",
        description="External ID required by roleArn's trust policy (2 to 1224 letters, digits and _+=,.@:/-, as "
        "STS takes it).",
    )

    @model_validator(mode="after")
    def _another_account_needs_a_role(self) -> "Source":
        if self.account_id and not self.role_arn:
            raise ValueError("spec.source.accountId needs spec.source.roleArn: a role in that account to share from")
        return self

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> "Source":
        kinds = [k for k in ("snapshot_identifier", "latest", "point_in_time", "clone") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("spec.source needs exactly one of snapshotIdentifier, latest, pointInTime or clone")
        return self


class ServerlessV2Scaling(ApiModel):
    """Aurora Serverless v2 capacity range, in ACUs."""

    min_capacity: float = Field(ge=0, le=256, description="Minimum ACUs.")
    max_capacity: float = Field(ge=1, le=256, description="Maximum ACUs.")


# AWS's window formats (UTC): daily "hh24:mi-hh24:mi" (backups), weekly "ddd:hh24:mi-ddd:hh24:mi" (maintenance).
_HHMM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
BACKUP_WINDOW_PATTERN = rf"^{_HHMM}-{_HHMM}$"
MAINTENANCE_WINDOW_PATTERN = rf"^(?i:mon|tue|wed|thu|fri|sat|sun):{_HHMM}-(?i:mon|tue|wed|thu|fri|sat|sun):{_HHMM}$"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES, WEEK_MINUTES = 24 * 60, 7 * 24 * 60


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def backup_window_span(window: str) -> tuple[int, int]:
    """(start minute of the day, length in minutes) of "hh24:mi-hh24:mi"; it may run past midnight."""
    start, end = (_minutes(part) for part in window.split("-"))
    return start, (end - start) % DAY_MINUTES


def maintenance_window_span(window: str) -> tuple[int, int]:
    """(start minute of the week from Monday 00:00, length in minutes) of "ddd:hh24:mi-ddd:hh24:mi"."""
    start, end = (DAYS.index(part[:3]) * DAY_MINUTES + _minutes(part[4:]) for part in window.lower().split("-"))
    return start, (end - start) % WEEK_MINUTES


def _at_least_30_minutes(length: int, field: str, window: str) -> None:
    if length < 30:
        raise ValueError(f"{field} {window!r} is shorter than the 30 minutes AWS requires")


def _backup_window(value: str) -> str:
    if not re.fullmatch(BACKUP_WINDOW_PATTERN, value):
        raise ValueError(f"preferredBackupWindow {value!r} is not hh24:mi-hh24:mi (UTC), e.g. 03:00-03:30")
    _at_least_30_minutes(backup_window_span(value)[1], "preferredBackupWindow", value)
    return value


def _maintenance_window(value: str) -> str:
    if not re.fullmatch(MAINTENANCE_WINDOW_PATTERN, value):
        raise ValueError(
            f"preferredMaintenanceWindow {value!r} is not ddd:hh24:mi-ddd:hh24:mi (UTC, days mon to sun), "
            "e.g. sun:05:00-sun:05:30"
        )
    _at_least_30_minutes(maintenance_window_span(value)[1], "preferredMaintenanceWindow", value)
    return value.lower()  # AWS reports it in lower case; comparing with its answers needs the same


# The pattern goes into the CRD only (json_schema_extra): the validators check it with a readable message.
BackupWindow = Annotated[
    str, Field(json_schema_extra={"pattern": BACKUP_WINDOW_PATTERN}), AfterValidator(_backup_window)
]
MaintenanceWindow = Annotated[
    str, Field(json_schema_extra={"pattern": MAINTENANCE_WINDOW_PATTERN}), AfterValidator(_maintenance_window)
]


def windows_overlap(backup_window: str, maintenance_window: str) -> bool:
    """Whether a daily backup window meets a weekly maintenance window on any day (AWS refuses that)."""
    backup_start, backup_length = backup_window_span(backup_window)
    start, length = maintenance_window_span(maintenance_window)
    for day in range(7):
        daily = day * DAY_MINUTES + backup_start
        if (start - daily) % WEEK_MINUTES < backup_length or (daily - start) % WEEK_MINUTES < length:
            return True
    return False


class PerformanceInsights(ApiModel):
    """Performance Insights of each instance."""

    enabled: bool = Field(default=True, description="Turn Performance Insights on (false: off).")
    kms_key_id: KmsKeyId | None = Field(
        default=None, description="KMS key encrypting its data (default: the account's RDS key)."
    )
    retention_period: int | None = Field(
        default=None, description="Days its data is kept: 7 (AWS's default), 731, or a multiple of 31 up to 713."
    )

    @field_validator("retention_period")
    @classmethod
    def _valid_retention(cls, value: int | None) -> int | None:
        if value is not None and not (value in (7, 731) or (value % 31 == 0 and 31 <= value <= 713)):
            raise ValueError(
                f"performanceInsights.retentionPeriod {value}: AWS takes 7, 731 or a multiple of 31 from 31 to 713"
            )
        return value

    @model_validator(mode="after")
    def _settings_need_enabled(self) -> "PerformanceInsights":
        if not self.enabled and (self.kms_key_id or self.retention_period):
            raise ValueError("performanceInsights.kmsKeyId and retentionPeriod need enabled: true")
        return self


class EnhancedMonitoring(ApiModel):
    """Enhanced Monitoring (OS metrics in CloudWatch Logs) of each instance."""

    interval: Literal[0, 1, 5, 10, 15, 30, 60] = Field(
        description="Seconds between metrics: 0 (off), 1, 5, 10, 15, 30 or 60."
    )
    role_arn: str | None = Field(
        default=None,
        pattern=ROLE_ARN_PATTERN,
        max_length=ROLE_ARN_MAX_LENGTH,
        description="IAM role RDS uses to publish the metrics; required when interval is above 0.",
    )

    @model_validator(mode="after")
    def _role_when_on(self) -> "EnhancedMonitoring":
        if self.interval > 0 and not self.role_arn:
            raise ValueError("enhancedMonitoring.roleArn is required when interval is above 0")
        if self.interval == 0 and self.role_arn:
            raise ValueError("enhancedMonitoring.roleArn needs an interval above 0 (AWS refuses a role with 0)")
        return self


class Instances(ApiModel):
    """The DB instances to create in the restored cluster (a cluster without instances cannot serve queries).

    Every setting applies to each instance; fields left out take the AWS defaults.
    """

    count: int = Field(default=1, ge=0, le=16, description="How many instances; the first one is the writer.")
    instance_class: str = Field(
        default="db.r6g.large", pattern=r"^db\.[a-z0-9-]+(\.[a-z0-9-]+)*$", max_length=64,
        description='Instance class, e.g. db.r6g.large or "db.serverless".',
    )
    db_parameter_group_name: ParameterGroupName | None = Field(
        default=None, description="DB parameter group for the instances."
    )
    availability_zone: AvailabilityZone | None = Field(
        default=None, description="Availability Zone of every instance, e.g. eu-west-1a (default: AWS spreads them)."
    )
    promotion_tier: int | None = Field(
        default=None,
        ge=0,
        le=15,
        description="Failover priority of every instance, 0 (first) to 15 (default: 0 for the first, 1 for the others).",
    )
    preferred_maintenance_window: MaintenanceWindow | None = Field(
        default=None, description='Weekly maintenance window of the instances in UTC, e.g. "sun:05:00-sun:05:30".'
    )
    performance_insights: PerformanceInsights | None = Field(default=None, description="Performance Insights.")
    enhanced_monitoring: EnhancedMonitoring | None = Field(default=None, description="Enhanced Monitoring.")
    auto_minor_version_upgrade: bool | None = Field(
        default=None, description="Apply minor engine upgrades in the maintenance window (AWS's default: true)."
    )
    ca_certificate_identifier: str | None = Field(
        default=None, pattern=r"^[a-zA-Z0-9-]{1,64}$",
        description="CA of the instances' server certificates, e.g. rds-ca-rsa2048-g1.",
    )
    publicly_accessible: bool | None = Field(
        default=None, description="Give the instances public DNS names (AWS's default depends on the subnet group)."
    )


class Target(ApiModel):
    """The cluster to create. Fields left out take the AWS defaults for a restore."""

    region: str | None = Field(
        default=None, pattern=REGION_PATTERN, description="AWS region of the new cluster (default: source.region)."
    )
    cluster_identifier: RdsIdentifier = Field(
        description="Identifier of the cluster to create (1-63 letters/digits/-)."
    )
    engine_version: EngineVersion | None = Field(default=None, description="Engine version to restore to.")
    port: int | None = Field(default=None, ge=1150, le=65535, description="Port the cluster listens on.")
    db_subnet_group_name: SubnetGroupName | None = Field(
        default=None, description="DB subnet group of the new cluster."
    )
    vpc_security_group_ids: list[SecurityGroupId] = Field(
        default_factory=list, description="VPC security groups (sg-...)."
    )
    db_cluster_parameter_group_name: ParameterGroupName | None = Field(
        default=None, description="DB cluster parameter group."
    )
    kms_key_id: KmsKeyId | None = Field(default=None, description="KMS key for the restored cluster's storage.")
    deletion_protection: bool | None = Field(default=None, description="Enable deletion protection, once the cluster is "
                                             "verified and has its final name (Publishing).")
    iam_database_authentication: bool | None = Field(default=None, description="Enable IAM database auth.")
    enable_cloudwatch_logs_exports: list[Annotated[str, Field(pattern=r"^[a-z-]{1,64}$")]] = Field(
        default_factory=list, description="Log types exported to CloudWatch Logs (e.g. postgresql)."
    )
    serverless_v2_scaling: ServerlessV2Scaling | None = Field(default=None, description="Serverless v2 scaling.")
    storage_type: Literal["aurora", "aurora-iopt1"] | None = Field(
        default=None, description="aurora (Aurora Standard, AWS's default) or aurora-iopt1 (Aurora I/O-Optimized)."
    )
    backup_retention_period: int | None = Field(
        default=None, ge=1, le=35, description="Days automated backups are kept, 1 to 35."
    )
    preferred_backup_window: BackupWindow | None = Field(
        default=None, description='Daily backup window in UTC, at least 30 minutes, e.g. "03:00-03:30".'
    )
    preferred_maintenance_window: MaintenanceWindow | None = Field(
        default=None,
        description='Weekly maintenance window of the cluster in UTC, at least 30 minutes, e.g. "sun:05:00-sun:05:30" '
        "(set with ModifyDBCluster once the cluster is available: the restore calls do not take it).",
    )
    copy_tags_to_snapshot: bool = Field(
        default=True, description="Copy the cluster's tags (the restore's among them) to its snapshots."
    )
    availability_zones: list[AvailabilityZone] = Field(
        default_factory=list,
        description="Availability Zones the cluster's storage and instances may use (not with source.pointInTime).",
    )
    network_type: Literal["IPV4", "DUAL"] | None = Field(
        default=None, description="IPV4 or DUAL (IPv4 and IPv6; the subnet group must support it)."
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags for the cluster and its instances (at most 47: AWS allows 50 and the operator adds 3).",
    )
    role_arn: str | None = Field(
        default=None,
        pattern=ROLE_ARN_PATTERN,
        max_length=ROLE_ARN_MAX_LENGTH,
        description="IAM role to assume for calls in the target account (must be allowed for this namespace).",
    )
    instances: Instances = Field(default_factory=Instances, description="DB instances to create in the cluster.")

    @field_validator("tags")
    @classmethod
    def _tags_aws_takes(cls, tags: dict[str, str]) -> dict[str, str]:
        """RDS tag rules (AddTagsToResource, "Tagging Amazon RDS resources"): up to 50 tags per resource, keys of
        1 to 128 and values of up to 256 characters, neither starting with "aws:" (nor, for keys, "rds:"). Found
        here instead of at RestoreDBClusterFromSnapshot, after a copy may already have run."""
        room = 50 - len(OPERATOR_TAG_KEYS)
        if len(tags) > room:
            raise ValueError(f"spec.target.tags has {len(tags)} tags; at most {room} (AWS allows 50 per resource "
                             f"and the operator adds {', '.join(OPERATOR_TAG_KEYS)})")
        for key, value in tags.items():
            if not 1 <= len(key) <= 128 or key.lower().startswith(("aws:", "rds:")):
                raise ValueError(f"spec.target.tags key {key[:140]!r}: 1 to 128 characters, not starting with "
                                 "'aws:' or 'rds:'")
            if len(value) > 256 or value.lower().startswith("aws:"):
                raise ValueError(f"spec.target.tags[{key!r}]: values are at most 256 characters and may not start "
                                 "with 'aws:'")
            if not _tag_characters(key) or not _tag_characters(value):
                raise ValueError(f"spec.target.tags key {key[:140]!r}: keys and values may hold only letters, "
                                 "digits, spaces and _.:/=+-@ (AWS refuses other characters, control characters "
                                 "among them)")
            if key.lower() == REPLACEABLE_TAG:  # the operator's IAM policy refuses it: say so before any copy
                raise ValueError(f"spec.target.tags key {key!r} is the account owner's to set on a cluster it lets "
                                 "be replaced; the operator never sets it")
        return tags

    @model_validator(mode="after")
    def _windows_do_not_overlap(self) -> "Target":
        if self.preferred_backup_window:
            for field, window in (
                ("preferredMaintenanceWindow", self.preferred_maintenance_window),
                ("instances.preferredMaintenanceWindow", self.instances.preferred_maintenance_window),
            ):
                if window and windows_overlap(self.preferred_backup_window, window):
                    raise ValueError(
                        f"spec.target.{field} {window!r} overlaps preferredBackupWindow "
                        f"{self.preferred_backup_window!r}; AWS refuses overlapping windows"
                    )
        return self


class Copy(ApiModel):
    """How the snapshot is copied when the target region differs from the source region."""

    kms_key_id: KmsKeyId | None = Field(
        default=None, description="KMS key in the target region for the copy; required for encrypted snapshots."
    )
    source_region_kms_key_id: KmsKeyId | None = Field(
        default=None,
        description="Cross-account and cross-region only: a KMS key of the target account in the source region, "
        "for the in-region copy AWS requires before a shared snapshot can cross regions. Default: the target "
        "account's AWS-managed key alias/aws/rds (that copy is never shared).",
    )
    copy_tags: bool = Field(default=True, description="Copy the source snapshot's tags onto the copy.")
    delete_after_restore: bool = Field(default=True, description="Delete the copy once the restore is done.")


class ExistingTarget(ApiModel):
    """What to do when a cluster named target.clusterIdentifier already exists."""

    policy: Literal["Fail", "Replace"] = Field(
        default="Fail",
        description="Fail (default) changes nothing; Replace restores beside the existing cluster, verifies the "
        "new one, swaps the names, then deletes the previous cluster.",
    )
    final_snapshot: bool = Field(
        default=True, description="With Replace: take a final snapshot when the previous cluster is deleted."
    )
    keep_previous: str | None = Field(
        default=None,
        min_length=2,
        pattern=DURATION_PATTERN,
        description="With Replace: keep the previous cluster (renamed) this long after the swap (e.g. 24h), then "
        "delete it; unset: delete it right after the swap.",
    )

    @model_validator(mode="after")
    def _keep_previous_needs_replace(self) -> "ExistingTarget":
        if self.keep_previous is not None and self.policy != "Replace":
            raise ValueError("spec.existingTarget.keepPrevious needs policy: Replace")
        return self


class SecretKeyRef(ApiModel):
    """A key of a Kubernetes Secret in the AuroraRestore's namespace."""

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253,
        description="Name of the Secret (a DNS subdomain, as Kubernetes names Secrets).",
    )
    key: str = Field(
        pattern=r"^[-._a-zA-Z0-9]+$", max_length=253,
        description="Key in the Secret's data (letters, digits, '-', '_' and '.', as Kubernetes takes them).",
    )


class MasterPassword(ApiModel):
    """Where the restored cluster's master password comes from: exactly one of the three."""

    secret_ref: SecretKeyRef | None = Field(default=None, description="A key of a Secret in this namespace.")
    secrets_manager_secret_id: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z0-9/_+=.@:-]+$",  # a secret's name (letters, digits and /_+=.@-) or its ARN
        max_length=2048,
        description='A Secrets Manager secret (name or ARN) in the target region: JSON {"password": ...} or a string.',
    )
    manage_in_secrets_manager: bool | None = Field(
        default=None, description="Let RDS generate and keep the password in Secrets Manager (ARN in status)."
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> "MasterPassword":
        given = [self.secret_ref is not None, self.secrets_manager_secret_id is not None, bool(self.manage_in_secrets_manager)]
        if sum(given) != 1:
            raise ValueError("needs exactly one of secretRef, secretsManagerSecretId or manageInSecretsManager: true")
        return self


class ConnectionSecretRef(ApiModel):
    """A Secret the operator writes with everything needed to connect (written after verification passes)."""

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253, description="Name of the Secret to write."
    )


class DatabaseUser(ApiModel):
    """A database user created or updated on the restored cluster."""

    name: str = Field(
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$", description="User name (letters, digits, underscore)."
    )
    password_secret_ref: SecretKeyRef = Field(description="The user's password: a key of a Secret in this namespace.")
    access: Literal["readWrite", "readOnly"] = Field(
        default="readOnly", description="readWrite: read and change data; readOnly: read only."
    )
    databases: list[str] = Field(
        default_factory=list, description="Databases the access applies to (default: the cluster's database)."
    )
    connection_secret: ConnectionSecretRef | None = Field(
        default=None, description="Also write a connection Secret for this user."
    )


class VerificationQuery(ApiModel):
    """A read-only query that must succeed on the restored database."""

    sql: str = Field(
        min_length=1,
        description="One SQL statement, run in a read-only transaction as aurora_restore_verifier, a user with "
        "read access only that the operator creates for verification and drops after it.",
    )
    expect_rows: int | None = Field(default=None, ge=0, description="The number of rows it must return.")


# PostgreSQL's statement_timeout (and so the verification timeout) is an int of milliseconds: about 24.8 days.
MAX_STATEMENT_TIMEOUT = timedelta(days=24)


class Verification(ApiModel):
    """Checks run against the restored database before it is declared ready."""

    database: str | None = Field(default=None, description="Database to run the queries in (default: the cluster's).")
    queries: list[VerificationQuery] = Field(default_factory=list, description="Queries to run, in order.")
    timeout: str | None = Field(
        default=None, min_length=2, pattern=DURATION_PATTERN,
        description="Longest each query may run (e.g. 30s, 5m; default: the operator's database statement "
        "timeout, 60s).",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value).total_seconds() <= 0:
            raise ValueError("spec.verification.timeout must be longer than zero")
        if value is not None and parse_duration(value) > MAX_STATEMENT_TIMEOUT:
            raise ValueError("spec.verification.timeout must be at most 24d: the databases take statement "
                             "timeouts in milliseconds up to 2^31-1 (PostgreSQL's statement_timeout)")
        return value

    @property
    def timeout_seconds(self) -> int | None:
        return int(parse_duration(self.timeout).total_seconds()) if self.timeout else None


class Drill(ApiModel):
    """A restore drill (restore testing): restore into a cluster of its own, verify, measure RTO and RPO, then
    delete everything it made once keepFor has passed. A drill never replaces or touches an existing cluster."""

    keep_for: str = Field(
        default="0s", min_length=2, pattern=DURATION_PATTERN,
        description="How long the drill's cluster stays after verification passed (a validation window; default "
        "0s: deleted at once).",
    )
    rto_objective: str | None = Field(
        default=None, min_length=2, pattern=DURATION_PATTERN,
        description="Recovery time objective: the AuroraRestore's creation to verification passed (e.g. 45m).",
    )
    rpo_objective: str | None = Field(
        default=None, min_length=2, pattern=DURATION_PATTERN,
        description="Recovery point objective: the snapshot's time (or restore point) to the restore's start "
        "(e.g. 26h).",
    )


class WebhookSecretRef(ApiModel):
    """A Secret in the AuroraRestore's namespace holding a webhook URL (secret: the URL often embeds a token)."""

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253,
        description="Name of the Secret (a DNS subdomain, as Kubernetes names Secrets).",
    )
    key: str = Field(
        default="url", pattern=r"^[-._a-zA-Z0-9]+$", max_length=253,
        description="Key in the Secret's data holding the https URL (default url).",
    )


class Notification(ApiModel):
    """Where to report the restore's end (or every phase): an SNS topic, a webhook, or both."""

    sns_topic_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_-]{1,256}(\.fifo)?$",
        max_length=1024,
        description="SNS topic to publish to, with the target side's identity (default: the operator's "
        "AURORA_RESTORE_NOTIFICATION_SNS_TOPIC_ARN, if set).",
    )
    webhook_secret_ref: WebhookSecretRef | None = Field(
        default=None, description="A Secret holding the webhook URL to POST the notification to."
    )
    webhook_format: Literal["JSON", "Slack"] = Field(
        default="JSON", description="JSON (default): the versioned payload; Slack: an incoming-webhook message."
    )
    on: Literal["Terminal", "EveryTransition"] = Field(
        default="Terminal", description="Terminal (default): when the restore ends; EveryTransition: every phase."
    )


# SQL identifiers the masking rules name: a table (optionally schema.table) and a column, as the databases store
# unquoted names; the operator quotes them itself (never formats them into SQL unquoted).
SQL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_$]{0,62}$"
SQL_TABLE_PATTERN = r"^([a-zA-Z_][a-zA-Z0-9_$]{0,62}\.)?[a-zA-Z_][a-zA-Z0-9_$]{0,62}$"
DatabaseName = Annotated[str, Field(pattern=SQL_NAME_PATTERN)]
MASKING_STRATEGIES = ("nullify", "constant", "hash", "email", "fakeName", "truncate")


class MaskingRule(ApiModel):
    """How one column (or, with truncate, one whole table) is masked."""

    table: str = Field(pattern=SQL_TABLE_PATTERN, description="Table, or schema.table (PostgreSQL's default "
                       "schema: public).")
    column: str | None = Field(default=None, pattern=SQL_NAME_PATTERN,
                               description="Column to mask (every strategy but truncate).")
    strategy: Literal["nullify", "constant", "hash", "email", "fakeName", "truncate"] = Field(
        description="nullify: NULL; constant: `value`; hash: keyed HMAC-SHA256 of the value, hex (deterministic, so "
        "equal values stay equal and joins still match; text columns); email: a fake address derived from the "
        "keyed hash; fakeName: a name from a fixed list chosen by the keyed hash; truncate: remove every row."
    )
    value: str | None = Field(default=None, max_length=4096, description="constant only: the value written "
                              "(sent as a query parameter, cast to the column's type by the database).")
    where: str | None = Field(
        default=None, min_length=1, max_length=4096,
        description="Only rows matching this SQL condition (e.g. \"country <> 'NZ'\"); not with truncate. It is "
        "the restore author's SQL, run as the master user.",
    )

    @model_validator(mode="after")
    def _fields_of_the_strategy(self) -> "MaskingRule":
        if self.strategy == "truncate":
            if self.column is not None or self.where is not None:
                raise ValueError("masking strategy truncate removes every row of the table: leave column and where "
                                 "unset")
        elif self.column is None:
            raise ValueError(f"masking strategy {self.strategy} needs a column")
        if (self.value is not None) != (self.strategy == "constant"):
            raise ValueError("masking: value is given with strategy constant, and only with it")
        return self


class Masking(ApiModel):
    """Mask the restored data before anything is exposed: runs after ConfiguringAccess (the database users are
    configured only once it is done) and before Verifying, as the master user, one transaction per table."""

    database: DatabaseName | None = Field(default=None, description="Database holding the tables (default: the "
                                          "cluster's).")
    hash_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="The HMAC key of hash, email and fakeName: a key of a Secret in this namespace "
        "(required by them; at least 16 bytes). The same key gives the same masked values in every refresh.",
    )
    rules: list[MaskingRule] = Field(min_length=1, max_length=500, description="Masking rules, applied in order.")

    @model_validator(mode="after")
    def _keyed_strategies_need_the_key(self) -> "Masking":
        keyed = sorted({rule.strategy for rule in self.rules if rule.strategy in ("hash", "email", "fakeName")})
        if keyed and self.hash_key_secret_ref is None:
            raise ValueError(f"spec.masking.hashKeySecretRef is required by strategy {', '.join(keyed)}")
        return self


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the AuroraRestore's namespace."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253, description="ConfigMap name.")
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253, description="Key holding the SQL.")


class JobHook(ApiModel):
    """A Kubernetes Job the operator creates in this namespace (only where the tenant policy allows job hooks)."""

    template: dict = Field(
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="The Job's pod template (a PodTemplateSpec: metadata and spec with containers). Every container "
        "gets the connection details from a Secret the operator creates for the Job and deletes afterwards "
        "(envFrom: DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, DB_ENGINE).",
    )
    backoff_limit: int = Field(default=0, ge=0, le=10, description="Retries of a failed pod (default 0).")


class PostRestoreHook(ApiModel):
    """One post-restore hook: SQL (inline or from a ConfigMap) or a Job; exactly one of sql, configMapRef, job."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", description="Name (a DNS label, at most "
                      "40 characters), unique among the hooks.")
    database: DatabaseName | None = Field(default=None, description="Database (default: the cluster's).")
    sql: str | None = Field(default=None, min_length=1, max_length=65536,
                            description="SQL statements, run in order in one transaction as the master user.")
    config_map_ref: ConfigMapKeyRef | None = Field(default=None, description="SQL from a ConfigMap key instead.")
    job: JobHook | None = Field(default=None, description="A Job to run instead of SQL.")
    timeout: str = Field(default="10m", min_length=2, pattern=DURATION_PATTERN,
                         description="Longest the hook may take (e.g. 30s, 10m).")
    on_failure: Literal["Fail", "Continue"] = Field(
        default="Fail", description="Fail (default): the restore fails; Continue: reported, the next hook runs."
    )

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> "PostRestoreHook":
        if sum(x is not None for x in (self.sql, self.config_map_ref, self.job)) != 1:
            raise ValueError(f"hook {self.name}: needs exactly one of sql, configMapRef or job")
        if parse_duration(self.timeout).total_seconds() <= 0:
            raise ValueError(f"hook {self.name}: timeout must be longer than zero")
        return self


class Hooks(ApiModel):
    """Hooks run on the restored cluster."""

    post_restore: list[PostRestoreHook] = Field(
        default_factory=list, max_length=50,
        description="Run after masking and before verification, in order.",
    )

    @field_validator("post_restore")
    @classmethod
    def _unique_names(cls, hooks: list[PostRestoreHook]) -> list[PostRestoreHook]:
        names = [hook.name for hook in hooks]
        if len(names) != len(set(names)):
            raise ValueError("spec.hooks.postRestore names must be unique")
        return hooks


# An output snapshot identifier: the snapshot identifier rules, with {date} (YYYYMMDD) and {time} (HHMM, UTC)
# placeholders filled from the restore's start.
OUTPUT_SNAPSHOT_PATTERN = r"^[a-zA-Z](-?([a-zA-Z0-9]|\{date\}|\{time\}))*$"


class OutputSnapshot(ApiModel):
    """A manual snapshot of the masked, verified cluster, for other accounts to restore from: the product of a
    sanitized-snapshot pipeline, never deleted by the operator once the restore succeeded."""

    identifier: str = Field(pattern=OUTPUT_SNAPSHOT_PATTERN, max_length=200,
                            description="Snapshot identifier; {date} (YYYYMMDD) and {time} (HHMM) are filled in "
                            "from the restore's start (UTC), e.g. orders-masked-{date}.")
    kms_key_id: KmsKeyId | None = Field(
        default=None, description="Customer-managed KMS key the consumers may use: the snapshot is copied with it "
        "(required to share an encrypted snapshot: AWS refuses to share one under the default aws/rds key).",
    )
    share_with: list[Annotated[str, Field(pattern=r"^[0-9]{12}$")]] = Field(
        default_factory=list, max_length=20,
        description="AWS accounts to share the snapshot with (the tenant policy must allow each).",
    )
    delete_cluster_after: bool = Field(
        default=False, description="Delete the restored cluster once the snapshot is shared (no connection Secrets "
        "are written then).",
    )


class Output(ApiModel):
    """What the restore hands out besides the cluster."""

    snapshot: OutputSnapshot | None = Field(default=None, description="A sanitized snapshot for other accounts.")


class AuroraRestoreSpec(ApiModel):
    """One restore run. Immutable once accepted: to restore again, create a new AuroraRestore."""

    source: Source = Field(description="The snapshot (or cluster) to restore from.")
    target: Target = Field(description="The cluster to create.")
    copy_: Copy = Field(default_factory=Copy, alias="copy", description="Cross-region copy settings.")
    existing_target: ExistingTarget = Field(
        default_factory=ExistingTarget, description="What to do if the target cluster already exists."
    )
    master_password: MasterPassword | None = Field(
        default=None, description="Set the restored cluster's master password (needed for users and verification)."
    )
    users: list[DatabaseUser] = Field(default_factory=list, description="Database users to create or update.")
    verification: Verification | None = Field(default=None, description="Queries proving the restore is usable.")
    connection_secret: ConnectionSecretRef | None = Field(
        default=None, description="Write a Secret with the master user's connection details once verified."
    )
    timeout: str = Field(
        default="6h", min_length=2, pattern=DURATION_PATTERN, description="Fail the restore if it takes longer (e.g. 6h, 90m)."
    )
    dry_run: bool = Field(
        default=False,
        description="Only resolve the snapshot and run the preflight checks; end in Planned with status.plan.",
    )
    deletion_policy: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="Retain (default) keeps the restored cluster when this resource is deleted; Delete removes it.",
    )
    drill: Drill | None = Field(
        default=None, description="Make this restore a drill: its own cluster, measured, deleted after keepFor."
    )
    notification: Notification | None = Field(default=None, description="Notify an SNS topic or a webhook.")
    masking: Masking | None = Field(default=None, description="Mask the data before anything is exposed.")
    hooks: Hooks | None = Field(default=None, description="Post-restore SQL and Job hooks.")
    output: Output | None = Field(default=None, description="A sanitized snapshot for other accounts.")
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, le=315360000,
        description="Delete this AuroraRestore that long after it has nothing left to do (status.workCompletedAt); "
        "the restored cluster stays unless deletionPolicy is Delete.",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, value: str) -> str:
        if parse_duration(value).total_seconds() <= 0:
            raise ValueError("spec.timeout must be longer than zero")
        return value

    @property
    def target_region(self) -> str:
        return self.target.region or self.source.region

    @model_validator(mode="after")
    def _database_access_needs_the_master_password(self) -> "AuroraRestoreSpec":
        if (self.users or self.verification or self.connection_secret or self.masking
                or self.post_restore_hooks) and self.master_password is None:
            raise ValueError("spec.masterPassword is required for users, verification, connectionSecret, masking "
                             "and hooks")
        return self

    @model_validator(mode="after")
    def _clone_keeps_the_source_settings(self) -> "AuroraRestoreSpec":
        """RestoreDBClusterToPointInTime (a clone) has no EngineVersion or AvailabilityZones: refused, never
        ignored (the region is Preflight's to check: it says why)."""
        if self.source.clone and (self.target.engine_version or self.target.availability_zones):
            raise ValueError(
                "spec.source.clone keeps the source cluster's engine version and zones: leave target.engineVersion "
                "and target.availabilityZones unset"
            )
        return self

    @model_validator(mode="after")
    def _output_snapshot_fits(self) -> "AuroraRestoreSpec":
        snapshot = self.output.snapshot if self.output else None
        if snapshot is None or not snapshot.delete_cluster_after:
            return self
        if self.existing_target.policy == "Replace" or self.drill is not None:
            raise ValueError("spec.output.snapshot.deleteClusterAfter deletes the restored cluster: it cannot be "
                             "used with existingTarget.policy Replace or a drill")
        if self.connection_secret or any(user.connection_secret for user in self.users):
            raise ValueError("spec.output.snapshot.deleteClusterAfter deletes the restored cluster: connection "
                             "Secrets for it cannot be written")
        return self

    @model_validator(mode="after")
    def _point_in_time_takes_no_snapshot_only_fields(self) -> "AuroraRestoreSpec":
        """RestoreDBClusterToPointInTime has no EngineVersion or AvailabilityZones: refused, never ignored."""
        if self.source.point_in_time and (self.target.engine_version or self.target.availability_zones):
            raise ValueError(
                "spec.source.pointInTime keeps the source cluster's engine version and zones: leave "
                "target.engineVersion and target.availabilityZones unset (upgrade or move afterwards)"
            )
        return self

    @model_validator(mode="after")
    def _point_in_time_stays_in_region(self) -> "AuroraRestoreSpec":
        if self.source.point_in_time and (self.needs_copy or self.source.account_id):
            raise ValueError(
                "spec.source.pointInTime restores in the source cluster's region and account: "
                "leave target.region and source.accountId unset"
            )
        return self

    @model_validator(mode="after")
    def _drill_never_replaces(self) -> "AuroraRestoreSpec":
        if self.drill is not None and self.existing_target.policy == "Replace":
            raise ValueError(
                "spec.drill restores into a cluster of its own and never replaces or touches an existing one: "
                "spec.existingTarget.policy Replace cannot be used in a drill"
            )
        if self.drill is not None and self.target.deletion_protection:
            raise ValueError("spec.drill deletes its cluster after keepFor: spec.target.deletionProtection true "
                             "cannot be used in a drill")
        return self

    @property
    def cross_account(self) -> bool:
        return self.source.account_id is not None

    @property
    def post_restore_hooks(self) -> list[PostRestoreHook]:
        return self.hooks.post_restore if self.hooks else []

    @property
    def output_snapshot(self) -> OutputSnapshot | None:
        return self.output.snapshot if self.output else None

    @property
    def needs_copy(self) -> bool:
        """A snapshot from another region or account is copied into the target first (a clone never is)."""
        return self.source.clone is None and (self.target_region != self.source.region or self.cross_account)

    @property
    def needs_database_access(self) -> bool:
        """Whether the ConfiguringAccess and Verifying phases have anything to do."""
        return bool(self.master_password or self.users or self.verification or self.connection_secret
                    or self.masking or self.post_restore_hooks)


# --- status -----------------------------------------------------------------------------------------------------


class Condition(ApiModel):
    """A Kubernetes-style condition: Ready, Progressing or Failed."""

    type: str = Field(description="Ready, Progressing or Failed.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable detail.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(default=None, description="The generation this condition describes.")


class SnapshotStatus(ApiModel):
    """The source snapshot chosen; pinned so a re-run restores the same data."""

    identifier: str = Field(description="Snapshot identifier.")
    arn: str = Field(description="Snapshot ARN.")
    region: str | None = Field(default=None, description="Region of the snapshot.")
    cluster_identifier: str | None = Field(default=None, description="Cluster the snapshot was taken from.")
    created_at: datetime | None = Field(default=None, description="SnapshotCreateTime.")
    engine: str | None = Field(default=None, description="Engine, e.g. aurora-postgresql.")
    engine_version: str | None = Field(default=None, description="Engine version of the snapshot.")
    encrypted: bool | None = Field(default=None, description="Whether the snapshot is encrypted.")
    kms_key_id: str | None = Field(default=None, description="KMS key the snapshot is encrypted with.")
    snapshot_type: str | None = Field(default=None, description="automated, manual or shared.")


class CopiedSnapshotStatus(ApiModel):
    """The copy made in the target region (deleted after the restore unless told otherwise)."""

    identifier: str = Field(description="Identifier of the copy.")
    arn: str | None = Field(default=None, description="ARN of the copy.")
    region: str | None = Field(default=None, description="Region of the copy.")
    deleted: bool | None = Field(default=None, description="True once the copy has been deleted.")


class SharedSnapshotStatus(ApiModel):
    """The snapshot shared from the source account with the target account (cross-account restores)."""

    identifier: str = Field(description="Identifier of the shared snapshot in the source account.")
    arn: str | None = Field(default=None, description="Its ARN (what the target account copies from).")
    shared_with: str | None = Field(default=None, description="The target account it is shared with.")
    intermediate: bool = Field(
        default=False, description="True when the operator made this manual copy of an automated snapshot."
    )
    shared_by_restore: bool = Field(
        default=False,
        description="True when an operator restore added the share (a share the owner made is never removed); "
        "for a manual snapshot it is counted per restore and removed by the last one to finish.",
    )
    unshared: bool | None = Field(
        default=None, description="True once this restore removed the share (false: other restores still need it, "
        "or it was the owner's)."
    )
    deleted: bool | None = Field(default=None, description="True once an intermediate copy has been deleted.")


class ClusterStatus(ApiModel):
    """The restored cluster as AWS last reported it."""

    identifier: str = Field(description="Cluster identifier.")
    arn: str | None = Field(default=None, description="Cluster ARN.")
    endpoint: str | None = Field(default=None, description="Writer endpoint.")
    reader_endpoint: str | None = Field(default=None, description="Reader endpoint.")
    port: int | None = Field(default=None, description="Port.")
    status: str | None = Field(default=None, description="AWS status, e.g. available.")


class InstanceStatus(ApiModel):
    """One DB instance of the restored cluster."""

    identifier: str = Field(description="Instance identifier.")
    instance_class: str | None = Field(default=None, description="Instance class.")
    writer: bool | None = Field(default=None, description="Whether the instance is the cluster's writer.")
    status: str | None = Field(default=None, description="AWS status, e.g. available.")


class ReplacedClusterStatus(ApiModel):
    """The cluster that had the target's name and is being replaced (policy Replace)."""

    identifier: str = Field(description="Identifier of the replaced cluster (the target identifier).")
    arn: str | None = Field(default=None, description="ARN of the replaced cluster before the swap.")
    resource_id: str | None = Field(
        default=None, description="Its DbClusterResourceId, which a rename keeps: how it is recognised later."
    )
    renamed_to: str = Field(description="The identifier the swap renames it to.")
    final_snapshot_identifier: str | None = Field(default=None, description="Final snapshot taken when deleted.")
    swap_started_at: datetime | None = Field(default=None, description="When the swap began (first rename).")
    swapped_at: datetime | None = Field(default=None, description="When the restored cluster took the target's name.")
    rolled_back_at: datetime | None = Field(
        default=None, description="When a swap that could not finish was undone (the previous cluster has its name back)."
    )
    delete_after: datetime | None = Field(
        default=None, description="With keepPrevious: when the previous cluster will be deleted."
    )
    deleted_at: datetime | None = Field(default=None, description="When the previous cluster was gone.")
    deleted_instances: list[str] = Field(default_factory=list, description="Its instances deleted with it.")
    retirement_error: str | None = Field(
        default=None, description="Why the previous cluster could not be deleted (it is then left as it is)."
    )


class CancellationStatus(ApiModel):
    """The AuroraRestore was deleted before it finished."""

    phase: Phase = Field(description="The phase it was in when the deletion was seen.")
    requested_at: datetime = Field(description="When the operator saw the deletion.")


class HistoryEntry(ApiModel):
    """One phase the restore went through (the list is bounded)."""

    phase: Phase = Field(description="The phase.")
    started_at: datetime = Field(description="When the phase began.")
    ended_at: datetime | None = Field(default=None, description="When it ended.")


class Failure(ApiModel):
    """Why the restore failed."""

    phase: Phase = Field(description="The phase that failed.")
    reason: str = Field(description="CamelCase reason, e.g. SnapshotNotFound or Timeout.")
    message: str = Field(description="What went wrong and, where possible, which field to fix.")


class UserStatus(ApiModel):
    """A database user the operator configured."""

    name: str = Field(description="User name.")
    access: str = Field(description="readWrite or readOnly.")
    databases: list[str] = Field(default_factory=list, description="Databases the access applies to.")


class QueryResult(ApiModel):
    """The outcome of one verification query."""

    index: int = Field(description="Position in spec.verification.queries.")
    rows: int = Field(description="Rows returned.")


class VerificationStatus(ApiModel):
    """Verification results."""

    passed_at: datetime | None = Field(default=None, description="When verification passed.")
    results: list[QueryResult] = Field(default_factory=list, description="One entry per query.")


class PreflightCheck(ApiModel):
    """One check made before anything is copied or deleted."""

    name: str = Field(description="What was checked.")
    passed: bool = Field(description="Whether it passed.")
    message: str = Field(default="", description="Detail, or the problem found.")
    reason: str | None = Field(default=None, description="CamelCase reason of a problem, e.g. TargetExists.")


class PlannedStep(ApiModel):
    """A step a real run would take (dry run)."""

    phase: Phase = Field(description="The phase it belongs to.")
    action: str = Field(description="The AWS API call.")
    parameters: dict[str, str] = Field(default_factory=dict, description="Its main parameters.")
    note: str | None = Field(default=None, description="Why the step looks as it does (for example which KMS key "
                             "encrypts what), when that is not plain from the parameters.")


class Plan(ApiModel):
    """What a dry run found: the snapshot, the preflight results and the steps a real run would take."""

    steps: list[PlannedStep] = Field(default_factory=list, description="AWS calls a real run would make, in order.")


class DrillStatus(ApiModel):
    """What a drill measured, and its own cluster's lifecycle."""

    cluster_identifier: str = Field(description="The drill's own cluster (generated from the target and the UID).")
    rto_seconds: float | None = Field(
        default=None, description="The AuroraRestore's creation to verification passed, in seconds."
    )
    lease_wait_seconds: float | None = Field(
        default=None, description="Of which spent waiting for the target Lease (another restore of the same name)."
    )
    rpo_seconds: float | None = Field(
        default=None, description="The snapshot's time (or restore point) to the restore's start, in seconds."
    )
    rto_objective_seconds: float | None = Field(default=None, description="spec.drill.rtoObjective in seconds.")
    rpo_objective_seconds: float | None = Field(default=None, description="spec.drill.rpoObjective in seconds.")
    objective_met: bool | None = Field(default=None, description="Whether both objectives were met.")
    delete_after: datetime | None = Field(default=None, description="When the drill's cluster will be deleted.")
    deleted_at: datetime | None = Field(default=None, description="When everything the drill made was gone.")
    cleanup_error: str | None = Field(
        default=None, description="Why the drill's cluster could not be deleted (it is then left as it is)."
    )


class NotificationStatus(ApiModel):
    """One notification and how its delivery went (the list is bounded)."""

    channel: Literal["sns", "webhook"] = Field(description="sns or webhook.")
    phase: Phase = Field(description="The phase it reports.")
    state: Literal["Pending", "Delivered", "Failed"] = Field(description="Pending, Delivered or Failed.")
    attempts: int = Field(default=0, description="Delivery attempts so far.")
    last_attempt_at: datetime | None = Field(default=None, description="When it was last tried.")
    delivered_at: datetime | None = Field(default=None, description="When it was delivered.")
    message_id: str | None = Field(default=None, description="SNS's MessageId, once published.")
    error: str | None = Field(default=None, description="Why the last attempt failed.")


class AuditEntry(ApiModel):
    """One mutating AWS call the operator made for this restore (the list is bounded; the log has them all)."""

    time: datetime = Field(description="When the call was made.")
    action: str = Field(description="service:Operation, e.g. rds:RestoreDBClusterFromSnapshot.")
    resource: str | None = Field(default=None, description="ARN (or identifier) of the resource acted on.")
    result: str = Field(description="Success, or the AWS error code.")


class CloneStatus(ApiModel):
    """spec.source.clone: the source cluster as Preflight saw it, and the RAM share of a cross-account clone."""

    source_cluster_identifier: str = Field(description="The source cluster.")
    source_cluster_arn: str | None = Field(default=None, description="Its ARN (what a cross-account clone names).")
    source_account: str | None = Field(default=None, description="The account owning it.")
    engine: str | None = Field(default=None, description="Engine, e.g. aurora-postgresql.")
    engine_version: str | None = Field(default=None, description="Engine version.")
    engine_mode: str | None = Field(default=None, description="provisioned, or serverless (Serverless v1).")
    storage_encrypted: bool | None = Field(default=None, description="Whether its storage is encrypted.")
    kms_key_id: str | None = Field(default=None, description="The KMS key encrypting it.")
    instance_count: int | None = Field(default=None, description="Its DB instances (a clone needs one).")
    resource_share_arn: str | None = Field(default=None, description="Cross-account: the RAM share this restore "
                                           "made (tagged with its UID).")
    invitation_arn: str | None = Field(default=None, description="The RAM invitation the target side accepted.")
    shared_at: datetime | None = Field(default=None, description="When the share was usable by the target account.")
    unshared: bool | None = Field(default=None, description="True once the RAM share was deleted.")


class MaskingTableStatus(ApiModel):
    """One table's masking."""

    table: str = Field(description="The table (schema.table).")
    rules: int = Field(description="Rules applied to it.")
    rows_changed: int = Field(default=0, description="Rows changed (or removed, with truncate).")
    masked_at: datetime | None = Field(default=None, description="When its transaction committed.")
    rewritten: bool = Field(default=False, description="True once rewritten (VACUUM FULL / OPTIMIZE TABLE), "
                            "so no old row version stays in its pages.")


class MaskingStatus(ApiModel):
    """spec.masking's progress."""

    tables_total: int = Field(description="Tables to mask.")
    tables_done: int = Field(default=0, description="Tables masked and rewritten.")
    rows_changed: int = Field(default=0, description="Rows changed in all.")
    tables: list[MaskingTableStatus] = Field(default_factory=list, description="One entry per table.")
    completed_at: datetime | None = Field(default=None, description="When every table was masked and rewritten.")
    key_fingerprint: str | None = Field(
        default=None, description="HMAC-SHA256 of a fixed label under the hash key (never the key), recorded before "
        "the first change: a restore whose key changes between tables fails rather than break the joins.")


class HookStatementStatus(ApiModel):
    """One statement of a SQL hook (its text is not repeated here: it may hold secrets)."""

    index: int = Field(description="Position in the hook's SQL, from 0.")
    command: str | None = Field(default=None, description="What the database reported, e.g. UPDATE or CREATE TABLE.")
    rows: int | None = Field(default=None, description="Rows affected, when the database says.")


class HookStatus(ApiModel):
    """One post-restore hook and how it ran."""

    name: str = Field(description="spec.hooks.postRestore[].name.")
    kind: Literal["sql", "job"] = Field(description="sql or job.")
    state: Literal["Running", "Succeeded", "Failed", "TimedOut"] = Field(description="Running, Succeeded, Failed "
                                                                          "or TimedOut.")
    started_at: datetime | None = Field(default=None, description="When it started.")
    finished_at: datetime | None = Field(default=None, description="When it ended.")
    statements: list[HookStatementStatus] = Field(default_factory=list, description="SQL hooks: each statement.")
    job_name: str | None = Field(default=None, description="Job hooks: the Job created.")
    secret_name: str | None = Field(default=None, description="Job hooks: the connection Secret made for the Job.")
    secret_deleted: bool | None = Field(default=None, description="Job hooks: True once that Secret was deleted.")
    error: str | None = Field(default=None, description="Why it failed (onFailure Continue: reported only).")


class OutputSnapshotStatus(ApiModel):
    """spec.output.snapshot: the sanitized snapshot made for other accounts."""

    identifier: str = Field(description="The output snapshot's identifier (placeholders filled in).")
    arn: str | None = Field(default=None, description="Its ARN (what the consumers restore from).")
    kms_key_id: str | None = Field(default=None, description="The KMS key encrypting it.")
    intermediate_identifier: str | None = Field(
        default=None, description="The snapshot of the cluster before the copy with kmsKeyId (deleted after it)."
    )
    intermediate_deleted: bool | None = Field(default=None, description="True once the intermediate is deleted.")
    shared_with: list[str] = Field(default_factory=list, description="Accounts it is shared with.")
    available_at: datetime | None = Field(default=None, description="When it was available and shared.")
    cluster_deleted_at: datetime | None = Field(
        default=None, description="deleteClusterAfter: when the restored cluster was gone."
    )
    deleted: bool | None = Field(
        default=None, description="True once a failed or cancelled restore deleted its partial output snapshot "
        "(a restore that succeeded never deletes it)."
    )


class AuroraRestoreStatus(ApiModel):
    """Where the restore is, what it chose and what it created; written only by the operator."""

    phase: Phase | None = Field(default=None, description="Current phase.")
    message: str | None = Field(default=None, description="What the operator is doing or waiting for.")
    observed_generation: int | None = Field(default=None, description="The spec generation acted on.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Progressing and Failed.")
    policy: str | None = Field(
        default=None, description="The AuroraRestorePolicy that allowed this restore (checked in Pending, again in "
        "Preflight and before deleting a replaced cluster)."
    )
    started_at: datetime | None = Field(default=None, description="When the restore started.")
    completed_at: datetime | None = Field(default=None, description="When it reached Succeeded or Failed.")
    snapshot: SnapshotStatus | None = Field(default=None, description="The source snapshot chosen.")
    shared_snapshot: SharedSnapshotStatus | None = Field(default=None, description="The cross-account share.")
    staged_snapshot: CopiedSnapshotStatus | None = Field(
        default=None, description="Cross-account and cross-region: the in-region copy made before crossing regions."
    )
    copied_snapshot: CopiedSnapshotStatus | None = Field(default=None, description="The cross-region copy.")
    clone: CloneStatus | None = Field(default=None, description="spec.source.clone: the source cluster and the "
                                      "cross-account RAM share.")
    preflight: list[PreflightCheck] = Field(default_factory=list, description="Checks made before acting.")
    plan: Plan | None = Field(default=None, description="Dry run only: what a real run would do.")
    cluster: ClusterStatus | None = Field(default=None, description="The restored cluster.")
    instances: list[InstanceStatus] = Field(default_factory=list, description="The cluster's instances.")
    replaced_cluster: ReplacedClusterStatus | None = Field(default=None, description="The cluster replaced.")
    master_user_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret holding the master password (manageInSecretsManager)."
    )
    users: list[UserStatus] = Field(default_factory=list, description="Database users configured.")
    verification: VerificationStatus | None = Field(default=None, description="Verification results.")
    masking: MaskingStatus | None = Field(default=None, description="spec.masking: progress.")
    hooks: list[HookStatus] = Field(default_factory=list, description="spec.hooks.postRestore: each hook.")
    output_snapshot: OutputSnapshotStatus | None = Field(default=None, description="spec.output.snapshot.")
    connection_secrets: list[str] = Field(default_factory=list, description="Connection Secrets written.")
    history: list[HistoryEntry] = Field(default_factory=list, description="Phases so far, newest last (bounded).")
    failure: Failure | None = Field(
        default=None, description="Set when the restore failed (phases CleaningUpAfterFailure and Failed)."
    )
    cancellation: CancellationStatus | None = Field(
        default=None, description="Set when the resource was deleted before the restore finished."
    )
    drill: DrillStatus | None = Field(default=None, description="Drills only: RTO, RPO and the drill's cluster.")
    notifications: list[NotificationStatus] = Field(
        default_factory=list, description="Notifications sent or being sent (bounded)."
    )
    audit: list[AuditEntry] = Field(
        default_factory=list, description="The latest mutating AWS calls made for this restore (bounded)."
    )
    work_completed_at: datetime | None = Field(
        default=None, description="When nothing was left to do (the end, or later the deletion of a kept previous "
        "cluster or of a drill's cluster); spec.ttlSecondsAfterFinished counts from here.",
    )
