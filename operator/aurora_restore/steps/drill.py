"""Drills (spec.drill): restore testing that proves a snapshot restores, and measures how long and how old.

A drill restores into a cluster of its own, `<target>-drill-<uid8>` (context.restored_identifier), never the
target and never Replace, so it cannot meet a real cluster; it creates the instances, runs the verification (or,
without one, counts the cluster and its instances being available as verified), publishes its connection Secrets
and ends Succeeded. CleaningUp then measures (`measure`): RTO, the Lease wait within it, and RPO, against the
objectives given. After keepFor, the Succeeded restore's daemon deletes what the drill made (`tear_down_drill`,
from machine.run_aftercare); a drill that fails or is cancelled deletes its cluster on the way out.

Everything is found in AWS by name and the restore's UID tag, never from status: the drill's instances and
cluster (DeleteDBCluster without a final snapshot, DeleteAutomatedBackups=true), and the connection Secrets the
operator wrote for it (only those carrying this restore's UID label). The copies go in CleaningUp, as for any
restore.
"""

from datetime import datetime, timezone

from ..api.duration import parse_duration
from ..api.models import AuroraRestoreSpec, AuroraRestoreStatus, DrillStatus
from ..api.phase import Phase
from ..errors import RetryableError, TerminalError
from ..k8s.conditions import OBJECTIVE_MET, with_condition
from .context import RestoreContext
from .deletion import tear_down_cluster
from .outcomes import Outcome, Wait
from .publish import connection_secret_fields

RTO_MISSED, RPO_MISSED = "RtoObjectiveMissed", "RpoObjectiveMissed"


def restore_point_updates(ctx: RestoreContext, restore_point: datetime) -> dict:
    """A point-in-time drill to the latest restorable time: its RPO is known only while ResolvingSnapshot sees
    LatestRestorableTime (what RDS restores to a moment later, so the RPO is at most this)."""
    if not ctx.drilling or ctx.status.started_at is None:
        return {}
    return {"drill": DrillStatus(cluster_identifier=ctx.target_identifier,
                                 rpo_seconds=seconds_between(restore_point, ctx.status.started_at))}


def seconds_between(start: datetime, end: datetime) -> float:
    """end - start in seconds, never negative (a restore point a moment after the start counts as 0)."""
    return max(0.0, (_aware(end) - _aware(start)).total_seconds())


def rpo_seconds(spec: AuroraRestoreSpec, status: AuroraRestoreStatus) -> float | None:
    """The age of the data restored when the restore started: the snapshot's SnapshotCreateTime (or the restore
    point) to status.startedAt."""
    if status.started_at is None:
        return None
    pit = spec.source.point_in_time
    if spec.source.clone is not None:  # the source's LatestRestorableTime, seen by ResolvingSnapshot
        return status.drill.rpo_seconds if status.drill else None
    if pit is not None:
        if pit.restore_time is not None:
            return seconds_between(pit.restore_time, status.started_at)
        return status.drill.rpo_seconds if status.drill else None
    if status.snapshot is None or status.snapshot.created_at is None:
        return None
    return seconds_between(status.snapshot.created_at, status.started_at)


def verified_at(status: AuroraRestoreStatus) -> datetime | None:
    """When verification passed: status.verification.passedAt, else (no database access asked: the cluster and
    its instances available is what verified means) the end of the Verifying phase."""
    if status.verification is not None and status.verification.passed_at is not None:
        return status.verification.passed_at
    ends = [entry.ended_at for entry in status.history if entry.phase == Phase.VERIFYING and entry.ended_at]
    return ends[-1] if ends else None


def rto_seconds(created: datetime | None, status: AuroraRestoreStatus) -> float | None:
    """The AuroraRestore's creation (metadata.creationTimestamp) to verification passed."""
    verified = verified_at(status)
    start = created or status.started_at
    return seconds_between(start, verified) if start and verified else None


def lease_wait_seconds(status: AuroraRestoreStatus) -> float | None:
    """Time spent in Pending (waiting for the target Lease), from status.history; None when it is not there."""
    spans = [seconds_between(entry.started_at, entry.ended_at)
             for entry in status.history if entry.phase == Phase.PENDING and entry.ended_at]
    return sum(spans) if spans else None


def objective_met(rto: float | None, rpo: float | None, rto_objective: float | None,
                  rpo_objective: float | None) -> tuple[bool | None, str]:
    """(met, reason): None with no objective given; a measure that could not be taken misses its objective."""
    if rto_objective is None and rpo_objective is None:
        return None, ""
    if rto_objective is not None and (rto is None or rto > rto_objective):
        return False, RTO_MISSED
    if rpo_objective is not None and (rpo is None or rpo > rpo_objective):
        return False, RPO_MISSED
    return True, OBJECTIVE_MET


def measure(ctx: RestoreContext) -> dict:
    """CleaningUp of a drill: the status updates recording RTO, RPO, the objectives and when the drill's cluster
    goes (verification passed + keepFor), and the ObjectiveMet condition when an objective was given. It reads
    status only, so it may run from any phase after verification passed (Publishing too); {} for no drill."""
    drill, status = ctx.spec.drill, ctx.status
    if drill is None:
        return {}
    metadata = (ctx.resource or {}).get("metadata") or {}
    created = _timestamp(metadata.get("creationTimestamp"))
    rto, rpo = rto_seconds(created, status), rpo_seconds(ctx.spec, status)
    rto_objective = _seconds(drill.rto_objective)
    rpo_objective = _seconds(drill.rpo_objective)
    met, reason = objective_met(rto, rpo, rto_objective, rpo_objective)
    keep_from = verified_at(status) or ctx.now
    record = DrillStatus(
        cluster_identifier=ctx.target_identifier, rto_seconds=rto, lease_wait_seconds=lease_wait_seconds(status),
        rpo_seconds=rpo, rto_objective_seconds=rto_objective, rpo_objective_seconds=rpo_objective,
        objective_met=met, delete_after=_aware(keep_from) + parse_duration(drill.keep_for),
    )
    updates: dict = {"drill": record}
    if met is not None:
        updates["conditions"] = with_condition(
            status.conditions, OBJECTIVE_MET, "True" if met else "False", reason, objective_message(record),
            metadata.get("generation"), ctx.now)
    return updates


def objective_message(record: DrillStatus) -> str:
    """What was measured against what was asked, e.g. "RTO 1520s (objective 2700s), RPO 86400s (objective 3600s)"."""
    parts = []
    for name, value, objective in (("RTO", record.rto_seconds, record.rto_objective_seconds),
                                   ("RPO", record.rpo_seconds, record.rpo_objective_seconds)):
        measured = f"{value:.0f}s" if value is not None else "not measured"
        parts.append(f"{name} {measured}" + (f" (objective {objective:.0f}s)" if objective is not None else ""))
    return ", ".join(parts)


def missed_objective(status: AuroraRestoreStatus) -> str | None:
    """The Warning Event's message when a Succeeded drill missed an objective, else None."""
    record = status.drill
    if status.phase != Phase.SUCCEEDED or record is None or record.objective_met is not False:
        return None
    return f"drill missed its objective: {objective_message(record)}"


def teardown_owed(status: AuroraRestoreStatus) -> bool:
    """A Succeeded drill still owes the deletion of what it made (one that failed for good, cleanupError, is
    tried again only when the AuroraRestore is deleted)."""
    record = status.drill
    return (status.phase == Phase.SUCCEEDED and record is not None and record.delete_after is not None
            and record.deleted_at is None and record.cleanup_error is None)


def left_in_place(status: AuroraRestoreStatus) -> str | None:
    """The drill's cluster, when its teardown failed for good (status.drill.cleanupError) and it is still there."""
    record = status.drill
    if record is None or record.cleanup_error is None or record.deleted_at is not None:
        return None
    return record.cluster_identifier


def tear_down_drill(ctx: RestoreContext, due_now: bool = False) -> Outcome | None:
    """A Succeeded drill after keepFor (`due_now`: at once, the AuroraRestore is being deleted): one pass of
    deleting what it made; None when nothing is owed. The phase stays Succeeded (only Waits); once everything is
    gone, status.drill.deletedAt is recorded (and by machine.apply_outcome status.workCompletedAt).

    A terminal error leaves the rest as it is, recorded in status.drill.cleanupError; the daemon then stops trying.
    The deletion of the AuroraRestore (`due_now`) tries again, and while it still fails keeps waiting with backoff,
    as a cancel does: the AuroraRestore is the only record of the cluster left behind (the skip-cleanup annotation
    lets go)."""
    retrying = due_now and ctx.status.phase == Phase.SUCCEEDED and left_in_place(ctx.status) is not None
    if not teardown_owed(ctx.status) and not retrying:
        return None
    record = ctx.status.drill
    if ctx.now < record.delete_after and not due_now:
        return Wait(f"drill cluster {record.cluster_identifier} kept for validation until "
                    f"{record.delete_after.isoformat()}", delay=(record.delete_after - ctx.now).total_seconds())
    try:
        waiting = remove_drill(ctx)
    except RetryableError as error:
        return Wait(error.message, backoff=True, reason=error.reason)
    except TerminalError as error:
        failed = {"drill": record.model_copy(update={"cleanup_error": error.message})}
        if due_now:
            return Wait(f"drill cluster {record.cluster_identifier} left in place: {error.message}; the deletion "
                        f"waits until it is gone (or the annotation dbrestore.io/skip-cleanup lets go)",
                        backoff=True, reason=error.reason, updates=failed)
        return Wait(f"drill cluster {record.cluster_identifier} left in place: {error.message}", updates=failed)
    if waiting:
        return Wait(waiting)
    return Wait(f"drill finished: cluster {record.cluster_identifier} and its instances deleted",
                updates={"drill": record.model_copy(update={"deleted_at": ctx.now, "cleanup_error": None})})


def remove_drill(ctx: RestoreContext) -> str | None:
    """One pass: the drill's cluster and instances (found by name, deleted only with this restore's UID tag),
    then its connection Secrets; None once all are gone. Also the way out of a failed or cancelled drill."""
    rds = ctx.target.rds
    cluster = rds.describe_cluster(ctx.target_identifier)
    if cluster is not None and ctx.owns(cluster):
        return tear_down_cluster(rds, cluster, final_snapshot_identifier=None, label="drill cluster").message
    remove_drill_secrets(ctx)
    return None


def remove_drill_secrets(ctx: RestoreContext) -> None:
    """The connection Secrets the spec names, only where this restore wrote them (its UID label): with the
    drill's cluster gone they point at nothing. A Secret another restore took over, or nobody's, stays."""
    if ctx.secrets is None:
        return
    for _, name in connection_secret_fields(ctx):
        ctx.secrets.delete_written_by(name, ctx.uid)


def _seconds(duration: str | None) -> float | None:
    return parse_duration(duration).total_seconds() if duration else None


def _timestamp(value) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    if not value:
        return None
    return _aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

