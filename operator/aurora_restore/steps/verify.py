"""Verifying: prove the restored database answers, then hand out connection Secrets."""

from ..api.models import QueryResult, VerificationStatus
from ..api.phase import Phase
from ..db.connection import redact
from ..db.engines import connection_uri, sql_module
from ..errors import RetryableError, TerminalError
from .access import MasterAccess, Missing, master_access, restored_cluster
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait


def verify(ctx: RestoreContext) -> Outcome:
    """Connect as master over TLS, run SELECT 1 and each spec.verification query in a read-only transaction.

    Only when all pass, write the connection Secrets (master and per user), each in one request. An unreachable
    database is retried with backoff until spec.timeout. Next: CleaningUp. Fails naming the query at fault.
    """
    if not ctx.spec.needs_database_access:
        return Advance(Phase.CLEANING_UP, "no database verification requested")
    cluster = restored_cluster(ctx)
    try:
        access = master_access(ctx, cluster)
    except Missing as missing:
        return Wait(str(missing))
    module = sql_module(cluster["Engine"])
    verification = ctx.spec.verification
    database = (verification.database if verification else None) or access.endpoint.database
    results = []
    with module.connect(access.endpoint, access.credentials, database) as conn:
        try:
            module.count_rows_read_only(conn, "SELECT 1")
        except module.QUERY_ERRORS as error:
            detail = redact(str(error).strip(), access.credentials.password)
            raise RetryableError("DatabaseError", f"SELECT 1 on {access.endpoint.describe()}: {detail}") from None
        for index, query in enumerate(verification.queries if verification else []):
            try:
                rows = module.count_rows_read_only(conn, query.sql)
            except module.QUERY_ERRORS as error:
                detail = redact(str(error).strip().splitlines()[0], access.credentials.password)
                raise TerminalError(
                    "VerificationFailed", f"spec.verification.queries[{index}] failed: {detail}"
                ) from None
            if query.expect_rows is not None and rows != query.expect_rows:
                raise TerminalError(
                    "VerificationFailed",
                    f"spec.verification.queries[{index}] returned {rows} row(s), expected {query.expect_rows}",
                )
            results.append(QueryResult(index=index, rows=rows))

    try:
        written = write_connection_secrets(ctx, cluster, access)
    except Missing as missing:
        return Wait(str(missing))
    updates = {
        "verification": VerificationStatus(passed_at=ctx.now, results=results),
        "connection_secrets": written,
    }
    return Advance(Phase.CLEANING_UP, f"verified with {len(results) + 1} query(ies)", updates=updates)


def write_connection_secrets(ctx: RestoreContext, cluster: dict, access: MasterAccess) -> list[str]:
    """The master's connection Secret and one per user that asks for it; garbage-collected only with Delete."""
    owner = ctx.resource if ctx.spec.deletion_policy == "Delete" else None
    endpoint = access.endpoint
    wanted = []
    if ctx.spec.connection_secret:
        wanted.append((ctx.spec.connection_secret.name, access.credentials.username, access.credentials.password,
                       endpoint.database))
    for user in ctx.spec.users:
        if user.connection_secret:
            ref = user.password_secret_ref
            field = f"spec.users[{user.name}].passwordSecretRef"
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
