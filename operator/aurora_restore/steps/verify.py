"""Verifying: prove the restored database answers before anything depends on it, without being able to change it.

The queries run as VERIFIER_USER (db/engines.py), a database user made for one attempt and dropped at its end,
that may only read: a query that slips past the read-only transaction (a lock, a server setting, a file) is
still refused, by privilege. Its password is random per attempt, lives in this process's memory only, and
reaches the database only as a hash.
"""

import secrets
from dataclasses import replace

from ..api.models import QueryResult, VerificationStatus
from ..api.phase import Phase
from ..db.connection import Credentials, Endpoint, redact
from ..db.engines import VERIFIER_USER, sql_module
from ..errors import RetryableError, TerminalError
from .access import MasterAccess, Missing, master_access, restored_cluster
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait
from .route import next_phase

# Rows read of a query without expectRows (with it: expectRows + 1, enough to tell too many); more are not counted.
MAX_ROWS = 10_000


def verify(ctx: RestoreContext) -> Outcome:
    """As master, create the verification user; as it, over TLS, run SELECT 1 and each spec.verification query in
    a read-only transaction; as master, drop it again, whatever the queries gave.

    Each query is one statement (the driver's protocol makes the server refuse several), read-only, ended by the
    server after spec.verification.timeout (default the database statement timeout), and read up to
    expectRows + 1 rows (MAX_ROWS without expectRows). Refused (several statements, a write, a privilege the
    verification user lacks): VerificationQueryRefused; too slow: VerificationTimedOut; anything else:
    VerificationFailed, each naming spec.verification.queries[i].

    Resumable at any instant: a verification user left by a killed attempt is dropped and made afresh by the next
    one, and the step does not end (not even Failed) before the user is dropped. Runs on the restored cluster
    before any swap, so a Replace touches the existing target only once its successor answers. An unreachable
    database is retried with backoff until spec.timeout. Next: SnapshottingOutput, SwappingTarget (Replace) or
    Publishing (steps/route.py). Fails naming the query at fault, or when the cluster or an instance is in a
    failure status (restored_cluster).
    """
    following = next_phase(ctx, Phase.VERIFYING)
    if not ctx.spec.needs_database_access:
        return Advance(following, "no database verification requested")
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
    verifier = Credentials(VERIFIER_USER, secrets.token_urlsafe(24))
    try:
        as_master(module, access, database, "creating",
                  lambda conn: module.create_verifier(conn, VERIFIER_USER, verifier.password, database))
        results = run_queries(module, endpoint, verifier, database, verification, timeout,
                              access.credentials.password)
    finally:
        as_master(module, access, database, "dropping",
                  lambda conn: module.drop_verifier(conn, VERIFIER_USER, database))

    updates = {"verification": VerificationStatus(passed_at=ctx.now, results=results)}
    return Advance(following, f"verified with {len(results) + 1} query(ies) as {VERIFIER_USER}", updates=updates)


def as_master(module, access: MasterAccess, database: str | None, doing: str, action) -> None:
    """`action(conn)` over a master connection to `database`: the server's refusal (a privilege the master lacks,
    a leftover user it may not drop) fails the restore, any other error is retried."""
    try:
        with module.connect(access.endpoint, access.credentials, database) as conn:
            action(conn)
    except module.QUERY_ERRORS as error:
        detail = redact(str(error).strip(), access.credentials.password)
        message = f"{doing} the verification user {VERIFIER_USER!r}: {detail}"
        if module.is_deterministic(error):
            raise TerminalError("DatabaseRefused", message) from None
        raise RetryableError("DatabaseError", message) from None


def run_queries(module, endpoint: Endpoint, verifier: Credentials, database: str | None, verification,
                timeout: int, master_password: str) -> list[QueryResult]:
    """SELECT 1, then each spec.verification query, connected as the verification user."""
    secret_values = (verifier.password, master_password)
    results = []
    with module.connect(endpoint, verifier, database) as conn:
        try:
            module.count_rows_read_only(conn, "SELECT 1", timeout=timeout)
        except module.QUERY_ERRORS as error:
            detail = redact(str(error).strip(), *secret_values)
            raise RetryableError("DatabaseError", f"SELECT 1 on {endpoint.describe()}: {detail}") from None
        for index, query in enumerate(verification.queries if verification else []):
            max_rows = MAX_ROWS if query.expect_rows is None else query.expect_rows + 1
            try:
                rows = module.count_rows_read_only(conn, query.sql, timeout=timeout, max_rows=max_rows)
            except module.QUERY_ERRORS as error:
                raise query_error(module, error, index, timeout, *secret_values) from None
            if query.expect_rows is not None and rows != query.expect_rows:
                returned = f"more than {query.expect_rows}" if rows > query.expect_rows else str(rows)
                raise TerminalError(
                    "VerificationFailed",
                    f"spec.verification.queries[{index}] returned {returned} row(s), expected {query.expect_rows}",
                )
            results.append(QueryResult(index=index, rows=rows))
    return results


def query_error(module, error: Exception, index: int, timeout: int, *secret_values: str) -> TerminalError:
    """The failure of spec.verification.queries[index]: refused (several statements, a write, a privilege),
    timed out, or failed, with the database's words (redacted)."""
    text = str(error).strip()
    detail = redact(text.splitlines()[0] if text else type(error).__name__, *secret_values)
    field = f"spec.verification.queries[{index}]"
    problem = module.verification_problem(error)
    if problem == "refused":
        return TerminalError(
            "VerificationQueryRefused",
            f"{field} was refused: verification runs one read-only statement per query: {detail}",
        )
    if problem == "privilege":
        return TerminalError(
            "VerificationQueryRefused",
            f"{field} was refused: the verification user {VERIFIER_USER!r} may only read: {detail}",
        )
    if problem == "timeout":
        return TerminalError("VerificationTimedOut", f"{field} ran longer than {timeout}s: {detail}")
    return TerminalError("VerificationFailed", f"{field} failed: {detail}")
