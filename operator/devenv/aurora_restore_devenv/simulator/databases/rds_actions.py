"""How RDS actions drive the database servers (installed into moto by `rds_extensions` when databases are on).

    CreateDBCluster                   start an empty server with the master user and DatabaseName
    RestoreDBClusterFromSnapshot      start a server and load the snapshot's dump (its data, its users)
    RestoreDBClusterToPointInTime     dump the source cluster now, start a server and load that (a clone too,
                                      also of another account's cluster shared through RAM)
    CreateDBClusterSnapshot           dump the cluster's server (automated snapshots too, after the start)
    CopyDBClusterSnapshot             copy the dump (any region, any account the snapshot is shared with)
    DeleteDBClusterSnapshot           remove the dump (any other way the snapshot disappears, later)
    DeleteDBCluster                   dump for the final snapshot if one is asked for, stop, remove files
    ModifyDBCluster                   MasterUserPassword, ManageMasterUserPassword, RotateMasterUserPassword
                                      change the server's master password; NewDBClusterIdentifier keeps the
                                      server (it belongs to the cluster object, not to its name)

Work on a server runs on the cluster's own thread. Starting a server does not hold up the call: the
cluster stays `creating` until its server accepts connections, even when the simulator's transition
delay is over (an automated snapshot likewise until its dump is written). A snapshot's dump is written
before the call returns, so that it holds the data of that moment and none of the writes that follow.
With a delay of 0, where the simulator makes everything available at once, every call waits for its
work. A server that fails to start makes its cluster `failed`; a dump that fails, its snapshot.

The clusters report where their server is: Endpoint and ReaderEndpoint `localhost` (writer and reader are
the same server), Port the server's port; so do the Endpoint of their instances.
"""

from __future__ import annotations

import concurrent.futures
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.models import DBCluster, DBClusterSnapshot, DBInstance

from ..rds_hooks import Proceed, RdsHooks, RdsRequest
from ..settings import SimulatorSettings
from ..shared_snapshots import find_cluster_snapshot
from . import managed_passwords
from .fleet import ClusterDatabase, DatabaseFleet, MasterUser, SnapshotDump

#: The host name of every simulated cluster's endpoints (the servers listen on 127.0.0.1).
ENDPOINT_HOST = "localhost"
# Where a moto object keeps its server or dump (attributes moto never reads).
DATABASE_ATTRIBUTE = "_simulated_database"
DUMP_ATTRIBUTE = "_simulated_dump"


def database_of(obj: Any) -> ClusterDatabase | None:
    return obj.__dict__.get(DATABASE_ATTRIBUTE) if obj is not None else None


def dump_of(snapshot: Any) -> SnapshotDump | None:
    return snapshot.__dict__.get(DUMP_ATTRIBUTE) if snapshot is not None else None


class RdsDatabases:
    """The RDS hooks and model patches that tie moto's clusters and snapshots to the fleet."""

    def __init__(
        self,
        fleet: DatabaseFleet,
        settings: SimulatorSettings,
        find_cluster: Callable[[RdsRequest, str | None], DBCluster | None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.settings = settings
        #: The cluster a request's identifier names for its caller (clones.py: also another account's shared
        #: cluster, by ARN); by default the caller's own cluster of that identifier.
        self.find_cluster = find_cluster or (lambda request, identifier: request.backend.clusters.get(identifier))

    def install(self, hooks: RdsHooks) -> None:
        """Register the hooks; patch statuses (after the lifecycle's), endpoints and managed secrets."""
        hooks.around("create_db_cluster", self.create_cluster)
        hooks.around("restore_db_cluster_from_snapshot", self.restore_from_snapshot)
        hooks.around("restore_db_cluster_to_point_in_time", self.restore_to_point_in_time)
        hooks.around("create_db_cluster_snapshot", self.create_snapshot)
        hooks.around("copy_db_cluster_snapshot", self.copy_snapshot)
        hooks.around("delete_db_cluster_snapshot", self.delete_snapshot)
        hooks.around("delete_db_cluster", self.delete_cluster)
        hooks.around("modify_db_cluster", self.modify_cluster)
        _install_statuses()
        _install_endpoints()
        managed_passwords.install()

    # -- new clusters -----------------------------------------------------------------------------

    def create_cluster(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        result = proceed()
        self._start(request, result.result["DBCluster"], source=None, keep_source_password=False)
        return result

    def restore_from_snapshot(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        snapshot = find_cluster_snapshot(request, request.params.get("SnapshotIdentifier") or "")
        result = proceed()
        self._start(request, result.result["DBCluster"], source=dump_of(snapshot), keep_source_password=True)
        return result

    def restore_to_point_in_time(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        """The latest restorable time is now: the source's data as it is when the call arrives (a clone's too,
        of any account that shared its cluster with the caller)."""
        source_identifier = request.params.get("SourceDBClusterIdentifier")
        source_database = database_of(self.find_cluster(request, source_identifier) if source_identifier else None)
        result = proceed()
        source = None
        if source_database is not None:
            path = self.fleet.dump_path(request.account, request.region, "point-in-time")
            source = SnapshotDump(source_database.engine, path, source_database.dump(path))
        cluster = result.result["DBCluster"]
        self._start(request, cluster, source=source, keep_source_password=True)
        database = database_of(cluster)
        if source is not None and database is not None and database.setup is not None:
            # Loaded (or failed to load) into the new server: the file has served its purpose.
            database.setup.add_done_callback(lambda _: source.path.unlink(missing_ok=True))
        return result

    def _start(
        self,
        request: RdsRequest,
        cluster: DBCluster,
        source: SnapshotDump | None,
        keep_source_password: bool,
    ) -> None:
        database = self.fleet.create(cluster.engine, cluster.db_cluster_identifier, request.account, request.region)
        if database is None:
            return
        cluster.__dict__[DATABASE_ATTRIBUTE] = database
        managed = managed_passwords.managed_password(cluster)
        stored = cluster.__dict__.get("_master_user_password") or managed_passwords.generate_password()
        if source is not None and source.engine != database.engine:
            source = None  # a snapshot of the other engine family: AWS refuses that restore
        master = MasterUser(
            username=cluster.master_username,
            # A restore keeps the snapshot's password, as in AWS; a managed secret decides otherwise.
            password=managed if managed is not None else (None if keep_source_password else stored),
            fallback_password=stored,
        )
        work: list[Future[Any]] = [database.start(master, cluster.database_name, source)]
        work += [self._dump_into(snapshot, database, request) for snapshot in _automated_snapshots(request, cluster)]
        self._wait_if_immediate(work)

    # -- snapshots --------------------------------------------------------------------------------

    def create_snapshot(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        cluster_identifier = request.params.get("DBClusterIdentifier")
        result = proceed()
        database = database_of(request.backend.clusters.get(cluster_identifier) if cluster_identifier else None)
        if database is not None:
            # Written before the call returns: the snapshot holds the data of the moment it was asked
            # for, not the writes that follow (a few hundred milliseconds for a test database).
            concurrent.futures.wait([self._dump_into(result.result["DBClusterSnapshot"], database, request)])
        return result

    def copy_snapshot(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        """The copy gets its own file: either snapshot can be deleted without the other."""
        source = dump_of(find_cluster_snapshot(request, request.params.get("SourceDBClusterSnapshotIdentifier") or ""))
        result = proceed()
        if source is not None:
            target = result.result["DBClusterSnapshot"]
            path = self.fleet.dump_path(request.account, request.region, target.db_cluster_snapshot_identifier)
            written: Future[Path] = Future()
            try:
                shutil.copyfile(source.written.result(), path)
                written.set_result(path)
            except Exception as error:  # the source's dump failed (it would not be available) or I/O
                written.set_exception(error)
            self._attach(target, SnapshotDump(source.engine, path, written))
        return result

    def delete_snapshot(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        result = proceed()
        dump = dump_of(result.result["DBClusterSnapshot"])
        if dump is not None:
            dump.path.unlink(missing_ok=True)
        return result

    def _dump_into(self, snapshot: DBClusterSnapshot, database: ClusterDatabase, request: RdsRequest) -> Future[Path]:
        path = self.fleet.dump_path(request.account, request.region, snapshot.db_cluster_snapshot_identifier)
        written = database.dump(path)
        self._attach(snapshot, SnapshotDump(database.engine, path, written))
        return written

    def _attach(self, snapshot: DBClusterSnapshot, dump: SnapshotDump) -> None:
        snapshot.__dict__[DUMP_ATTRIBUTE] = dump
        # Removed with its cluster (automated snapshots) or by a reset: the file goes when moto lets
        # go of the snapshot (DeleteDBClusterSnapshot removes it at once).
        self.fleet.remove_with(snapshot, dump.path)

    # -- deletion ---------------------------------------------------------------------------------

    def delete_cluster(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        cluster = request.backend.clusters.get(request.params.get("DBClusterIdentifier"))
        database = database_of(cluster)
        final_identifier = request.params.get("FinalDBSnapshotIdentifier")
        result = proceed()
        if database is None:
            return result
        final_snapshot = _cluster_snapshot(request, final_identifier) if final_identifier else None
        final_path = (
            self.fleet.dump_path(request.account, request.region, final_identifier) if final_snapshot else None
        )
        dumped, stopped = database.delete(final_path)
        if final_snapshot is not None and dumped is not None and final_path is not None:
            self._attach(final_snapshot, SnapshotDump(database.engine, final_path, dumped))
            concurrent.futures.wait([dumped])  # the data as it is now, as for any snapshot
        self._wait_if_immediate([stopped])
        return result

    # -- master password --------------------------------------------------------------------------

    def modify_cluster(self, request: RdsRequest, proceed: Proceed) -> ActionResult:
        # Read before moto runs: it overwrites the parameters (DBClusterIdentifier becomes the new one).
        params = request.params
        identifier = params.get("NewDBClusterIdentifier") or params.get("DBClusterIdentifier")
        managed = bool(params.get("ManageMasterUserPassword") or params.get("RotateMasterUserPassword"))
        password = params.get("MasterUserPassword")
        result = proceed()
        cluster = request.backend.clusters.get(identifier) if identifier else None
        database = database_of(cluster)
        if database is None:
            return result
        # A rename keeps the server with the cluster (a swap of two names swaps their servers); only the
        # name it is listed under changes.
        database.cluster_identifier = cluster.db_cluster_identifier
        if managed:
            password = managed_passwords.managed_password(cluster)
        if password:
            database.set_master_password(cluster.master_username, password)
        return result

    # -- helpers ----------------------------------------------------------------------------------

    def _wait_if_immediate(self, work: Iterable[Future[Any]]) -> None:
        """With a delay of 0 everything is done when the call returns, as moto's objects are."""
        if self.settings.delay <= 0:
            concurrent.futures.wait(list(work))


def _automated_snapshots(request: RdsRequest, cluster: DBCluster) -> list[DBClusterSnapshot]:
    """The automated snapshot moto took while creating `cluster` (before it had a server)."""
    return [
        snapshot
        for snapshot in request.backend.cluster_snapshots.values()
        if snapshot.snapshot_type == "automated"
        and snapshot.db_cluster_identifier == cluster.db_cluster_identifier
        and dump_of(snapshot) is None
    ]


def _cluster_snapshot(request: RdsRequest, identifier: str) -> DBClusterSnapshot | None:
    snapshots = request.backend.cluster_snapshots
    if identifier in snapshots:
        return snapshots[identifier]
    return next(
        (s for s in snapshots.values() if s.db_cluster_snapshot_identifier == identifier.lower()), None
    )


# -- patches of moto's models -------------------------------------------------------------------

_MOTO_ATTRIBUTES: dict[tuple[type, str], Any] = {}


def _original(cls: type, name: str) -> Any:
    return _MOTO_ATTRIBUTES.setdefault((cls, name), cls.__dict__[name])


def _install_statuses() -> None:
    """Clusters stay `creating` until their server is up, snapshots until their dump is written.

    Wraps the statuses as they are when called: the lifecycle's, which must be installed first.
    """
    cluster_status: property = DBCluster.__dict__["status"]
    snapshot_status: property = DBClusterSnapshot.__dict__["status"]

    def gated_cluster_status(cluster: DBCluster) -> str:
        status = cluster_status.fget(cluster)
        database = database_of(cluster)
        if database is None or status != "available":
            return status
        return {"starting": "creating", "failed": "failed"}.get(database.state, status)

    def gated_snapshot_status(snapshot: DBClusterSnapshot) -> str:
        status = snapshot_status.fget(snapshot)
        dump = dump_of(snapshot)
        if dump is None or status != "available":
            return status
        if not dump.written.done():
            return "creating"
        return "failed" if dump.written.exception() is not None else status

    DBCluster.status = property(gated_cluster_status, cluster_status.fset)
    DBClusterSnapshot.status = property(gated_snapshot_status, snapshot_status.fset)


def _install_endpoints() -> None:
    """Endpoint and port of clusters with a server, and of their instances, are the server's."""
    moto_endpoint: property = _original(DBCluster, "endpoint")
    moto_reader_endpoint: property = _original(DBCluster, "reader_endpoint")
    moto_address: property = _original(DBInstance, "address")

    def endpoint(cluster: DBCluster) -> str:
        return ENDPOINT_HOST if database_of(cluster) else moto_endpoint.fget(cluster)

    def reader_endpoint(cluster: DBCluster) -> str:
        return ENDPOINT_HOST if database_of(cluster) else moto_reader_endpoint.fget(cluster)

    def address(instance: DBInstance) -> str:
        return ENDPOINT_HOST if _instance_database(instance) else moto_address.fget(instance)

    DBCluster.endpoint = property(endpoint)
    DBCluster.reader_endpoint = property(reader_endpoint)
    DBInstance.address = property(address)
    # moto keeps `port` as a plain attribute; a property with a setter takes precedence over the
    # instance dictionary, where the stored value stays (moto copies that dictionary for restores).
    DBCluster.port = property(_server_port(database_of), _store_port)
    DBInstance.port = property(_server_port(_instance_database), _store_port)


def _instance_database(instance: DBInstance) -> ClusterDatabase | None:
    return database_of(instance.__dict__.get("cluster"))


def _server_port(database_for: Any) -> Any:
    def port(obj: Any) -> Any:
        database = database_for(obj)
        return database.server.port if database is not None else obj.__dict__.get("port")

    return port


def _store_port(obj: Any, value: Any) -> None:
    obj.__dict__["port"] = value
