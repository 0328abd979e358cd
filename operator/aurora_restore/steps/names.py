"""Every AWS name the operator makes up, derived from the target and the restore's UID.

Deriving (never choosing at random) is what lets a step that runs again after a crash find what it made. RDS
identifiers of clusters, instances and cluster snapshots are 1-63 letters, digits or hyphens, start with a
letter, never end with a hyphen nor hold two in a row (the API reference's constraints for
DBClusterIdentifier, NewDBClusterIdentifier, DBInstanceIdentifier and DBClusterSnapshotIdentifier); the target
identifier is shortened, never the suffix that makes a name unique.
"""

import re

RDS_IDENTIFIER_MAX = 63
# RDS tag values are 1-256 Unicode characters (the API reference, Tag.Value).
RDS_TAG_VALUE_MAX = 256
# The same rule as the CRD's pattern, for names the operator builds itself.
RDS_IDENTIFIER_RULE = re.compile(r"^[a-z](-?[a-z0-9])*$")
COPY_PREFIX = "aurora-restore-"


def short_uid(uid: str) -> str:
    """The first 8 hex digits of the UID: unique enough beside a target name, and readable."""
    return uid.replace("-", "")[:8]


def derived(base: str, suffix: str) -> str:
    """`base-suffix` within 63 characters: `base` is cut (and stripped of a trailing hyphen) to make room."""
    room = RDS_IDENTIFIER_MAX - len(suffix) - 1
    return f"{base[:room].rstrip('-')}-{suffix}"


def copied_snapshot(uid: str) -> str:
    """The copy of the source snapshot in the target region and account (51 characters)."""
    return f"{COPY_PREFIX}{uid}"


def staged_snapshot(uid: str) -> str:
    """The target account's in-region copy of a shared snapshot, before it crosses regions."""
    return f"{COPY_PREFIX}{uid}-stage"


def shared_snapshot(uid: str) -> str:
    """The manual copy made in the source account when an automated snapshot must be shared."""
    return f"{COPY_PREFIX}{uid}-share"


def temporary_cluster(target: str, uid: str) -> str:
    """Where a Replace restores and verifies the new cluster before the swap gives it the target's name."""
    return derived(target, f"restore-{short_uid(uid)}")


def drill_cluster(target: str, uid: str) -> str:
    """A drill's own cluster: beside the target's name, never it, so a drill never meets a real cluster."""
    return derived(target, f"drill-{short_uid(uid)}")


def previous_cluster(target: str, uid: str) -> str:
    """What the swap renames the replaced cluster to, until RetiringPrevious deletes it."""
    return derived(target, f"previous-{short_uid(uid)}")


def final_snapshot(target: str, uid: str) -> str:
    """The final snapshot taken when the replaced cluster is deleted."""
    return derived(target, f"final-{short_uid(uid)}")


def instance(target: str, uid: str, number: int, replacing: bool) -> str:
    """Instance `number` of the restored cluster. Instances keep their names through a rename, so those of a
    Replace carry the UID: they can never collide with the instances of the cluster they replace."""
    return derived(target, f"{short_uid(uid)}-{number}" if replacing else str(number))


def tag_value(value: str) -> str:
    """A value cut to what an RDS tag holds."""
    return value[:RDS_TAG_VALUE_MAX]


def is_valid_identifier(name: str) -> bool:
    return len(name) <= RDS_IDENTIFIER_MAX and RDS_IDENTIFIER_RULE.match(name) is not None
