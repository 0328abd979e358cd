"""Verifying: prove the restored database answers before anything depends on it."""

from ..api.models import QueryResult, VerificationStatus
from ..api.phase import Phase
from ..db.connection import redact
from ..db.engines import sql_module
from ..errors import RetryableError, TerminalError
from .access import Missing, master_access, restored_cluster
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait


def verify(ctx: RestoreContext) -> Outcome:
    """Connect as master over TLS, run SELECT 1 and each spec.verification query in a read-only transaction.

    Runs on the restored cluster before any swap, so a Replace touches the existing target only once its
    successor answers. An unreachable database is retried with backoff until spec.timeout. Next: SwappingTarget
    (Replace) or Publishing. Fails naming the query at fault, or when the cluster or an instance is in a failure
    status (restored_cluster).
    """
    next_phase = Phase.SWAPPING_TARGET if ctx.replacing else Phase.PUBLISHING
    if not ctx.spec.needs_database_access:
        return Advance(next_phase, "no database verification requested")
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

    updates = {"verification": VerificationStatus(passed_at=ctx.now, results=results)}
    return Advance(next_phase, f"verified with {len(results) + 1} query(ies)", updates=updates)
