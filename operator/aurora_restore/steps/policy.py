"""Which AuroraRestorePolicy allows a restore; default deny.

Checked each time against the policies as they are now: in Pending with what the spec says (before any AWS
call), in Preflight with what AWS says (the snapshot's cluster and owner, whether the target exists and who made
it and its instances), in RunningHooks before a Job hook's Job is made (allowJobHooks), in SnapshottingOutput before
the output snapshot is shared (snapshotShareAccounts), in SwappingTarget before the first rename, and in
RetiringPrevious before a replaced cluster is deleted. A restore is allowed when one policy covering its namespace
allows all of it. Removing what carries the restore's own UID (cleanup, cancel, deletionPolicy Delete) is never
refused: it only undoes what an allowed restore made.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ..api.models import REPLACEABLE_TAG, AuroraRestoreSpec
from ..api.policy import AuroraRestorePolicySpec, LabelSelector
from ..aws.arn import Arn, account_of, name_of
from ..aws.rds import tags_of
from ..errors import TerminalError
from ..notify.url_guard import host_of
from .context import MANAGED_BY_TAG, MANAGED_BY_VALUE, RestoreContext

REASON = "NotAllowedByPolicy"


@dataclass(frozen=True)
class NamedPolicy:
    name: str
    spec: AuroraRestorePolicySpec


@dataclass(frozen=True)
class Coverage:
    """The policies covering one namespace, and the names of those that exist but do not."""

    covering: list[NamedPolicy]
    others: list[str]


@dataclass(frozen=True)
class Facts:
    """What is known of a restore when it is checked; None (or empty): not known yet, so not held against it."""

    snapshot_identifier: str | None = None
    source_clusters: tuple[str, ...] = ()
    source_account: str | None = None
    target_account: str | None = None  # where a Secrets Manager secret given by name is read
    target_region: str | None = None
    point_in_time: bool = False
    existing_target: dict[str, Any] | None = None  # the cluster a Replace would replace
    existing_instances: tuple[dict[str, Any], ...] = ()  # its instances, when the operator did not create it
    webhook_host: str | None = None  # the host of the webhook URL in spec.notification.webhookSecretRef's Secret
    # The cluster the restore creates (context.restored_identifier): a drill's own name, which is what the
    # policy's targets must allow; None: spec.target.clusterIdentifier.
    target_identifier: str | None = None


def covers(spec: AuroraRestorePolicySpec, namespace: str, labels: dict[str, str] | None) -> bool:
    """A namespace is covered by a name glob or by the selector (labels None: not read, so no match)."""
    if any(fnmatchcase(namespace, pattern) for pattern in spec.namespaces):
        return True
    return spec.namespace_selector is not None and labels is not None and selects(spec.namespace_selector, labels)


def selects(selector: LabelSelector, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics: every matchLabels entry and every expression hold."""
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        value = labels.get(requirement.key)
        holds = {
            "In": present and value in requirement.values,
            "NotIn": not present or value not in requirement.values,
            "Exists": present,
            "DoesNotExist": not present,
        }[requirement.operator]
        if not holds:
            return False
    return True


def refusal(spec: AuroraRestoreSpec, policy: AuroraRestorePolicySpec, facts: Facts) -> str | None:
    """Why `policy` does not allow the restore (the field, its value, what the policy says), or None."""
    target_region, target = spec.target_region, facts.target_identifier or spec.target.cluster_identifier
    if not any(_glob(target_region, t.region) and _glob(target, t.cluster_identifier) for t in policy.targets):
        field = "the drill's cluster (from spec.target.clusterIdentifier)" if spec.drill else \
            "spec.target.clusterIdentifier"
        return f"{field} {target!r} in {target_region} is not among its targets"
    if not any(_source_allowed(spec, source, facts) for source in policy.sources):
        return f"spec.source {_describe_source(spec, facts)} is not among its sources"
    for field, role in (("spec.source.roleArn", spec.source.role_arn), ("spec.target.roleArn", spec.target.role_arn)):
        if role and not any(fnmatchcase(role, pattern) for pattern in policy.roles):
            return f"{field} {role!r} is not among its roles"
    secret = spec.master_password.secrets_manager_secret_id if spec.master_password else None
    if secret and not any(_secret_matches(secret, pattern, facts) for pattern in policy.secrets_manager_secrets):
        return f"spec.masterPassword.secretsManagerSecretId {secret!r} is not among its secretsManagerSecrets"
    instances = spec.target.instances
    if instances.count and not any(_glob(instances.instance_class, p) for p in policy.instance_classes):
        return f"spec.target.instances.instanceClass {instances.instance_class!r} is not among its instanceClasses"
    if policy.max_instances is not None and instances.count > policy.max_instances:
        return f"spec.target.instances.count {instances.count} is above its maxInstances {policy.max_instances}"
    notification = _notification_refusal(spec, policy, facts)
    if notification:
        return notification
    if not policy.allow_job_hooks:
        job = next(((i, h) for i, h in enumerate(spec.post_restore_hooks) if h.job is not None), None)
        if job is not None:
            return (f"spec.hooks.postRestore[{job[0]}].job ({job[1].name}): Job hooks run arbitrary code with the "
                    "master credentials, and its allowJobHooks is false")
    output = spec.output_snapshot
    for account in output.share_with if output else []:
        if not any(fnmatchcase(account, pattern) for pattern in policy.snapshot_share_accounts):
            return f"spec.output.snapshot.shareWith account {account!r} is not among its snapshotShareAccounts"
    if spec.existing_target.policy == "Replace":
        return _replace_refusal(spec, policy, facts)
    return None


def _notification_refusal(spec: AuroraRestoreSpec, policy: AuroraRestorePolicySpec, facts: Facts) -> str | None:
    """spec.notification's topic against snsTopics, the webhook's host against webhookHosts (the operator's
    default topic is the operator admin's choice: not checked). The host is not quoted: it is part of a secret."""
    notification = spec.notification
    if notification is None:
        return None
    topic = notification.sns_topic_arn
    if topic and not any(fnmatchcase(topic, pattern) for pattern in policy.sns_topics):
        return f"spec.notification.snsTopicArn {topic!r} is not among its snsTopics"
    ref = notification.webhook_secret_ref
    if ref and facts.webhook_host is not None and not _host_allowed(facts.webhook_host, policy):
        return (f"spec.notification.webhookSecretRef: the host of the webhook URL in Secret {ref.name} key "
                f"{ref.key} is not among its webhookHosts")
    return None


def _host_allowed(host: str, policy: AuroraRestorePolicySpec) -> bool:
    """Host names compare without case, as DNS does."""
    return bool(host) and any(fnmatchcase(host.lower(), pattern.lower()) for pattern in policy.webhook_hosts)


def notification_refusal(ctx: RestoreContext, topic: str | None = None, host: str | None = None) -> str | None:
    """When a notification is sent: why the policy allowing the restore does not allow its SNS topic or webhook
    host (None: it does). The restore's own rule: the policy in status.policy as it is now, or before one is
    recorded, the one Pending's check would choose. So a restore no policy allows notifies only the operator's
    default topic, and no policy lends a destination to a restore another policy allowed."""
    coverage = ctx.policies.covering(ctx.namespace)
    name = ctx.status.policy
    if name is None:
        try:
            name = decide(ctx.spec, ctx.namespace, coverage, facts_of(ctx))
        except TerminalError:
            return f"no AuroraRestorePolicy covering namespace {ctx.namespace} allows this restore"
    policy = next((policy.spec for policy in coverage.covering if policy.name == name), None)
    if policy is None:
        return f"AuroraRestorePolicy {name}, which allowed this restore, no longer covers namespace {ctx.namespace}"
    if topic is not None and not any(fnmatchcase(topic, pattern) for pattern in policy.sns_topics):
        return f"SNS topic {topic} is not among the snsTopics of AuroraRestorePolicy {name}"
    if host is not None and not _host_allowed(host, policy):
        return f"its host is not among the webhookHosts of AuroraRestorePolicy {name}"
    return None


def _replace_refusal(spec: AuroraRestoreSpec, policy: AuroraRestorePolicySpec, facts: Facts) -> str | None:
    if not policy.replace.allowed:
        return "spec.existingTarget.policy 'Replace' is not allowed by it (replace.allowed is false)"
    if not spec.existing_target.final_snapshot and not policy.allow_final_snapshot_skip:
        return "spec.existingTarget.finalSnapshot false is not allowed by it (allowFinalSnapshotSkip is false)"
    existing = facts.existing_target
    if existing is None:
        return None
    if created_by_operator(existing):
        return None
    tags = tags_of(existing)
    name = existing.get("DBClusterIdentifier")
    if policy.replace.only_clusters_created_by_operator:
        return (f"spec.existingTarget.policy 'Replace' of cluster {name!r}, which the operator did not create (no "
                f"tag {MANAGED_BY_TAG}={MANAGED_BY_VALUE}), is not allowed by it "
                f"(replace.onlyClustersCreatedByOperator is true)")
    if tags.get(REPLACEABLE_TAG) != "true":
        return (f"spec.existingTarget.policy 'Replace' of cluster {name!r}, which the operator did not create, needs "
                f"the tag {REPLACEABLE_TAG}=true on that cluster (set by its account owner)")
    # IAM lets the operator delete only instances tagged so (aws/iam_policy.py): found now, not after the swap.
    untagged = sorted(i["DBInstanceIdentifier"] for i in facts.existing_instances if not _operator_or_replaceable(i))
    if untagged:
        return (f"spec.existingTarget.policy 'Replace' of cluster {name!r} needs the tag {REPLACEABLE_TAG}=true on "
                f"each of its instances too; {', '.join(untagged)} lack it")
    return None


def created_by_operator(resource: dict[str, Any]) -> bool:
    """Tagged managed-by=aurora-restore-operator: what the operator puts on everything it creates."""
    return tags_of(resource).get(MANAGED_BY_TAG) == MANAGED_BY_VALUE


def _operator_or_replaceable(resource: dict[str, Any]) -> bool:
    return created_by_operator(resource) or tags_of(resource).get(REPLACEABLE_TAG) == "true"


def _source_allowed(spec: AuroraRestoreSpec, rule, facts: Facts) -> bool:
    source = spec.source
    if not _glob(source.region, rule.region):
        return False
    if facts.source_account is not None and not fnmatchcase(facts.source_account, rule.account_id):
        return False
    if any(not _glob(cluster, rule.cluster_identifier) for cluster in facts.source_clusters):
        return False
    if facts.point_in_time:
        return rule.snapshot_identifier == "*"
    return facts.snapshot_identifier is None or _glob(facts.snapshot_identifier, rule.snapshot_identifier)


def _describe_source(spec: AuroraRestoreSpec, facts: Facts) -> str:
    parts = [f"region {spec.source.region}"]
    if facts.source_account:
        parts.append(f"account {facts.source_account}")
    if facts.source_clusters:
        parts.append(f"cluster {', '.join(facts.source_clusters)}")
    if facts.snapshot_identifier:
        parts.append(f"snapshot {facts.snapshot_identifier}")
    if facts.point_in_time:
        parts.append("a point in time")
    return "(" + ", ".join(parts) + ")"


def _glob(value: str, pattern: str) -> bool:
    """Identifiers and regions: RDS compares identifiers case-insensitively, so the globs do too."""
    return fnmatchcase(value.lower(), pattern.lower())


def _secret_matches(secret: str, pattern: str, facts: Facts) -> bool:
    """An ARN against the glob. A name is read in the target's region and account: as an ARN of those (with or
    without the random suffix Secrets Manager appends) against an ARN glob; the account is taken from the glob
    while it is not known yet (Pending), and checked in Preflight."""
    if fnmatchcase(secret, pattern):
        return True
    glob = Arn.parse(pattern)
    if secret.startswith("arn:") or glob is None or ":" not in glob.resource:
        return False
    account = facts.target_account or glob.account
    region = facts.target_region or glob.region
    candidate = f"arn:{glob.partition}:secretsmanager:{region}:{account}:secret:{secret}"
    return fnmatchcase(candidate, pattern) or fnmatchcase(f"{candidate}-AbCdEf", pattern)



def decide(spec: AuroraRestoreSpec, namespace: str, coverage: Coverage, facts: Facts) -> str:
    """The name of the first policy allowing the restore; else TerminalError NotAllowedByPolicy naming the field,
    the value and every policy consulted."""
    if not coverage.covering:
        others = f"the policies that exist ({', '.join(coverage.others)}) do not" if coverage.others else "none exists"
        raise TerminalError(REASON, f"no AuroraRestorePolicy covers namespace {namespace}: {others}; a cluster admin "
                            f"must create one that allows this restore (docs/security.md)")
    refusals = []
    for policy in sorted(coverage.covering, key=lambda p: p.name):
        why = refusal(spec, policy.spec, facts)
        if why is None:
            return policy.name
        refusals.append(f"policy {policy.name}: {why}")
    raise TerminalError(REASON, f"not allowed in namespace {namespace} by any AuroraRestorePolicy covering it: "
                        + "; ".join(refusals))


def facts_of(ctx: RestoreContext, existing: dict[str, Any] | None = None, ask_account: bool = False,
             instances: list[dict[str, Any]] | None = None) -> Facts:
    """What the spec and the status say now, and the cluster a Replace would replace (with its instances when the
    operator did not create it); with `ask_account`, the source account from STS when the spec does not name it."""
    spec, snapshot = ctx.spec, ctx.status.snapshot
    source = spec.source
    clusters = {c for c in (source.latest.cluster_identifier if source.latest else None,
                            source.point_in_time.cluster_identifier if source.point_in_time else None,
                            source.clone.cluster_identifier if source.clone else None,
                            snapshot.cluster_identifier if snapshot else None) if c}
    identifier = snapshot.identifier if snapshot else source.snapshot_identifier
    # The snapshot's owner, once it is known (a shared snapshot `latest` found, an ARN the spec gave), else the
    # account the spec names, else the account the target side acts in.
    account = account_of(snapshot.arn if snapshot else source.snapshot_identifier) or source.account_id
    target_account = account_of(spec.target.role_arn)
    if target_account is None and ask_account:
        target_account = ctx.target.account.account_id
    account = account or target_account
    if existing is None or created_by_operator(existing):
        instances = []
    elif instances is None:
        instances = ctx.target.rds.list_cluster_instances(existing["DBClusterIdentifier"])
    return Facts(
        snapshot_identifier=name_of(identifier) if identifier else None,
        source_clusters=tuple(sorted(c.lower() for c in clusters)),
        source_account=account,
        target_account=target_account,
        target_region=spec.target_region,
        # a clone is checked like a point in time: a source cluster, no snapshot (snapshotIdentifier "*" only)
        point_in_time=source.point_in_time is not None or source.clone is not None,
        existing_target=existing,
        existing_instances=tuple(instances),
        target_identifier=ctx.target_identifier,
        webhook_host=webhook_host(ctx),
    )


def webhook_host(ctx: RestoreContext) -> str | None:
    """The host of the webhook URL in spec.notification.webhookSecretRef's Secret; None while it cannot be read
    (not held against the restore here: checked again when sending)."""
    ref = ctx.spec.notification.webhook_secret_ref if ctx.spec.notification else None
    if ref is None or ctx.secrets is None:
        return None
    try:
        url = ctx.secrets.read_key(ref.name, ref.key, "spec.notification.webhookSecretRef")
    except Exception:  # a missing key or an unreadable Secret: sending reports it
        return None
    return None if url is None else (host_of(url) or "")


def allowing_policy(ctx: RestoreContext, existing: dict[str, Any] | None = None, ask_aws: bool = False,
                    instances: list[dict[str, Any]] | None = None) -> str:
    """The policy that allows the restore as it is known now; raises NotAllowedByPolicy. `ask_aws`: the account
    the target side acts in may be learnt from STS (only when a covering policy names accounts, or ARNs of a
    secret the spec names by name), so never in Pending.
    `instances`: those of `existing`, when the caller listed them already."""
    coverage = ctx.policies.covering(ctx.namespace)
    master = ctx.spec.master_password
    secret_by_name = bool(master and master.secrets_manager_secret_id
                          and not master.secrets_manager_secret_id.startswith("arn:"))
    needs_account = any(rule.account_id != "*" for policy in coverage.covering for rule in policy.spec.sources) or (
        secret_by_name and any(p.startswith("arn:") for policy in coverage.covering
                               for p in policy.spec.secrets_manager_secrets))
    return decide(ctx.spec, ctx.namespace, coverage, facts_of(ctx, existing, ask_aws and needs_account, instances))
