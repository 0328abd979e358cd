"""Publishing: hand out what applications use to reach the restored cluster, once it has its final name.

Runs after Verifying, and after SwappingTarget with Replace, so the connection Secrets carry the endpoints the
cluster has for good (a rename changes them). Later features (notifications, output snapshots) belong here too.
"""

from ..api.phase import Phase
from ..db.engines import connection_uri
from .access import MasterAccess, Missing, master_access, restored_cluster
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait


def publish(ctx: RestoreContext) -> Outcome:
    """Write the connection Secrets (master and per user), each in one request. Waits for a user's password
    Secret that does not exist yet; fails when the cluster or an instance is in a failure status
    (restored_cluster). Next: CleaningUp."""
    wanted = ctx.spec.connection_secret is not None or any(user.connection_secret for user in ctx.spec.users)
    if not wanted:
        return Advance(Phase.CLEANING_UP, "nothing to publish")
    cluster = restored_cluster(ctx)
    try:
        access = master_access(ctx, cluster)
        written = write_connection_secrets(ctx, cluster, access)
    except Missing as missing:
        return Wait(str(missing))
    return Advance(Phase.CLEANING_UP, f"connection Secret(s) {', '.join(written)} written",
                   updates={"connection_secrets": written})


def write_connection_secrets(ctx: RestoreContext, cluster: dict, access: MasterAccess) -> list[str]:
    """The master's connection Secret and one per user that asks for it; garbage-collected only with Delete."""
    owner = ctx.resource if ctx.spec.deletion_policy == "Delete" else None
    endpoint = access.endpoint
    wanted = []
    if ctx.spec.connection_secret:
        wanted.append((ctx.spec.connection_secret.name, access.credentials.username, access.credentials.password,
                       endpoint.database))
    for index, user in enumerate(ctx.spec.users):
        if user.connection_secret:
            ref = user.password_secret_ref
            field = f"spec.users[{index}].passwordSecretRef"
            password = ctx.secrets.read_key(ref.name, ref.key, field)
            if password is None:
                raise Missing(f"waiting for Secret {ctx.namespace}/{ref.name} ({field})")
            wanted.append((user.connection_secret.name, user.name, password,
                           (user.databases or [endpoint.database])[0]))
    for name, username, password, database in wanted:
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
        ctx.secrets.write(name, data, owner)
    return [name for name, *_ in wanted]
