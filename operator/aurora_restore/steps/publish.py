"""Publishing: hand out what applications use to reach the restored cluster, once it has its final name.

Runs after Verifying, and after SwappingTarget with Replace, so the connection Secrets carry the endpoints the
cluster has for good (a rename changes them). The Succeeded notification is sent from here, endpoints included.

A connection Secret belongs to the restore whose UID it carries (k8s/secrets.py). Another restore naming it fails
(ConnectionSecretTaken) instead of overwriting it, unless the holder is gone or has finished with the same target
(a re-run, a Replace, a scheduled refresh): then it takes the Secret over. Preflight asks the same question
(check_connection_secrets) before hours of restoring; the answer given when writing is the one that counts.
"""

from pydantic import ValidationError

from ..api.models import AuroraRestoreSpec, PreflightCheck
from ..api.phase import TERMINAL_PHASES, Phase
from ..db.engines import connection_uri
from ..errors import TerminalError
from ..k8s.secrets import SecretHolder, SecretWriter
from .access import MasterAccess, Missing, master_access, restored_cluster
from .context import RestoreContext, restored_identifier
from .notify import publish_success
from .outcomes import Advance, Outcome, Wait

CONNECTION_SECRET_TAKEN = "ConnectionSecretTaken"


def publish(ctx: RestoreContext) -> Outcome:
    """Turn on target.deletionProtection (ModifyDBCluster) now that the cluster is verified and has its final name;
    then write the connection Secrets (master and per user), each in one request. Waits for a user's password
    Secret that does not exist yet; fails when the cluster or an instance is in a failure status
    (restored_cluster), or when a Secret belongs to another restore or to no restore. Then queues the Succeeded
    notification and makes its first attempt, with the endpoints (steps/notify.py): its outcome never holds the
    restore back. Next: CleaningUp."""
    protecting = protect(ctx)
    if protecting is not None:
        return protecting
    if not connection_secret_fields(ctx):
        cluster = ctx.target.rds.describe_cluster(ctx.cluster_identifier) if ctx.spec.notification else None
        return Advance(Phase.CLEANING_UP, "nothing to publish", updates=publish_success(ctx, cluster))
    cluster = restored_cluster(ctx)
    try:
        access = master_access(ctx, cluster)
        written = write_connection_secrets(ctx, cluster, access)
    except Missing as missing:
        return Wait(str(missing))
    return Advance(Phase.CLEANING_UP, f"connection Secret(s) {', '.join(written)} written",
                   updates={"connection_secrets": written, **publish_success(ctx, cluster)})


def protect(ctx: RestoreContext) -> Wait | None:
    """spec.target.deletionProtection, set only now: until the cluster was verified (and swapped in) a failure or
    a cancel must be able to delete it. A re-run sends nothing once AWS shows it on."""
    if not ctx.spec.target.deletion_protection:
        return None
    cluster = restored_cluster(ctx)
    if cluster.get("DeletionProtection"):
        return None
    ctx.target.rds.modify_cluster(cluster["DBClusterIdentifier"], DeletionProtection=True)
    return Wait(f"cluster {cluster['DBClusterIdentifier']}: turning on deletion protection (spec.target."
                f"deletionProtection)", delay=0)


def connection_secret_fields(ctx: RestoreContext) -> list[tuple[str, str]]:
    """(spec field, Secret name) of every connection Secret the spec asks for."""
    fields = [("spec.connectionSecret", ctx.spec.connection_secret.name)] if ctx.spec.connection_secret else []
    return fields + [(f"spec.users[{index}].connectionSecret", user.connection_secret.name)
                     for index, user in enumerate(ctx.spec.users) if user.connection_secret]


def write_connection_secrets(ctx: RestoreContext, cluster: dict, access: MasterAccess) -> list[str]:
    """The master's connection Secret and one per user that asks for it; garbage-collected only with Delete.
    Every Secret is claimed before the first is written, so a refused one leaves all of them as they were."""
    owner = ctx.resource if ctx.spec.deletion_policy == "Delete" else None
    endpoint = access.endpoint
    wanted = []
    if ctx.spec.connection_secret:
        wanted.append(("spec.connectionSecret", ctx.spec.connection_secret.name, access.credentials.username,
                       access.credentials.password, endpoint.database))
    for index, user in enumerate(ctx.spec.users):
        if user.connection_secret:
            ref = user.password_secret_ref
            field = f"spec.users[{index}].passwordSecretRef"
            password = ctx.secrets.read_key(ref.name, ref.key, field)
            if password is None:
                raise Missing(f"waiting for Secret {ctx.namespace}/{ref.name} ({field})")
            wanted.append((f"spec.users[{index}].connectionSecret", user.connection_secret.name, user.name, password,
                           (user.databases or [endpoint.database])[0]))
    checked = {name: claim_connection_secret(ctx, field, name) for field, name, *_ in wanted}
    writer = SecretWriter(uid=ctx.uid, name=ctx.name)
    for _, name, username, password, database in wanted:
        data = {
            "engine": cluster["Engine"],
            "endpoint": cluster["Endpoint"],
            "readerEndpoint": cluster.get("ReaderEndpoint") or cluster["Endpoint"],
            "port": str(cluster["Port"]),
            "database": database or "",
            "username": username,
            "password": password,
            "uri": connection_uri(cluster["Engine"], cluster["Endpoint"], cluster["Port"], database, username,
                                  password),
        }
        ctx.secrets.write(name, data, owner, writer, checked[name])
    return [name for _, name, *_ in wanted]


def claim_connection_secret(ctx: RestoreContext, field: str, name: str) -> SecretHolder | None:
    """The Secret's holder as checked (None: it does not exist) when this restore may write it; raises
    TerminalError naming the Secret and who holds it when not."""
    holder = ctx.secrets.holder_of(name)
    refusal = connection_secret_refusal(ctx, field, name, holder)
    if refusal is not None:
        raise TerminalError(*refusal)
    return holder


def check_connection_secrets(ctx: RestoreContext):
    """Preflight: every connection Secret is free, this restore's, or may be taken over, found before anything
    is copied or restored. Publishing asks again when it writes: another restore may take one meanwhile."""
    for field, name in connection_secret_fields(ctx):
        holder = ctx.secrets.holder_of(name)
        refusal = connection_secret_refusal(ctx, field, name, holder)
        if refusal is not None:
            reason, message = refusal
            yield PreflightCheck(name=field, passed=False, message=message, reason=reason)
        elif holder is None:
            yield PreflightCheck(name=field, passed=True, message=f"Secret {name} does not exist yet")
        elif holder.restore_uid in (None, ctx.uid):
            yield PreflightCheck(name=field, passed=True, message=f"Secret {name} was written by the operator")
        else:
            yield PreflightCheck(name=field, passed=True, message=f"Secret {name} is taken over from AuroraRestore "
                                 f"{holder.restore_name} (gone, or finished with the same target)")


def connection_secret_refusal(
    ctx: RestoreContext, field: str, name: str, holder: SecretHolder | None
) -> tuple[str, str] | None:
    """Why this restore may not write Secret `name` (named by `field`), as (reason, message); None when it may:
    the Secret does not exist, carries this restore's UID or none (written before Secrets carried one), or its
    restore is gone (deleted, or being deleted) or has finished with the same target region and cluster."""
    secret = f"{ctx.namespace}/{name}"
    if holder is None:
        return None
    if not holder.managed:
        return "SecretNotOurs", (f"{field}: Secret {secret} exists and was not written by this operator, so it is "
                                 f"left untouched: choose another name, or delete that Secret")
    if holder.restore_uid in (None, ctx.uid):
        return None
    if holder.restore_name is None:
        return CONNECTION_SECRET_TAKEN, (
            f"{field}: Secret {secret} belongs to the restore with UID {holder.restore_uid}, but its annotation "
            f"naming that restore is gone: choose another name, or delete the Secret")
    other = ctx.restores.get(ctx.namespace, holder.restore_name)
    metadata = (other or {}).get("metadata") or {}
    if metadata.get("uid") != holder.restore_uid or metadata.get("deletionTimestamp"):
        return None  # its restore is gone (a new one may have the same name) or going
    phase = (other.get("status") or {}).get("phase") or "New"
    if phase not in TERMINAL_PHASES:
        why = f"has not finished (phase {phase})"
    elif same_target(ctx, other):
        return None
    else:
        why = f"restored another target ({phase})"
    return CONNECTION_SECRET_TAKEN, (
        f"{field}: Secret {secret} belongs to AuroraRestore {holder.restore_name}, which {why}: choose another "
        f"name, or delete AuroraRestore {holder.restore_name} to hand the Secret over")


def same_target(ctx: RestoreContext, other: dict) -> bool:
    """The other restore aimed at this restore's target region and cluster (a spec that does not validate never
    wrote a Secret, so it aims at nothing)."""
    try:
        spec = AuroraRestoreSpec.model_validate(other.get("spec") or {})
    except ValidationError:
        return False
    other_uid = (other.get("metadata") or {}).get("uid") or ""
    return (spec.target_region, restored_identifier(spec, other_uid)) == (ctx.spec.target_region,
                                                                          ctx.target_identifier)
