"""ResolvingSnapshot and CopyingSnapshot: find the source snapshot, then bring it into the target region."""

import random
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Any

from ..api.duration import parse_duration
from ..api.models import CopiedSnapshotStatus, LatestSnapshot, SnapshotStatus
from ..api.phase import Phase
from ..aws.errors import KMS_KEY_CODES
from ..aws.arn import account_of, region_of
from ..aws.rds import AVAILABLE, SNAPSHOT_FAILED_STATUSES, tags_of
from ..errors import RetryableError, TerminalError
from . import names
from .clone import resolve_clone_source
from .context import OUTPUT_SNAPSHOT_ROLE, SNAPSHOT_ROLE_TAG, RestoreContext
from .drill import restore_point_updates
from .outcomes import Advance, Outcome, Wait

# The target account's AWS-managed RDS key. AWS refuses to share a snapshot encrypted with it, but the intermediate
# copy of a cross-account, cross-region restore belongs to the target account and is never shared, so it may use it.
AWS_MANAGED_RDS_KEY = "alias/aws/rds"


def staged_copy_key(ctx: RestoreContext) -> str:
    """The key of the intermediate copy in the source region: spec.copy.sourceRegionKmsKeyId, else the target
    account's alias/aws/rds there."""
    return ctx.spec.copy_.source_region_kms_key_id or AWS_MANAGED_RDS_KEY


def resolve_snapshot(ctx: RestoreContext) -> Outcome:
    """Pin the source snapshot in status and wait until it is available.

    Calls DescribeDBClusterSnapshots (every page for `latest`), as the source role. For a point-in-time restore,
    checks the source cluster and the time instead. Next: Preflight. Fails when the snapshot does not exist or
    nothing matches. For a clone, records the source cluster as the source side sees it (steps/clone.py).
    """
    source = ctx.spec.source
    if source.point_in_time is not None:
        return check_point_in_time(ctx)
    if source.clone is not None:
        return resolve_clone_source(ctx)
    if ctx.status.snapshot is not None:
        snapshot = ctx.source.rds.describe_snapshot(ctx.status.snapshot.identifier)
        if snapshot is None:
            raise TerminalError(
                "SnapshotNotFound", f"snapshot {ctx.status.snapshot.identifier!r} disappeared from {source.region}"
            )
    elif source.snapshot_identifier:
        snapshot = ctx.source.rds.describe_snapshot(source.snapshot_identifier)
        if snapshot is None:
            raise TerminalError(
                "SnapshotNotFound",
                f"spec.source.snapshotIdentifier {source.snapshot_identifier!r}: "
                f"no such DB cluster snapshot in {source.region}",
            )
    else:
        snapshot = pick_matching_snapshot(ctx, source.latest)

    pinned = snapshot_status(snapshot, source.region)
    status = snapshot.get("Status", "")
    if status in SNAPSHOT_FAILED_STATUSES:
        raise TerminalError("SnapshotFailed", f"snapshot {pinned.identifier!r} is {status}")
    if status != AVAILABLE:
        progress = snapshot.get("PercentProgress")
        detail = f" ({progress}%)" if progress is not None else ""
        return Wait(f"snapshot {pinned.identifier} is {status}{detail}", updates={"snapshot": pinned})
    return Advance(Phase.PREFLIGHT, f"snapshot {pinned.identifier} chosen", updates={"snapshot": pinned})


def check_point_in_time(ctx: RestoreContext) -> Outcome:
    """The source cluster exists and the requested time lies within its restorable window, which RDS reports as
    EarliestRestorableTime to LatestRestorableTime (the latter trails the present by about five minutes).

    A restoreTime before the window, or still in the future, fails. One that has passed but is not restorable
    yet (after LatestRestorableTime) is waited for: the window reaches it within minutes. useLatestRestorableTime
    restores with RDS's own flag, so the moment is RDS's latest when the restore starts.
    """
    pit = ctx.spec.source.point_in_time
    cluster = ctx.source.rds.describe_cluster(pit.cluster_identifier)
    if cluster is None:
        raise TerminalError(
            "SourceClusterNotFound",
            f"spec.source.pointInTime.clusterIdentifier {pit.cluster_identifier!r}: no such cluster in "
            f"{ctx.spec.source.region}",
        )
    earliest, latest = cluster.get("EarliestRestorableTime"), cluster.get("LatestRestorableTime")
    if latest is None:
        return Wait(f"cluster {pit.cluster_identifier} reports no LatestRestorableTime yet (no backup so far)")
    latest = _aware(latest)
    if pit.restore_time is None:
        return Advance(Phase.PREFLIGHT, f"cluster {pit.cluster_identifier} can be restored to its latest "
                       f"restorable time (now {latest.isoformat()})", updates=restore_point_updates(ctx, latest))
    wanted = _aware(pit.restore_time)
    window = f"({_aware(earliest).isoformat() if earliest else '?'} to {latest.isoformat()})"
    field = f"spec.source.pointInTime.restoreTime {wanted.isoformat()}"
    if (earliest and wanted < _aware(earliest)) or wanted > ctx.now:
        raise TerminalError(
            "RestoreTimeOutOfRange",
            f"{field} is outside the restorable window of {pit.cluster_identifier!r} {window}"
            + ("; it is in the future" if wanted > ctx.now else ""),
        )
    if wanted > latest:
        return Wait(f"{field} is not restorable yet: the LatestRestorableTime of {pit.cluster_identifier} is "
                    f"{latest.isoformat()} (it trails the present by a few minutes)")
    return Advance(Phase.PREFLIGHT, f"cluster {pit.cluster_identifier} can be restored to {wanted.isoformat()}")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def pick_matching_snapshot(ctx: RestoreContext, latest: LatestSnapshot) -> dict[str, Any]:
    """The snapshot of the cluster that passes every filter of `latest`: the newest (by SnapshotCreateTime), or
    with pick random any of them, uniformly (drawn once: resolve_snapshot pins it in status.snapshot, so a later
    pass or a restart restores the same one)."""
    candidates = ctx.source.rds.list_cluster_snapshots(latest.cluster_identifier, latest.snapshot_type)
    oldest_allowed = ctx.now - parse_duration(latest.max_age) if latest.max_age else None
    matching = [s for s in candidates if _matches(s, latest, oldest_allowed)]
    if not matching:
        filters = [f"snapshotType={latest.snapshot_type}"]
        if latest.name_pattern:
            filters.append(f"namePattern={latest.name_pattern}")
        if latest.tags:
            filters.append(f"tags={latest.tags}")
        if latest.max_age:
            filters.append(f"maxAge={latest.max_age}")
        raise TerminalError(
            "NoMatchingSnapshot",
            f"spec.source.latest: none of the {len(candidates)} snapshots of cluster "
            f"{latest.cluster_identifier!r} in {ctx.spec.source.region} matches {', '.join(filters)}",
        )
    if latest.pick == "random":
        rng = ctx.rng or random.SystemRandom()
        # sorted, so that a seeded draw is repeatable whatever order AWS listed them in
        return rng.choice(sorted(matching, key=lambda s: (_created_at(s), s["DBClusterSnapshotIdentifier"])))
    return max(matching, key=_created_at)


def _matches(snapshot: dict[str, Any], latest: LatestSnapshot, oldest_allowed: datetime | None) -> bool:
    if snapshot.get("DBClusterIdentifier") != latest.cluster_identifier:
        return False
    if not latest.include_operator_snapshots and made_by_operator(snapshot):
        return False
    if latest.snapshot_type != "any" and snapshot.get("SnapshotType") != latest.snapshot_type:
        return False
    name = snapshot["DBClusterSnapshotIdentifier"].rsplit(":", 1)[-1]
    if latest.name_pattern and not fnmatchcase(name, latest.name_pattern):
        return False
    tags = tags_of(snapshot)
    if any(tags.get(key) != value for key, value in latest.tags.items()):
        return False
    if snapshot.get("Status") in SNAPSHOT_FAILED_STATUSES:
        return False
    return oldest_allowed is None or _created_at(snapshot) >= oldest_allowed


def made_by_operator(snapshot: dict[str, Any]) -> bool:
    """A copy or a final snapshot this operator took (its snapshot-role tag, or the copies' name prefix):
    another restore's temporary copy must never be chosen, since that restore deletes it. Snapshots of a cluster
    the operator restored carry its UID tag too (CopyTagsToSnapshot), and stay candidates; so do available output
    snapshots (role `output`, spec.output.snapshot): a product made to be restored from. One still being made is
    skipped: its restore deletes it if it fails."""
    name = snapshot["DBClusterSnapshotIdentifier"].rsplit(":", 1)[-1]
    role = tags_of(snapshot).get(SNAPSHOT_ROLE_TAG)
    if role == OUTPUT_SNAPSHOT_ROLE and snapshot.get("Status") == AVAILABLE:
        return False
    return role is not None or name.startswith(names.COPY_PREFIX)


def _created_at(snapshot: dict[str, Any]) -> datetime:
    created = snapshot.get("SnapshotCreateTime")
    if created is None:  # still being created: it is the newest there is
        return datetime.max.replace(tzinfo=timezone.utc)
    return created if created.tzinfo else created.replace(tzinfo=timezone.utc)


def snapshot_status(snapshot: dict[str, Any], region: str) -> SnapshotStatus:
    return SnapshotStatus(
        identifier=snapshot["DBClusterSnapshotIdentifier"],
        arn=snapshot["DBClusterSnapshotArn"],
        region=region,
        cluster_identifier=snapshot.get("DBClusterIdentifier"),
        created_at=snapshot.get("SnapshotCreateTime"),
        engine=snapshot.get("Engine"),
        engine_version=snapshot.get("EngineVersion"),
        encrypted=snapshot.get("StorageEncrypted"),
        kms_key_id=snapshot.get("KmsKeyId"),
        snapshot_type=snapshot.get("SnapshotType"),
    )


def copy_snapshot(ctx: RestoreContext) -> Outcome:
    """Copy the pinned snapshot into the target region and account, and wait until the copy is available.

    Runs when the target region or account differs. Calls CopyDBClusterSnapshot once per copy as the target
    identity (names derive from the restore's UID, so a re-run finds them). AWS copies a snapshot shared by
    another account only within its region, so a cross-account, cross-region restore copies twice: first in the
    source region (with spec.copy.sourceRegionKmsKeyId, else the target account's alias/aws/rds), then from that
    copy into the target region.
    Next: RestoringCluster. Fails when a KMS key is missing or unusable.
    """
    pinned, shared = ctx.status.snapshot, ctx.status.shared_snapshot
    source_arn = shared.arn if shared else pinned.arn
    updates = {}
    if ctx.spec.cross_account and ctx.spec.target_region != ctx.spec.source.region:
        staged, progress = ensure_copy(
            ctx, ctx.staging.rds, ctx.staged_snapshot_identifier, source_arn,
            staged_copy_key(ctx), "spec.copy.sourceRegionKmsKeyId",
        )
        updates["staged_snapshot"] = staged
        if progress is not None:
            return Wait(f"copying shared snapshot {pinned.identifier} within {staged.region}: {progress}%",
                        updates=updates)
        source_arn = staged.arn
    copied, progress = ensure_copy(
        ctx, ctx.target.rds, ctx.copied_snapshot_identifier, source_arn, ctx.spec.copy_.kms_key_id, "spec.copy.kmsKeyId"
    )
    updates["copied_snapshot"] = copied
    if progress is not None:
        return Wait(f"copying snapshot {pinned.identifier} to {copied.region}: {progress}%", updates=updates)
    return Advance(Phase.RESTORING_CLUSTER, f"snapshot copied to {copied.region} as {copied.identifier}",
                   updates=updates)


def ensure_copy(
    ctx: RestoreContext, rds, identifier: str, source_arn: str, kms_key_id: str | None, kms_field: str
) -> tuple[CopiedSnapshotStatus, int | None]:
    """Start the copy `identifier` of `source_arn` in rds.region unless it exists.

    Returns its status record and its progress in percent, or None once it is available."""
    pinned = ctx.status.snapshot
    copy = rds.describe_snapshot(identifier)
    if copy is None:
        if not pinned.encrypted:
            # AWS refuses KmsKeyId when copying an unencrypted snapshot; the restore encrypts the cluster instead.
            kms_key_id = None
        elif not kms_key_id:
            raise TerminalError(
                "KmsKeyRequired",
                f"{kms_field} is required: snapshot {pinned.identifier!r} is encrypted and its copy in "
                f"{rds.region} must be encrypted with a KMS key of that region",
            )
        try:
            copy = rds.copy_snapshot(
                source_arn=source_arn,
                source_region=region_of(source_arn) or ctx.spec.source.region,
                identifier=identifier,
                kms_key_id=kms_key_id,
                copy_tags=ctx.spec.copy_.copy_tags,
                tags=ctx.snapshot_tags("copy"),
            )
        except TerminalError as error:
            if error.reason == "DBClusterSnapshotAlreadyExistsFault":
                # Our own copy whose answer was lost (botocore retried it), or a describe that does not see it
                # yet: the next pass finds it and checks it is ours (CopyNameTaken otherwise).
                raise RetryableError("CopyAppeared", error.message) from None
            if error.reason in KMS_KEY_CODES:
                owner = account_of(source_arn)
                shared = (f" (or the KMS key of the snapshot shared by account {owner} does not let the target "
                          f"account use it: see that key's policy)"
                          if ctx.spec.cross_account and owner == ctx.spec.source.account_id else "")
                raise TerminalError(
                    "KmsKeyNotUsable",
                    f"{kms_field} {kms_key_id!r} cannot be used in {rds.region}{shared}: {error.message}",
                ) from None
            raise
    elif not ctx.owns(copy):
        raise TerminalError(
            "CopyNameTaken",
            f"a snapshot named {identifier!r} exists in {rds.region} but was not made by this restore; left untouched",
        )
    record = CopiedSnapshotStatus(identifier=identifier, arn=copy.get("DBClusterSnapshotArn"), region=rds.region)
    status = copy.get("Status", "")
    if status in SNAPSHOT_FAILED_STATUSES:
        raise TerminalError("CopyFailed", f"copy {identifier!r} of snapshot {pinned.identifier!r} is {status}")
    return record, None if status == AVAILABLE else (copy.get("PercentProgress") or 0)
