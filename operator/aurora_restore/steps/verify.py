"""Verifying: prove the restored database answers before anything depends on it."""

from dataclasses import replace

from ..api.models import QueryResult, VerificationStatus
from ..api.phase import Phase
from ..db.connection import redact
from ..db.engines import sql_module
from ..errors import RetryableError, TerminalError
from .access import Missing, master_access, restored_cluster
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait

# Rows read of a query without expectRows (with it: expectRows + 1, enough to tell too many); more are not counted.
MAX_ROWS = 10_000


def verify(ctx: RestoreContext) -> Outcome:
    """Connect as master over TLS, run SELECT 1 and each spec.verification query in a read-only transaction.

    Each query is one statement (the driver's protocol makes the server refuse several), read-only, ended by the
    server after spec.verification.timeout (default the database statement timeout), and read up to
    expectRows + 1 rows (MAX_ROWS without expectRows). Refused: VerificationQueryRefused; too slow:
    VerificationTimedOut; anything else: VerificationFailed, each naming spec.verification.queries[i].

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
    timeout = (verification.timeout_seconds if verification else None) or access.endpoint.timeouts.statement
    # The server ends a query after `timeout`; the client waits a little longer, so the server's words come first.
    timeouts = access.endpoint.timeouts
    endpoint = replace(access.endpoint, timeouts=replace(timeouts, statement=timeout + timeouts.connect))
    results = []
    with module.connect(endpoint, access.credentials, database) as conn:
        try:
            module.count_rows_read_only(conn, "SELECT 1", timeout=timeout)
        except module.QUERY_ERRORS as error:
            detail = redact(str(error).strip(), access.credentials.password)
            raise RetryableError("DatabaseError", f"SELECT 1 on {access.endpoint.describe()}: {detail}") from None
        for index, query in enumerate(verification.queries if verification else []):
            max_rows = MAX_ROWS if query.expect_rows is None else query.expect_rows + 1
            try:
                rows = module.count_rows_read_only(conn, query.sql, timeout=timeout, max_rows=max_rows)
            except module.QUERY_ERRORS as error:
                raise query_error(module, error, index, timeout, access.credentials.password) from None
            if query.expect_rows is not None and rows != query.expect_rows:
                returned = f"more than {query.expect_rows}" if rows > query.expect_rows else str(rows)
                raise TerminalError(
                    "VerificationFailed",
                    f"spec.verification.queries[{index}] returned {returned} row(s), expected {query.expect_rows}",
                )
            results.append(QueryResult(index=index, rows=rows))

    updates = {"verification": VerificationStatus(passed_at=ctx.now, results=results)}
    return Advance(next_phase, f"verified with {len(results) + 1} query(ies)", updates=updates)


def query_error(module, error: Exception, index: int, timeout: int, password: str) -> TerminalError:
    """The failure of spec.verification.queries[index]: refused (several statements, a write), timed out, or
    failed, with the database's words (redacted)."""
    text = str(error).strip()
    detail = redact(text.splitlines()[0] if text else type(error).__name__, password)
    field = f"spec.verification.queries[{index}]"
    problem = module.verification_problem(error)
    if problem == "refused":
        return TerminalError(
            "VerificationQueryRefused",
            f"{field} was refused: verification runs one read-only statement per query: {detail}",
        )
    if problem == "timeout":
        return TerminalError("VerificationTimedOut", f"{field} ran longer than {timeout}s: {detail}")
    return TerminalError("VerificationFailed", f"{field} failed: {detail}")
