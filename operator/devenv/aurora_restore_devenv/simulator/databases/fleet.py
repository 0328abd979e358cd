"""Every database server and snapshot dump of one simulator process.

The data directory (`--data-dir`, default a temporary directory removed at exit):

    ca.pem                          the CA that clients trust (also served at GET /_sim/ca.pem)
    tls/                            the servers' certificate and private key
    snapshots/<account>/<region>/   one SQL dump per cluster snapshot
    templates/postgresql/, mysql/   initialized once per simulator, copied for each server
    servers/<cluster>-<n>/          one per cluster: data/, server.log (and my.cnf, tls/ for MariaDB)
    run/<n>/                        the servers' Unix sockets (a short path: sockets have a length limit)

What an earlier simulator left in `snapshots/`, `templates/`, `servers/` and `run/` is removed at start-up:
its RDS state is gone, so nothing refers to it. When the simulator runs as root and the server user
(`nobody`) cannot reach the data directory, `templates/`, `servers/` and `run/` go to a private temporary
directory instead (see `server_user`).

Each cluster's server has one worker thread (`ClusterDatabase`) that does everything for it in order:
start (or load a snapshot), dumps for snapshots, stop. RDS requests queue work and return; the RDS
extensions (`rds_actions`) keep the cluster `creating` and a snapshot `creating` until their work is done.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import tempfile
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

from .binaries import MariadbBinaries, PostgresBinaries
from .mariadb import MariadbServer
from .postgres import PostgresServer
from .server_process import DatabaseServer, DatabaseServerError, PortInUse, ServerPaths, free_port
from .server_user import ServerUser
from .tls import TlsFiles, ensure_certificates

log = logging.getLogger(__name__)


class DatabaseSetupError(RuntimeError):
    """Database servers were asked for and cannot be had (the message says why)."""


#: RDS engine -> the kind of server that plays it.
ENGINE_SERVERS = {
    "aurora-postgresql": "postgresql",
    "postgres": "postgresql",
    "aurora-mysql": "mysql",
    "aurora": "mysql",
    "mysql": "mysql",
}
#: How often a server start is tried again on another port when its port was taken meanwhile.
START_ATTEMPTS = 3
LIVE_DIRECTORIES = ("templates", "servers", "run")
#: Unix socket paths longer than this fail (the limit is 107 bytes on Linux, 103 on macOS).
SOCKET_PATH_LIMIT = 100
#: The longest socket path under a run directory: "/<serial>/.s.PGSQL.<port>".
SOCKET_PATH_SUFFIX = len("/999999/.s.PGSQL.65535")
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class MasterUser:
    """The master user a new server gets."""

    username: str
    #: The password to set; None keeps the one in a loaded snapshot.
    password: str | None
    #: The password when there is no snapshot to load (a restore of a snapshot without a dump).
    fallback_password: str


@dataclass
class SnapshotDump:
    """The data of one cluster snapshot: a SQL file, ready once `written` is done."""

    engine: str
    path: Path
    written: Future[Path]


class DatabaseFleet:
    """The servers of the simulated clusters, their templates and the snapshots' dumps."""

    def __init__(
        self,
        data_dir: Path | None,
        postgres: PostgresBinaries | None,
        mariadb: MariadbBinaries | None,
        log_statements: bool = False,
    ) -> None:
        self.postgres = postgres
        self.mariadb = mariadb
        #: Whether the servers log every statement of their clients (not the simulator's own).
        self.log_statements = log_statements
        try:
            self.user = ServerUser.for_this_process()
        except KeyError:
            raise DatabaseSetupError(
                "the simulator runs as root, and PostgreSQL refuses to: the servers run as the user "
                "'nobody', which this system lacks"
            ) from None
        self.temporary = data_dir is None
        self.root = Path(tempfile.mkdtemp(prefix="aurora-simulator-")) if data_dir is None else data_dir
        self.root = self.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_data_directory(self.root)
        if self.user.is_other_user:
            self.root.chmod(self.root.stat().st_mode | 0o011)  # let the server user through
        self.tls: TlsFiles = ensure_certificates(self.root)
        self.snapshots_dir = self.root / "snapshots"
        shutil.rmtree(self.snapshots_dir, ignore_errors=True)
        self.snapshots_dir.mkdir(mode=0o700)
        self._separate_directories: list[Path] = []
        self.live_root = self._live_directories()
        self.run_root = self._run_directory()
        self._templates: dict[str, Path] = {}
        self._template_lock = threading.Lock()
        self._databases: dict[int, ClusterDatabase] = {}
        self._lock = threading.Lock()
        self._serials = count(1)
        self._dump_serials = count(1)

    # -- servers ----------------------------------------------------------------------------------

    def supports(self, engine: str) -> bool:
        kind = ENGINE_SERVERS.get(engine)
        return (kind == "postgresql" and self.postgres is not None) or (
            kind == "mysql" and self.mariadb is not None
        )

    def create(self, engine: str, cluster_identifier: str, account: str, region: str) -> ClusterDatabase | None:
        """A (not yet started) server for a new cluster, on a free port; None for engines without one."""
        if not self.supports(engine):
            return None
        serial = next(self._serials)
        paths = ServerPaths(
            directory=self.live_root / "servers" / f"{cluster_identifier}-{serial}",
            run_dir=self.run_root / str(serial),
        )
        server: DatabaseServer
        if ENGINE_SERVERS[engine] == "postgresql":
            assert self.postgres is not None
            server = PostgresServer(self.postgres, paths, free_port(), self.user)
        else:
            assert self.mariadb is not None
            server = MariadbServer(self.mariadb, paths, free_port(), self.user, self.tls)
        server.log_statements = self.log_statements
        database = ClusterDatabase(self, server, serial, cluster_identifier, account, region)
        with self._lock:
            self._databases[serial] = database
        return database

    def databases(self) -> list[ClusterDatabase]:
        with self._lock:
            return list(self._databases.values())

    def forget(self, database: ClusterDatabase) -> None:
        with self._lock:
            self._databases.pop(database.serial, None)

    def template(self, engine: str) -> Path:
        """The initialized data directory that new servers of `engine` copy (made on first use)."""
        with self._template_lock:
            if engine not in self._templates:
                template = self.live_root / "templates" / engine
                shutil.rmtree(template, ignore_errors=True)
                if engine == "postgresql":
                    assert self.postgres is not None
                    PostgresServer.prepare_template(self.postgres, template, self.user, self.tls)
                else:
                    assert self.mariadb is not None
                    MariadbServer.prepare_template(self.mariadb, template, self.user, self.tls)
                self._templates[engine] = template
            return self._templates[engine]

    # -- snapshots --------------------------------------------------------------------------------

    def dump_path(self, account: str, region: str, snapshot_identifier: str) -> Path:
        """A new file for a snapshot's dump (snapshot identifiers may hold ':', as automated ones do)."""
        directory = self.snapshots_dir / account / region
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = snapshot_identifier.replace(":", "_").replace("/", "_")
        return directory / f"{name}.{next(self._dump_serials)}.sql"

    def remove_with(self, owner: Any, path: Path) -> None:
        """Delete `path` once `owner` (a moto snapshot object) is gone, however it goes."""
        weakref.finalize(owner, path.unlink, missing_ok=True)

    # -- the whole fleet --------------------------------------------------------------------------

    def stop_all(self) -> None:
        """Stop every server and remove its directory (a reset: moto's clusters are gone)."""
        databases = self.databases()
        for database in databases:
            database.server.signal_stop()  # all at once, then wait for each
        for database in databases:
            database.discard()
        for path in self.snapshots_dir.iterdir():
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        """Stop every server; remove the temporary directories (all of them without --data-dir)."""
        self.stop_all()
        for directory in self._separate_directories:
            shutil.rmtree(directory, ignore_errors=True)
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)
        self._lock_file.close()

    def _live_directories(self) -> Path:
        """Where templates, servers and sockets go: the data directory if the server user can work
        there, else a private temporary directory."""
        for name in LIVE_DIRECTORIES:
            shutil.rmtree(self.root / name, ignore_errors=True)
        servers = self.user.make_directory(self.root / "servers")
        if self.user.usable(servers):
            for name in ("templates", "run"):
                self.user.make_directory(self.root / name)
            return self.root
        servers.rmdir()
        live = self._separate_directory("aurora-simulator-servers-")
        for name in LIVE_DIRECTORIES:
            self.user.make_directory(live / name)
        log.warning(
            "the database servers run as %s, which cannot reach %s: their files go to %s",
            self.user.name,
            self.root,
            live,
        )
        return live

    def _run_directory(self) -> Path:
        """`run/` of the live directory, or a short temporary path when socket paths would be too long."""
        run = self.live_root / "run"
        if len(str(run)) + SOCKET_PATH_SUFFIX <= SOCKET_PATH_LIMIT:
            return run
        short = self._separate_directory("aurora-sim-")
        log.info("socket paths under %s would be too long: the servers' sockets go to %s", run, short)
        return short

    def _separate_directory(self, prefix: str) -> Path:
        """A temporary directory that the server user can reach, removed at exit."""
        directory = Path(tempfile.mkdtemp(prefix=prefix))
        directory.chmod(0o711)
        self._separate_directories.append(directory)
        return directory


def _lock_data_directory(root: Path) -> Any:
    """Hold a lock on `root` for the life of the simulator: a second simulator on the same data
    directory would remove the first one's servers at its start."""
    lock = open(root / LOCK_FILE, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise DatabaseSetupError(f"{root} is the data directory of another running simulator") from None
    return lock


class ClusterDatabase:
    """The server of one simulated cluster, and the work queued for it, done in order on its own thread.

    States: `starting` (until the server accepts connections and has its master user or snapshot data),
    `available`, `failed` (the reason in `error`), `deleted`; `deleting` is reported from the deletion
    request until the server is gone.
    """

    def __init__(
        self,
        fleet: DatabaseFleet,
        server: DatabaseServer,
        serial: int,
        cluster_identifier: str,
        account: str,
        region: str,
    ) -> None:
        self.fleet = fleet
        self.server = server
        self.serial = serial
        self.cluster_identifier = cluster_identifier
        self.account = account
        self.region = region
        self.state = "starting"
        self.deleting = False
        self.error: str | None = None
        self.setup: Future[None] | None = None
        # One thread, alive as long as the server: it starts the server (see server_process on why).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"database-{serial}")

    @property
    def engine(self) -> str:
        return self.server.engine

    def start(self, master: MasterUser, database_name: str | None, source: SnapshotDump | None) -> Future[None]:
        """Start the server: with `source`'s data (and its master password, unless `master` has one), or
        empty with the master user and `database_name`."""
        self.setup = self._worker.submit(self._set_up, master, database_name, source)
        return self.setup

    def dump(self, path: Path) -> Future[Path]:
        """Write everything in the server to `path`, after the work queued before."""

        def write_dump() -> Path:
            self._require_available()
            self.server.dump(path)
            return path

        return self._submit(write_dump)

    def set_master_password(self, username: str, password: str) -> None:
        """Change the master password now (waits for the server to be up)."""
        if self.setup is not None:
            self.setup.result()
        self._require_available()
        self.server.set_master_password(username, password)

    def delete(self, final_dump: Path | None) -> tuple[Future[Path] | None, Future[None]]:
        """Stop the server and remove its files, after a final dump to `final_dump` if given."""
        dumped = self.dump(final_dump) if final_dump is not None else None
        self.deleting = True
        stopped = self._submit(self.discard)
        self._worker.shutdown(wait=False)
        return dumped, stopped

    def discard(self) -> None:
        """Stop the server and remove its directories (on the worker, or at reset and exit)."""
        self.state = "deleted"  # a start still in progress stops the server again (see _set_up)
        self.server.stop()
        shutil.rmtree(self.server.paths.directory, ignore_errors=True)
        shutil.rmtree(self.server.paths.run_dir, ignore_errors=True)
        self.fleet.forget(self)
        self._worker.shutdown(wait=False, cancel_futures=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster_identifier,
            "account": self.account,
            "region": self.region,
            "engine": self.engine,
            "host": "127.0.0.1",
            "port": self.server.port,
            "pid": self.server.pid if self.server.running else None,
            "state": "deleting" if self.deleting and self.state != "deleted" else self.state,
            "error": self.error,
            "directory": str(self.server.paths.directory),
            "socket_directory": str(self.server.paths.run_dir),
            # Where the statements clients send are logged (with --db-log-statements), else None.
            "statement_log": str(self.server.statement_log) if self.server.log_statements else None,
        }

    # -- on the worker ----------------------------------------------------------------------------

    def _set_up(self, master: MasterUser, database_name: str | None, source: SnapshotDump | None) -> None:
        try:
            template = self.fleet.template(self.engine)
            user = self.fleet.user
            user.make_directory(self.server.paths.directory)
            user.make_directory(self.server.paths.run_dir)
            self.server.create_from_template(template)
            self._start_on_a_free_port()
            dump = source.written.result() if source is not None else None
            if dump is not None:
                self.server.load(dump, master.username)
                if master.password is not None:
                    self.server.set_master_password(master.username, master.password)
            else:
                self.server.create_master(
                    master.username, master.password or master.fallback_password, database_name
                )
        except Exception as error:
            if self.state == "deleted":
                self.server.stop()
                return
            self.state = "failed"
            self.error = str(error)
            log.error("database of cluster %s (%s) failed: %s", self.cluster_identifier, self.engine, error)
            raise
        if self.state == "deleted":  # discarded while starting (a reset, the simulator's exit)
            self.server.stop()
            return
        self.state = "available"
        log.info(
            "database of cluster %s: %s on 127.0.0.1:%d (pid %s)",
            self.cluster_identifier,
            self.engine,
            self.server.port,
            self.server.pid,
        )

    def _start_on_a_free_port(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self.server.start()
                return
            except PortInUse:
                if attempt == START_ATTEMPTS:
                    raise
                self.server.port = free_port()

    def _require_available(self) -> None:
        if self.state != "available":
            raise DatabaseServerError(
                f"the database of cluster {self.cluster_identifier} is {self.state}"
                + (f": {self.error}" if self.error else "")
            )

    def _submit(self, job: Any) -> Future[Any]:
        try:
            return self._worker.submit(job)
        except RuntimeError:  # the worker was shut down: the cluster is being deleted
            failed: Future[Any] = Future()
            failed.set_exception(DatabaseServerError(f"the database of cluster {self.cluster_identifier} is gone"))
            return failed
