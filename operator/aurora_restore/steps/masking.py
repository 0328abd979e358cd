"""Masking: spec.masking's rules applied to the restored database before anything is exposed, then the database
users, which ConfiguringAccess leaves for here when masking is asked for.

The HMAC key is read when needed from its Secret and never stored in status, events, logs or error messages.
"""

from dataclasses import replace

from ..api.models import MaskingStatus, MaskingTableStatus
from ..api.phase import Phase
from ..db.connection import redact
from ..db.engines import sql_module
from ..db.masking import (
    KEYED_STRATEGIES,
    MASKING_ENGINES,
    KeyWouldBeLogged,
    RewriteSkipped,
    hmac_pads,
    key_fingerprint,
    key_problem,
    rule_problems,
    table_ref,
    tables_of,
)
from ..errors import RetryableError, TerminalError
from .access import MasterAccess, Missing, configure_user, master_access, restored_cluster
from .context import RestoreContext
from .outcomes import Advance, Outcome, Wait
from .route import next_phase

# A masking UPDATE or rewrite of a large table takes longer than a verification query: at least this long is
# given to each statement (seconds).
MASKING_STATEMENT_TIMEOUT = 3600


def mask_data(ctx: RestoreContext) -> Outcome:
    """Check every rule against information_schema, then per table (one per turn, progress in status.masking):
    its rules and its journal row in one transaction as the master user, and a rewrite of the table (VACUUM FULL
    / ALTER TABLE ... FORCE) so no unmasked row version stays in its pages. Once status records completion: drop
    the journal and create or update the database users (spec.users).

    Resumable at any instant: a table whose journal row exists (committed with its masking) is never masked again,
    even when the operator was killed before status said so; a rewrite is harmless to repeat. Waits for the
    Secrets it needs. Next: RunningHooks or Verifying (steps/route.py). Fails before any change when a rule names a
    missing table or column, a `where` the database will not plan (EXPLAIN) or a keyed strategy cannot write the
    column (MaskingRuleInvalid, every problem at once), and for a hash key under 16 bytes (MaskingKeyInvalid).
    Fails with no change to the table at hand for a key other than the one status.masking recorded before the
    first change (MaskingKeyChanged: the tables' hashes would not join), when a MySQL server log would record the
    key (MaskingKeyWouldBeLogged: the key is not sent), and when the database refuses a rule's statement for good,
    say a constant the column cannot take or a row other tables still reference (MaskingFailed: that table's
    transaction is rolled back; tables before it stay masked).
    """
    masking = ctx.spec.masking
    cluster = restored_cluster(ctx)
    try:
        access = master_access(ctx, cluster)
    except Missing as missing:
        return Wait(str(missing))
    module = sql_module(cluster["Engine"])
    engine = MASKING_ENGINES[cluster["Engine"]]
    database = masking.database or access.endpoint.database
    if database is None:
        raise TerminalError("DatabaseRequired", "spec.masking.database is required: cluster has no default database")
    timeouts = access.endpoint.timeouts
    access = replace(access, endpoint=replace(access.endpoint, timeouts=replace(
        timeouts, statement=max(timeouts.statement, MASKING_STATEMENT_TIMEOUT))))
    status = ctx.status.masking
    if status is not None and status.completed_at is not None:
        return finish(ctx, access, module, engine, database, status)

    key = read_key(ctx) if any(rule.strategy in KEYED_STRATEGIES for rule in masking.rules) else None
    if isinstance(key, Wait):
        return key
    fingerprint = key_fingerprint(key) if key is not None else None
    if fingerprint is not None and status is not None and status.key_fingerprint not in (None, fingerprint):
        raise TerminalError("MaskingKeyChanged", "the key in spec.masking.hashKeySecretRef is not the one the tables "
                            "masked so far were hashed with (status.masking.keyFingerprint): their hashes would not "
                            "join; restore afresh, or put the earlier key back")
    secrets = [access.credentials.password]
    if key is not None:
        secrets += [key.decode(errors="replace"), *(pad.hex() for pad in hmac_pads(key))]
    default_schema = engine.default_schema or database
    tables = tables_of(masking.rules, default_schema)
    current = "checking the masking rules"
    try:
        with module.connect(access.endpoint, access.credentials, database) as conn:
            schemas = sorted({ref.schema for ref, _ in tables})
            existing = engine.tables(conn, schemas)
            problems = rule_problems(masking.rules, default_schema, existing, engine.text_types, engine.fold_columns)
            problems += where_problems(conn, module, engine, masking.rules, default_schema, existing, secrets)
            if problems:
                done = "nothing was changed" if status is None else "the tables masked before stay masked"
                raise TerminalError("MaskingRuleInvalid", "; ".join(problems) + f" ({done})")
            recorded = {item.table: item for item in (status.tables if status else [])}
            entries = [recorded.get(str(ref)) or MaskingTableStatus(table=str(ref), rules=len(rules))
                       for ref, rules in tables]
            pending = [(ref, rules) for (ref, rules), item in zip(tables, entries, strict=True) if not item.rewritten]
            if status is None:  # the key's fingerprint is in status before any change
                return Wait("masking rules checked", delay=0,
                            updates={"masking": progress(entries, ctx.now, fingerprint)})
            if not pending:  # every table done, the completion not recorded yet
                return Wait("every table masked", delay=0,
                            updates={"masking": progress(entries, ctx.now, fingerprint)})
            ref, rules = pending[0]
            current = f"masking table {ref}"
            engine.ensure_journal(conn)
            done = engine.journal(conn, ctx.uid)
            if str(ref) in done:  # committed before a kill that came before the status write
                rows = done[str(ref)]
            else:
                if key is not None:
                    engine.load_key(conn, *hmac_pads(key))
                rows = engine.mask_table(conn, ctx.uid, ref, rules)
            current = f"rewriting table {ref}"
            engine.rewrite(conn, ref)
    except RewriteSkipped as skipped:
        raise TerminalError("MaskingFailed", str(skipped)) from None
    except KeyWouldBeLogged as logged:
        raise TerminalError("MaskingKeyWouldBeLogged", f"{current}: {logged}") from None
    except module.QUERY_ERRORS as error:
        detail = redact(str(error).strip(), *secrets)
        if module.is_deterministic(error) or is_refusal(error):
            raise TerminalError("MaskingFailed", f"{current}: the database refused it: {detail}") from None
        raise RetryableError("DatabaseError", f"{current}: {detail}") from None

    entries = [
        item.model_copy(update={"rows_changed": rows, "masked_at": item.masked_at or ctx.now, "rewritten": True})
        if item.table == str(ref) else item
        for item in entries
    ]
    status = progress(entries, ctx.now, fingerprint)
    return Wait(f"masked table {ref}: {rows} row(s) changed ({status.tables_done}/{status.tables_total} tables)",
                delay=0, updates={"masking": status})


def where_problems(conn, module, engine, rules, default_schema: str, existing, secrets: list[str]) -> list[str]:
    """Each `where` of a rule whose table exists, planned by the database (EXPLAIN: nothing runs), so one that is
    not valid SQL or names a missing column fails the restore before any change; other errors propagate."""
    problems = []
    for index, rule in enumerate(rules):
        ref = table_ref(rule.table, default_schema)
        if rule.where is None or ref not in existing:
            continue
        query, params = engine.where_check(ref, rule)
        try:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                cursor.fetchall()
        except module.QUERY_ERRORS as error:
            if not (module.is_deterministic(error) or is_refusal(error)):
                raise
            problems.append(f"spec.masking.rules[{index}]: the database refuses its where: "
                            + redact(str(error).strip(), *secrets))
    return problems


def progress(entries: list[MaskingTableStatus], now, fingerprint: str | None) -> MaskingStatus:
    """status.masking from its tables' entries; completed once every table is masked and rewritten."""
    return MaskingStatus(
        key_fingerprint=fingerprint,
        tables_total=len(entries),
        tables_done=sum(item.rewritten for item in entries),
        rows_changed=sum(item.rows_changed for item in entries),
        tables=entries,
        completed_at=now if all(item.rewritten for item in entries) else None,
    )


def finish(ctx: RestoreContext, access: MasterAccess, module, engine, database: str,
           status: MaskingStatus) -> Outcome:
    """After status recorded completion: the journal goes (a kill before this leaves it for the next turn), then
    the database users are configured, only now that their data is masked."""
    try:
        with module.connect(access.endpoint, access.credentials, database) as conn:
            engine.drop_journal(conn)
    except module.QUERY_ERRORS as error:
        raise RetryableError("DatabaseError", "dropping the masking journal: "
                             + redact(str(error).strip(), access.credentials.password)) from None
    try:
        users = [configure_user(ctx, access, module, user, index) for index, user in enumerate(ctx.spec.users)]
    except Missing as missing:
        return Wait(str(missing))
    detail = f"; {len(users)} user(s) configured" if users else ""
    return Advance(next_phase(ctx, Phase.MASKING),
                   f"masked {status.tables_done} table(s), {status.rows_changed} row(s) changed{detail}",
                   updates={"users": users})


def read_key(ctx: RestoreContext) -> bytes | Wait:
    """The HMAC key (its UTF-8 bytes) from spec.masking.hashKeySecretRef; a Wait while the Secret is absent."""
    ref = ctx.spec.masking.hash_key_secret_ref
    field = "spec.masking.hashKeySecretRef"
    value = ctx.secrets.read_key(ref.name, ref.key, field)
    if value is None:
        return Wait(f"waiting for Secret {ctx.namespace}/{ref.name} ({field})")
    key = value.encode()
    problem = key_problem(key)
    if problem:
        raise TerminalError("MaskingKeyInvalid", f"{field}: {problem}")
    return key


def is_refusal(error: Exception) -> bool:
    """Errors of a rule's own SQL or data that repeat on every try, beyond the engines' usual list: PostgreSQL
    integrity (23: a DELETE of referenced rows) and MySQL foreign key refusals (1451) and bad values (1366)."""
    sqlstate = getattr(error, "sqlstate", None) or ""
    if sqlstate[:2] == "23":
        return True
    code = error.args[0] if getattr(error, "args", None) else None
    return code in (1451, 1366, 1292, 1054, 1146)
