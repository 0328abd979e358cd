"""Pydantic models of the AuroraRestorePolicy spec: what the restores of some namespaces may do.

A cluster admin writes policies (the resource is cluster-scoped, and only cluster admins get RBAC on it); the
operator reads them before every restore. Nothing is allowed that no policy allows (steps/policy.py decides).
Lists of names are globs (`*` any run of characters, `?` one, `[...]` a set); an empty list allows nothing.
"""

from typing import Literal

from pydantic import Field

from .models import ApiModel

POLICY_KIND = "AuroraRestorePolicy"
POLICY_PLURAL = "aurorarestorepolicies"
POLICY_SINGULAR = "aurorarestorepolicy"
POLICY_SHORT_NAMES = ["arp"]


class LabelSelectorRequirement(ApiModel):
    """One requirement of a label selector, as in Kubernetes."""

    key: str = Field(description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] = Field(default_factory=list, description="The values, for In and NotIn.")


class LabelSelector(ApiModel):
    """Namespaces by their labels, as in Kubernetes: every label of matchLabels and every requirement hold."""

    match_labels: dict[str, str] = Field(default_factory=dict, description="Labels the namespace must carry.")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Requirements on the namespace's labels."
    )


class PolicyTarget(ApiModel):
    """Clusters restores may create (or, with replace, replace)."""

    region: str = Field(default="*", description="Region glob of spec.target.region.")
    cluster_identifier: str = Field(default="*", description="Glob of spec.target.clusterIdentifier.")


class PolicySource(ApiModel):
    """What restores may restore from."""

    account_id: str = Field(
        default="*",
        description="Glob of the source account: spec.source.accountId, else the account of the restore's roles, "
        "else the operator's own account.",
    )
    region: str = Field(default="*", description="Glob of spec.source.region.")
    cluster_identifier: str = Field(
        default="*", description="Glob of the source cluster (of the snapshot, of `latest`, of a point in time)."
    )
    snapshot_identifier: str = Field(
        default="*",
        description="Glob of the snapshot's name (an ARN's last part). A point-in-time restore has no snapshot: "
        "only `*` allows it.",
    )


class ReplaceRule(ApiModel):
    """Whether spec.existingTarget.policy Replace may replace (and so delete) an existing cluster."""

    allowed: bool = Field(default=False, description="Allow existingTarget.policy Replace.")
    only_clusters_created_by_operator: bool = Field(
        default=True,
        description="Replace only clusters the operator created (tag managed-by=aurora-restore-operator). false "
        "also allows clusters the account owner tagged dbrestore.io/replaceable=true; never an untagged one.",
    )


class AuroraRestorePolicySpec(ApiModel):
    """Which namespaces this policy covers and what their restores may do. A restore is allowed when one policy
    covering its namespace allows all of it."""

    namespaces: list[str] = Field(default_factory=list, description="Globs of the namespaces this policy covers.")
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Also covers the namespaces whose labels match (either way suffices)."
    )
    targets: list[PolicyTarget] = Field(default_factory=list, description="Target clusters restores may create.")
    sources: list[PolicySource] = Field(default_factory=list, description="What restores may restore from.")
    roles: list[str] = Field(
        default_factory=list,
        description="Globs of the IAM role ARNs restores may assume (spec.source.roleArn, spec.target.roleArn). A "
        "restore that names no role acts with the operator's own identity and needs none.",
    )
    secrets_manager_secrets: list[str] = Field(
        default_factory=list,
        description="Globs of the Secrets Manager secrets (ARN, or name) spec.masterPassword.secretsManagerSecretId "
        "may read. A name is also matched against the name part of ARN globs (after ':secret:').",
    )
    replace: ReplaceRule = Field(default_factory=ReplaceRule, description="Whether existing clusters may be replaced.")
    instance_classes: list[str] = Field(
        default_factory=lambda: ["*"], description="Globs of spec.target.instances.instanceClass (default: any)."
    )
    max_instances: int | None = Field(
        default=None, ge=0, description="Most spec.target.instances.count may be (default: no limit)."
    )
    allow_final_snapshot_skip: bool = Field(
        default=False, description="Allow existingTarget.finalSnapshot false (replace without a final snapshot)."
    )
    sns_topics: list[str] = Field(
        default_factory=list, description="Globs of the SNS topic ARNs spec.notification.snsTopicArn may name."
    )
    allow_job_hooks: bool = Field(
        default=False, description="Allow spec.hooks.postRestore[].job: a Job running arbitrary code with the "
        "restored cluster's master credentials, in the restore's namespace.",
    )
    snapshot_share_accounts: list[str] = Field(
        default_factory=list,
        description="Globs of the AWS accounts spec.output.snapshot.shareWith may share a snapshot with.",
    )
    webhook_hosts: list[str] = Field(
        default_factory=list,
        description="Globs of the host names (or IP addresses) webhook notifications may be sent to.",
    )
