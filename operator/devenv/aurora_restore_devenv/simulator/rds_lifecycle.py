"""RDS status transitions that take time, as in AWS, where moto makes everything available.

    cluster (create, restore from snapshot or to a point in time)   creating -> available
    cluster rename (ModifyDBCluster NewDBClusterIdentifier)         renaming -> available
    cluster deletion                                                deleting -> gone
    cluster deletion with a final snapshot              backing-up -> deleting -> gone
    instance creation                                               creating -> available
    instance deletion                                               deleting -> gone
    cluster snapshot (manual, automated, final)                     creating -> available
    cluster snapshot copy                                            copying -> available

Each transition takes `settings.delay` seconds, split evenly between its phases. An object
entering one gets a `Transition` (its phases and start time); its status is computed when it
is read. The only thing in the background is transition_events.py, told of every transition
started (`on_start`): it publishes the RDS event of each end and changes no status. Objects
whose deletion finished are removed by `sweep()`, which the middleware calls before every RDS
request. With a delay of 0 no transition starts (and no event is published): moto behaves as it
always does.

While an object is in transition, actions that need it available are refused with the error
AWS gives (copying a snapshot that is still being created, deleting a cluster that still has
instances that are not being deleted, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.exceptions import (
    InvalidDBClusterSnapshotStateFault,
    InvalidDBClusterStateFault,
    RDSClientError,
)
from moto.rds.models import (
    DBCluster,
    DBClusterSnapshot,
    DBInstance,
    RDSBackend,
    rds_backends,
)

from . import automated_backups
from .rds_faults import RdsFaults
from .rds_hooks import Proceed, RdsHooks, RdsRequest
from .settings import SimulatorSettings
from .shared_snapshots import find_cluster_snapshot

# Where the transition of a moto model object is kept (an attribute moto never reads).
TRANSITION_ATTRIBUTE = "_simulated_transition"
# Where a plain moto attribute we turned into a computed property keeps its stored value.
STORED_STATUS_ATTRIBUTE = "_simulated_stored_status"
STORED_PROGRESS_ATTRIBUTE = "_simulated_stored_percent_progress"


@dataclass
class Transition:
    """The phases an object goes through, then its final status (None: it disappears)."""

    phases: tuple[str, ...]
    final: str | None
    #: Run once when an object that disappears has been removed.
    on_removed: Callable[[], None] | None = None
    #: A renamed cluster's identifier before the rename (for the rename's event message).
    previous_identifier: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    #: The same moment by the wall clock (epoch seconds): transition ends are reported in it.
    started_at_epoch: float = field(default_factory=time.time)

    def fraction_done(self, delay: float) -> float:
        if delay <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - self.started_at) / delay)

    def phase(self, delay: float) -> str | None:
        """The current phase, or None once the transition is over."""
        fraction = self.fraction_done(delay)
        if fraction >= 1.0:
            return None
        return self.phases[int(fraction * len(self.phases))]

    @property
    def removes(self) -> bool:
        return self.final is None


def transition_of(obj: Any) -> Transition | None:
    return obj.__dict__.get(TRANSITION_ATTRIBUTE)


class RdsLifecycle:
    """Starts transitions, computes statuses, refuses actions and sweeps removed objects."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        #: Forced statuses, next-create statuses, eventual consistency (the control API sets them).
        self.faults = RdsFaults()
        #: Called with (object, transition) whenever a transition starts (transition_events.py watches them).
        self.on_start: list[Callable[[Any, Transition], None]] = []

    # -- transitions ---------------------------------------------------------------------

    def start(
        self,
        obj: Any,
        phases: tuple[str, ...],
        final: str | None,
        on_removed: Callable[[], None] | None = None,
        previous_identifier: str | None = None,
    ) -> bool:
        """Put `obj` into a transition unless the delay is 0; returns whether it did."""
        if self.settings.delay <= 0:
            return False
        transition = Transition(phases, final, on_removed, previous_identifier)
        obj.__dict__[TRANSITION_ATTRIBUTE] = transition
        for listener in self.on_start:
            listener(obj, transition)
        return True

    def current_status(self, obj: Any, stored: Callable[[], str]) -> str:
        """A forced status (unless the object is being deleted), else the phase of a running
        transition, else the stored status (final once done)."""
        transition = transition_of(obj)
        forced = self.faults.forced_status(obj)
        if forced is not None and not (transition is not None and transition.removes):
            return forced
        if transition is None:
            return stored()
        phase = transition.phase(self.settings.delay)
        if phase is not None:
            return phase
        if transition.removes:
            return transition.phases[-1]  # until the next sweep removes it
        del obj.__dict__[TRANSITION_ATTRIBUTE]
        obj.status = transition.final
        return stored()

    def is_leaving(self, obj: Any) -> bool:
        """Whether `obj` is being deleted (it stays visible until its transition ends)."""
        transition = transition_of(obj)
        return transition is not None and transition.removes

    def sweep(self) -> None:
        """Remove every cluster and instance whose deletion transition is over."""
        for backend in _all_rds_backends():
            for store in (backend.clusters, backend.databases):
                for identifier, obj in list(store.items()):
                    transition = transition_of(obj)
                    if (
                        transition is not None
                        and transition.removes
                        and transition.phase(self.settings.delay) is None
                    ):
                        del store[identifier]
                        if transition.on_removed is not None:
                            transition.on_removed()

    # -- installation into moto ------------------------------------------------------------

    def install(self, hooks: RdsHooks) -> None:
        """Make moto's statuses computed, start transitions, register the state checks."""
        self._install_statuses()
        self._install_transition_starts()
        hooks.around("delete_db_instance", self.delete_instance)
        hooks.around("delete_db_cluster", self.delete_cluster)
        for action, (parameter, accepted) in SNAPSHOT_STATES_ACCEPTED.items():
            hooks.before(action, self._snapshot_availability_check(parameter, accepted))
        for action, parameter in CLUSTER_MUST_BE_AVAILABLE.items():
            hooks.before(action, self._cluster_availability_check(parameter))
        hooks.before("create_db_instance", self.refuse_instance_in_leaving_cluster)

    def _install_statuses(self) -> None:
        lifecycle = self
        moto_cluster_status: property = _original(DBCluster, "status")

        def cluster_status(cluster: DBCluster) -> str:
            return lifecycle.current_status(cluster, lambda: moto_cluster_status.fget(cluster))

        DBCluster.status = property(cluster_status, moto_cluster_status.fset)
        DBInstance.status = _computed_status(lifecycle, default="available")
        DBClusterSnapshot.status = _computed_status(lifecycle, default="available")

        def percent_progress(snapshot: DBClusterSnapshot) -> int:
            transition = transition_of(snapshot)
            if transition is not None:
                fraction = transition.fraction_done(lifecycle.settings.delay)
                if fraction < 1.0:
                    return int(fraction * 100)
            return snapshot.__dict__.get(STORED_PROGRESS_ATTRIBUTE, 100)

        def store_percent_progress(snapshot: DBClusterSnapshot, value: int) -> None:
            snapshot.__dict__[STORED_PROGRESS_ATTRIBUTE] = value

        DBClusterSnapshot.percent_progress = property(percent_progress, store_percent_progress)

    def _install_transition_starts(self) -> None:
        lifecycle = self

        def starting(method_name: str, phase: str, kind: str, identifier_attribute: str):
            moto_method = _original(RDSBackend, method_name)

            def create_in_transition(backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
                created = moto_method(backend, *args, **kwargs)
                identifier = getattr(created, identifier_attribute)
                final = lifecycle.faults.created(kind, created, identifier, backend)
                if not lifecycle.start(created, (phase,), final) and final != "available":
                    created.status = final  # a delay of 0: the failure status at once
                return created

            create_in_transition.__name__ = method_name
            setattr(RDSBackend, method_name, create_in_transition)

        starting("create_db_cluster", "creating", "cluster", "db_cluster_identifier")
        starting("create_db_instance", "creating", "instance", "db_instance_identifier")
        snapshot_id = "db_cluster_snapshot_identifier"
        starting("create_db_cluster_snapshot", "creating", "cluster-snapshot", snapshot_id)
        starting("copy_db_cluster_snapshot", "copying", "cluster-snapshot", snapshot_id)

    # -- deletions ---------------------------------------------------------------------------

    def delete_instance(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        """DeleteDBInstance: the instance stays, `deleting`, for the delay."""
        backend = request.backend
        identifier = request.params.get("DBInstanceIdentifier")
        instance = backend.databases.get(identifier)
        if instance is not None and self.is_leaving(instance):
            raise RDSClientError(
                "InvalidDBInstanceState", f"Instance {identifier} is already being deleted."
            )
        result = proceed()
        if instance is not None and self.start(instance, ("deleting",), None):
            backend.databases[identifier] = instance
        return result

    def delete_cluster(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        """DeleteDBCluster: refused while an instance is not being deleted, else the cluster
        stays `deleting` (`backing-up` first with a final snapshot) for the delay.

        moto refuses any member at all; instances that are themselves being deleted are
        hidden from it while it checks, as AWS accepts those.
        """
        backend = request.backend
        identifier = request.params.get("DBClusterIdentifier")
        cluster = backend.clusters.get(identifier)
        if cluster is None:
            return proceed()
        if self.is_leaving(cluster):
            raise InvalidDBClusterStateFault(f"Cluster {identifier} is already being deleted.")
        leaving_members = {
            member_id: member
            for member_id, member in backend.databases.items()
            if self.is_leaving(member)
            and getattr(member, "db_cluster_identifier", None) == cluster.db_cluster_identifier
        }
        for member_id in leaving_members:
            del backend.databases[member_id]
        try:
            result = proceed()
        finally:
            backend.databases.update(leaving_members)

        keep_backups = request.params.get("DeleteAutomatedBackups") is False

        def settle_automated_backups() -> None:
            """AWS removes the automated backups with the cluster by default; with
            DeleteAutomatedBackups=False they stay, as a retained automated backup."""
            if keep_backups:
                automated_backups.retain(backend, cluster)
            else:
                automated_backups.remove(backend, cluster)

        final_snapshot = request.params.get("FinalDBSnapshotIdentifier")
        phases = ("backing-up", "deleting") if final_snapshot else ("deleting",)
        if self.start(cluster, phases, None, on_removed=settle_automated_backups):
            backend.clusters[identifier] = cluster
        else:
            settle_automated_backups()
        return result

    # -- actions that need an available object -----------------------------------------------

    def _snapshot_availability_check(self, parameter: str, accepted: frozenset[str]):
        def require_available_snapshot(request: RdsRequest) -> None:
            identifier = request.params.get(parameter)
            if not identifier:
                return
            snapshot = find_cluster_snapshot(request, identifier)
            if snapshot is not None and snapshot.status not in accepted:
                raise InvalidDBClusterSnapshotStateFault(
                    f"DB cluster snapshot {identifier} is in state {snapshot.status}; "
                    f"it must be {' or '.join(sorted(accepted))} for this action."
                )

        return require_available_snapshot

    def _cluster_availability_check(self, parameter: str):
        def require_available_cluster(request: RdsRequest) -> None:
            identifier = request.params.get(parameter)
            cluster = request.backend.clusters.get(identifier) if identifier else None
            if cluster is not None and cluster.status != "available":
                raise InvalidDBClusterStateFault(
                    f"DB cluster {identifier} is in state {cluster.status}; "
                    "it must be available for this action."
                )

        return require_available_cluster

    def refuse_instance_in_leaving_cluster(self, request: RdsRequest) -> None:
        """AWS adds instances to a `creating` cluster, but not to one being deleted."""
        identifier = request.params.get("DBClusterIdentifier")
        cluster = request.backend.clusters.get(identifier) if identifier else None
        if cluster is not None and self.is_leaving(cluster):
            raise InvalidDBClusterStateFault(
                f"DB cluster {identifier} is in state {cluster.status}; "
                "instances cannot be added to it."
            )


# Action -> the parameter naming a cluster snapshot, and the states it may be in. Deleting a copy in progress
# is how AWS cancels a copy ("delete the target snapshot while it is in copying status").
SNAPSHOT_STATES_ACCEPTED = {
    "copy_db_cluster_snapshot": ("SourceDBClusterSnapshotIdentifier", frozenset({"available"})),
    "restore_db_cluster_from_snapshot": ("SnapshotIdentifier", frozenset({"available"})),
    "delete_db_cluster_snapshot": ("DBClusterSnapshotIdentifier", frozenset({"available", "copying"})),
}

# Action -> the parameter naming a cluster that must be `available`.
CLUSTER_MUST_BE_AVAILABLE = {
    "create_db_cluster_snapshot": "DBClusterIdentifier",
    "modify_db_cluster": "DBClusterIdentifier",
    "restore_db_cluster_to_point_in_time": "SourceDBClusterIdentifier",
}


def _computed_status(lifecycle: RdsLifecycle, default: str) -> property:
    """Turn moto's plain `status` attribute into one computed from the transition."""

    def status(obj: Any) -> str:
        return lifecycle.current_status(
            obj, lambda: obj.__dict__.get(STORED_STATUS_ATTRIBUTE, default)
        )

    def store_status(obj: Any, value: str) -> None:
        obj.__dict__[STORED_STATUS_ATTRIBUTE] = value

    return property(status, store_status)


# moto's own class attributes, kept so that installing twice does not wrap the wrappers.
_MOTO_ATTRIBUTES: dict[tuple[type, str], Any] = {}


def _original(cls: type, name: str) -> Any:
    return _MOTO_ATTRIBUTES.setdefault((cls, name), cls.__dict__[name])


def _all_rds_backends() -> Iterator[RDSBackend]:
    """Every RDS backend that exists (creating none: dict iteration, not moto's lookup)."""
    for regions in list(dict.values(rds_backends)):
        yield from list(dict.values(regions))
