"""RunningHooks: spec.hooks.postRestore, in order, on the restored cluster before anything depends on it.

A SQL hook (inline or from a ConfigMap) runs as the master user, its statements in one transaction with a journal
row (db/hook_journal.py), so one that committed is never run again after a crash. A Job hook runs the user's pod
template as a Job in the restore's namespace with the connection details in a Secret made for it; it is allowed
only by a policy with allowJobHooks (steps/policy.py, checked from Pending on and again before the Job is made).
Each hook's result is written to status.hooks before the next one starts.
"""

import hashlib
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..api import GROUP, KIND, VERSION
from ..api.duration import parse_duration
from ..api.models import HookStatementStatus, HookStatus, PostRestoreHook
from ..api.phase import Phase
from ..db import hook_journal, statements
from ..db.connection import Credentials, redact
from ..db.engines import sql_module
from ..errors import RetryableError, TerminalError
from ..k8s.jobs import restore_labels
from ..k8s.secrets import RESTORE_NAME_ANNOTATION
from .access import MasterAccess, Missing, master_access, restored_cluster
from .context import RestoreContext
from .outcomes import Advance, Fail, Outcome, Wait
from .policy import allowing_policy
from .route import next_phase

FAILED_REASON = "HookFailed"
FINISHED_STATES = frozenset({"Succeeded", "Failed", "TimedOut"})
JOB_NAME_LIMIT = 63  # a Job's name is also the value of its Pods' job-name label
# MySQL's and MariaDB's syntax errors (ER_PARSE_ERROR) quote the statement from where the parser stopped.
MYSQL_QUOTED_SQL = re.compile(r"near '.*' at line (\d+)")


def run_hooks(ctx: RestoreContext) -> Outcome:
    """Run the first hook of spec.hooks.postRestore not yet finished in status.hooks; when all are, move on.

    A SQL hook runs within one turn; a Job hook is created, then looked at each turn (Wait) until its Job is
    Complete or Failed or its timeout passed (then the Job is deleted: TimedOut); its Secret is deleted in every
    case. A hook that failed or timed out with onFailure Continue is reported in status and by a Warning Event
    HookFailed, and the next one runs; with onFailure Fail (the default) the restore fails with reason HookFailed
    naming spec.hooks.postRestore[i], and the later hooks do not run. Waits for a Secret or ConfigMap not there
    yet; an unreachable database is retried. Fails whatever onFailure says with NotAllowedByPolicy (a policy
    without allowJobHooks when a Job is about to be made), InvalidHookJob (a template the apiserver refuses),
    HookResourceNotOurs (a Job or Secret of that name not made by this restore for the hook), ConfigMapKeyMissing,
    or when the cluster is in a failure status (restored_cluster). Next: Verifying (steps/route.py).
    """
    hooks = ctx.spec.post_restore_hooks
    reported = {entry.name: entry for entry in ctx.status.hooks}
    for index, hook in enumerate(hooks):
        entry = reported.get(hook.name)
        if entry is not None and entry.state in FINISHED_STATES and (hook.job is None or entry.secret_deleted):
            continue
        try:
            if hook.job is not None:
                entry = job_hook(ctx, index, hook, entry)
            else:
                entry = sql_hook(ctx, index, hook)
        except Missing as missing:
            return Wait(str(missing))
        updates = {"hooks": with_entry(ctx, hooks, entry)}
        if entry.state not in FINISHED_STATES or (hook.job is not None and not entry.secret_deleted):
            return Wait(f"hook {hook.name} (spec.hooks.postRestore[{index}]) is running", updates=updates)
        if entry.state != "Succeeded":
            message = failure_message(index, hook, entry)
            if hook.on_failure == "Fail":
                return Fail(FAILED_REASON, message, updates=updates)
            if ctx.record_event is not None:
                ctx.record_event("Warning", FAILED_REASON, f"{message} (onFailure Continue: the next hook runs)")
        return Wait(f"hook {hook.name} (spec.hooks.postRestore[{index}]) {entry.state}", delay=0, updates=updates)
    try:
        drop_journals(ctx, hooks)
    except Missing as missing:
        return Wait(str(missing))
    failed = sum(entry.state != "Succeeded" for entry in ctx.status.hooks)
    detail = f", {failed} failed with onFailure Continue" if failed else ""
    return Advance(next_phase(ctx, Phase.RUNNING_HOOKS), f"{len(hooks)} post-restore hook(s) ran{detail}")


def drop_journals(ctx: RestoreContext, hooks: list[PostRestoreHook]) -> None:
    """Every hook has ended and status.hooks records it (so none runs again): drop the journal from each database
    a SQL hook ran in, so it is not in the cluster handed out or its output snapshot. Idempotent (IF EXISTS)."""
    databases = {hook.database for hook in hooks if hook.job is None}
    if not databases:
        return
    cluster = restored_cluster(ctx)
    access = master_access(ctx, cluster)
    module = sql_module(cluster["Engine"])
    for database in sorted(databases, key=lambda name: name or ""):
        try:
            with module.connect(access.endpoint, access.credentials, database or access.endpoint.database) as conn:
                hook_journal.drop_journal(conn, cluster["Engine"])
        except TerminalError as error:
            if error.reason != "DatabaseNotFound":  # a hook's database that never existed holds no journal
                raise
        except module.QUERY_ERRORS as error:
            raise RetryableError("DatabaseError", f"dropping the hooks' journal: "
                                 f"{first_line(error, access.credentials)}") from None


def with_entry(ctx: RestoreContext, hooks: list[PostRestoreHook], entry: HookStatus) -> list[HookStatus]:
    """status.hooks with `entry` in its place, in the order of the spec."""
    by_name = {item.name: item for item in ctx.status.hooks}
    by_name[entry.name] = entry
    return [by_name[hook.name] for hook in hooks if hook.name in by_name]


def failure_message(index: int, hook: PostRestoreHook, entry: HookStatus) -> str:
    verb = "timed out" if entry.state == "TimedOut" else "failed"
    return f"spec.hooks.postRestore[{index}] ({hook.name}) {verb}: {entry.error or entry.state}"


def timeout_seconds(hook: PostRestoreHook) -> int:
    return max(1, int(parse_duration(hook.timeout).total_seconds()))


# --- SQL hooks ----------------------------------------------------------------------------------------------------

def sql_hook(ctx: RestoreContext, index: int, hook: PostRestoreHook) -> HookStatus:
    """Run the hook's statements once (hook_journal) and report each; a statement's failure or timeout is the
    hook's, with the database's first line of words (redacted: no statement text, no password)."""
    field = f"spec.hooks.postRestore[{index}]"
    cluster = restored_cluster(ctx)
    access = master_access(ctx, cluster)
    text = hook.sql if hook.sql is not None else config_map_sql(ctx, hook, f"{field}.configMapRef")
    engine = cluster["Engine"]
    mysql = engine == "aurora-mysql"
    started = HookStatus(name=hook.name, kind="sql", state="Running", started_at=ctx.now)
    try:
        pieces = statements.split(text, engine)
    except statements.UnterminatedSql as error:
        return finished(started, ctx.now, "Failed", f"the SQL cannot be split into statements: {error}")
    if not pieces:
        return finished(started, ctx.now, "Failed", "the SQL holds no statement")
    for number, piece in enumerate(pieces):
        if statements.is_transaction_control(piece, mysql):
            return finished(started, ctx.now, "Failed", f"statement {number} ({statements.command_of(piece, mysql)}) "
                            "controls the transaction; a hook runs in the operator's one transaction")
    commands = [statements.command_of(piece, mysql) for piece in pieces]
    timeout = timeout_seconds(hook)
    run, timed_out, connection_lost = hook_journal.RUNNERS[engine]
    module = sql_module(engine)
    timeouts = access.endpoint.timeouts
    endpoint = replace(access.endpoint, timeouts=replace(timeouts, statement=timeout + timeouts.connect))
    database = hook.database or endpoint.database
    try:
        with module.connect(endpoint, access.credentials, database) as conn:
            results, _ = run(conn, ctx.uid, hook.name, pieces, commands, timeout)
    except TerminalError as error:
        if error.reason != "DatabaseNotFound":
            raise
        return finished(started, ctx.now, "Failed", f"{field}.database: {error.message}")
    except hook_journal.StatementFailed as failure:
        detail = first_line(failure.error, access.credentials)
        entry = started.model_copy(update={"statements": reported(failure.done)})
        if timed_out(failure.error):
            return finished(entry, ctx.now, "TimedOut", f"statement {failure.index} ({commands[failure.index]}) "
                            f"was cancelled: the hook ran longer than {hook.timeout}: {detail}")
        if connection_lost(failure.error):
            raise RetryableError("DatabaseError", f"hook {hook.name}: the connection was lost: {detail}") from None
        return finished(entry, ctx.now, "Failed", f"statement {failure.index} ({commands[failure.index]}) failed "
                        f"(the hook's transaction was rolled back): {detail}")
    except hook_journal.JournalFailed as failure:
        detail = first_line(failure.error, access.credentials)
        if connection_lost(failure.error) or timed_out(failure.error):
            raise RetryableError("DatabaseError", f"hook {hook.name}: the connection was lost: {detail}") from None
        return finished(started, ctx.now, "Failed", f"its statements ran, but the journal row could not be written "
                        f"(a hook must not drop or change table {hook_journal.JOURNAL_TABLE}), so the hook's "
                        f"transaction was rolled back: {detail}")
    except module.QUERY_ERRORS as error:  # the journal's own statements, or the commit
        raise RetryableError("DatabaseError", f"hook {hook.name}: {first_line(error, access.credentials)}") from None
    return finished(started.model_copy(update={"statements": reported(results)}), ctx.now, "Succeeded")


def reported(results: list[hook_journal.StatementResult]) -> list[HookStatementStatus]:
    return [HookStatementStatus(index=i, command=r.command or None, rows=r.rows) for i, r in enumerate(results)]


def finished(entry: HookStatus, now: datetime, state: str, error: str | None = None) -> HookStatus:
    return entry.model_copy(update={"state": state, "finished_at": now, "error": error})


def first_line(error: Exception, credentials: Credentials) -> str:
    """The driver's first line only: PostgreSQL's next lines quote the statement (LINE 1: ...); and without the
    statement text MySQL's syntax errors quote (near '...' at line N)."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return redact(MYSQL_QUOTED_SQL.sub(r"at line \1", line), credentials.password)


def config_map_sql(ctx: RestoreContext, hook: PostRestoreHook, field: str) -> str:
    ref = hook.config_map_ref
    value = ctx.config_maps.read_key(ref.name, ref.key, field) if ctx.config_maps is not None else None
    if value is None:
        raise Missing(f"waiting for ConfigMap {ctx.namespace}/{ref.name} ({field})")
    return value


# --- Job hooks ----------------------------------------------------------------------------------------------------

def job_name(restore: str, hook: str, uid: str) -> str:
    """`<restore>-hook-<hook>-<uid8>`: the same on every run, unique per restore and hook. When that is too long,
    it is cut and a digest of the hook's name added, so two hooks whose names the cut would make equal (a long
    restore name leaves few characters of the hook's) never share a Job."""
    suffix = "-" + uid.replace("-", "")[:8]
    base = f"{restore}-hook-{hook}"
    if len(base) + len(suffix) > JOB_NAME_LIMIT:
        digest = "-" + hashlib.sha256(hook.encode()).hexdigest()[:6]
        base = base[:JOB_NAME_LIMIT - len(suffix) - len(digest)].rstrip("-.") + digest
    return base + suffix


def secret_name(restore: str, hook: str, uid: str) -> str:
    return job_name(restore, hook, uid) + "-db"


def job_hook(ctx: RestoreContext, index: int, hook: PostRestoreHook, entry: HookStatus | None) -> HookStatus:
    """Create the Secret and the Job (idempotent, deterministic names), then follow the Job; once it ended,
    delete the Secret, and on a timeout the Job as well (its Pods with it)."""
    jobs = ctx.hook_jobs
    field = f"spec.hooks.postRestore[{index}].job"
    name, secret = job_name(ctx.name, hook.name, ctx.uid), secret_name(ctx.name, hook.name, ctx.uid)
    if entry is None or entry.state not in FINISHED_STATES:
        if entry is None:
            allowing_policy(ctx)  # the policies as they are now: one withdrawn meanwhile stops the Job
        job = jobs.read_job(name)
        if job is None:
            if entry is not None and entry.job_name:
                job = None  # it was made and is gone (deleted by someone): the hook failed
            else:
                cluster = restored_cluster(ctx)
                access = master_access(ctx, cluster)
                check_template(hook, field)
                jobs.create_secret(secret_body(ctx, hook, secret, access), ctx.uid)
                job = jobs.create_job(job_body(ctx, hook, name, secret), ctx.uid)
        elif entry is None:
            # Made by a turn whose status was never written: record it before anything is deleted, or a deletion
            # whose status write is lost too would leave "no entry, no Job", which reads as never made.
            return HookStatus(name=hook.name, kind="job", state="Running", started_at=ctx.now, job_name=name,
                              secret_name=secret)
        entry = entry or HookStatus(name=hook.name, kind="job", state="Running", started_at=ctx.now,
                                    job_name=name, secret_name=secret)
        state, error = job_state(job, hook, ctx.now)
        if job is None and entry.started_at is not None and \
                ctx.now >= entry.started_at + timedelta(seconds=timeout_seconds(hook)):
            state, error = "TimedOut", f"the Job did not finish within {hook.timeout}"  # deleted by a killed turn
        if state == "Running":
            return entry.model_copy(update={"job_name": name, "secret_name": secret})
        jobs.delete_secret(secret, ctx.uid)  # first: a Job deleted before a failed turn would read as vanished
        if state == "TimedOut":
            jobs.delete_job(name, ctx.uid)
        return finished(entry, ctx.now, state, error).model_copy(update={"secret_deleted": True})
    jobs.delete_secret(secret, ctx.uid)
    return entry.model_copy(update={"secret_deleted": True})


def job_state(job: dict[str, Any] | None, hook: PostRestoreHook, now: datetime) -> tuple[str, str | None]:
    """(Running|Succeeded|Failed|TimedOut, why) from the Job's Complete/Failed condition and its age."""
    if job is None:
        return "Failed", "the Job was deleted before it finished"
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "Succeeded", None
        if condition.get("type") == "Failed":
            why = condition.get("message") or condition.get("reason") or "the Job failed"
            if condition.get("reason") == "DeadlineExceeded":
                return "TimedOut", f"the Job did not finish within {hook.timeout} ({why})"
            return "Failed", f"the Job failed: {why}"
    created = job["metadata"].get("creationTimestamp")
    if created is not None:
        created_at = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        if now >= created_at + timedelta(seconds=timeout_seconds(hook)):
            return "TimedOut", f"the Job did not finish within {hook.timeout}"
    return "Running", None


def check_template(hook: PostRestoreHook, field: str) -> None:
    template = hook.job.template
    containers = (template.get("spec") or {}).get("containers") if isinstance(template, dict) else None
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise TerminalError("InvalidHookJob", f"{field}.template: a pod template needs spec.containers")


def owner_reference(ctx: RestoreContext) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": ctx.name, "uid": ctx.uid,
            "controller": True, "blockOwnerDeletion": False}


def metadata(ctx: RestoreContext, hook: PostRestoreHook, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": ctx.namespace, "labels": restore_labels(ctx.uid, hook.name),
            "annotations": {RESTORE_NAME_ANNOTATION: ctx.name}, "ownerReferences": [owner_reference(ctx)]}


def secret_body(ctx: RestoreContext, hook: PostRestoreHook, name: str, access: MasterAccess) -> dict[str, Any]:
    """The connection details the Job's containers get as environment variables."""
    endpoint = access.endpoint
    data = {"DB_HOST": endpoint.host, "DB_PORT": str(endpoint.port),
            "DB_NAME": hook.database or endpoint.database or "", "DB_USER": access.credentials.username,
            "DB_PASSWORD": access.credentials.password, "DB_ENGINE": endpoint.engine}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata(ctx, hook, name), "type": "Opaque",
            "stringData": data}


def job_body(ctx: RestoreContext, hook: PostRestoreHook, name: str, secret: str) -> dict[str, Any]:
    """The user's pod template with our labels, restartPolicy Never unless given, and envFrom the Secret on every
    container; the Job ends by itself after the timeout (activeDeadlineSeconds)."""
    template = dict(hook.job.template)
    pod_metadata = dict(template.get("metadata") or {})
    pod_metadata["labels"] = {**(pod_metadata.get("labels") or {}), **restore_labels(ctx.uid, hook.name)}
    spec = dict(template.get("spec") or {})
    spec.setdefault("restartPolicy", "Never")
    for kind in ("initContainers", "containers"):
        if isinstance(spec.get(kind), list):
            spec[kind] = [with_env_from(container, secret) for container in spec[kind]]
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": metadata(ctx, hook, name),
        "spec": {"backoffLimit": hook.job.backoff_limit, "activeDeadlineSeconds": timeout_seconds(hook),
                 "template": {**template, "metadata": pod_metadata, "spec": spec}},
    }


def with_env_from(container: Any, secret: str) -> Any:
    if not isinstance(container, dict):
        return container
    env_from = list(container.get("envFrom") or [])
    env_from.append({"secretRef": {"name": secret}})
    return {**container, "envFrom": env_from}


# --- ways out -------------------------------------------------------------------------------------------------------

def remove_hook_objects(ctx: RestoreContext) -> None:
    """On the restore's ways out (cleanup, failure, cancel): delete the Secret of every Job hook of the spec, and
    its Job if it has not ended. Found by their names (derived from the spec and the UID, not read from status,
    which a crash may have left behind) and deleted only if they carry the restore's labels; no list of the
    namespace's Secrets is needed (RBAC: get, not list)."""
    jobs = ctx.hook_jobs
    if jobs is None:
        return
    for hook in ctx.spec.post_restore_hooks:
        if hook.job is None:
            continue
        name = job_name(ctx.name, hook.name, ctx.uid)
        job = jobs.read_job(name)
        conditions = ((job or {}).get("status") or {}).get("conditions") or []
        if job is not None and not any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                                       for c in conditions):
            jobs.delete_job(name, ctx.uid)  # only if ours (k8s/jobs.py)
        jobs.delete_secret(secret_name(ctx.name, hook.name, ctx.uid), ctx.uid)
