"""MariaDB servers for aurora-mysql clusters (MariaDB speaks MySQL's protocol; Debian ships no MySQL server).

Accounts:

- `root@localhost`: for the simulator only, without a password, and only over the server's Unix socket
  (host `localhost` never matches a TCP connection: the server skips name resolution). The other root
  accounts that `mariadb-install-db` creates (`root@127.0.0.1`, `root@::1`, `root@<hostname>`, all
  without a password) are removed from the template.
- the cluster's master user (`MasterUsername`), as `'<name>'@'%'` with ALL PRIVILEGES ON *.* WITH GRANT
  OPTION, as the Aurora MySQL master user has (nearly) everything.

The server listens on 127.0.0.1 only, with TLS available (the simulator's certificate); plain connections
are accepted too, as by Aurora unless `require_secure_transport` is set. InnoDB is small and does not
flush at commit.

Snapshots are `mariadb-dump` output: the databases other than the system ones, then the accounts
(`--system=users`, as `CREATE USER IF NOT EXISTS` and `GRANT` with password hashes), loaded with the
`mariadb` client into a fresh copy of the template.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from .binaries import MariadbBinaries
from .server_process import DatabaseServer, DatabaseServerError, ServerPaths, run_client, run_quietly
from .server_user import ServerUser
from .tls import TlsFiles

SYSTEM_DATABASES = ("mysql", "information_schema", "performance_schema", "sys")
CONFIG_FILE = "my.cnf"

# The root accounts that mariadb-install-db adds besides root@localhost, and anonymous accounts.
REMOVE_EXTRA_ACCOUNTS = """\
DELETE FROM mysql.global_priv WHERE (User = 'root' AND Host <> 'localhost') OR User = '';
DELETE FROM mysql.proxies_priv WHERE User = 'root' AND Host <> 'localhost';
"""


class MariadbServer(DatabaseServer):
    engine = "mysql"
    stop_signal = signal.SIGTERM  # normal shutdown

    def __init__(
        self,
        binaries: MariadbBinaries,
        paths: ServerPaths,
        port: int,
        user: ServerUser,
        tls: TlsFiles,
    ) -> None:
        super().__init__(paths, port, user)
        self.binaries = binaries
        self.tls = tls

    @property
    def socket(self) -> Path:
        return self.paths.run_dir / "mysqld.sock"

    @property
    def config_path(self) -> Path:
        return self.paths.directory / CONFIG_FILE

    @property
    def statement_log(self) -> Path:
        """The general log (with `log_statements`)."""
        return self.paths.directory / "general.log"

    # -- data directory ---------------------------------------------------------------------------

    @staticmethod
    def prepare_template(
        binaries: MariadbBinaries, template: Path, user: ServerUser, tls: TlsFiles
    ) -> None:
        """mariadb-install-db into `template` (a new directory), minus the extra root accounts."""
        user.make_directory(template)
        config = template.parent / f"{template.name}.cnf"
        config.write_text(server_config(template, socket=None, port=None, tls=None))
        config.chmod(0o644)
        result = subprocess.run(
            [
                binaries.install_db,
                f"--defaults-file={config}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            **user.popen_arguments(),
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip()
            raise DatabaseServerError(f"mariadb-install-db failed: {output[-2000:]}")
        # The same way mariadb-install-db itself runs SQL: a server in bootstrap mode, without networking.
        result = subprocess.run(
            [binaries.server, f"--defaults-file={config}", "--bootstrap"],
            input=REMOVE_EXTRA_ACCOUNTS.encode(),
            capture_output=True,
            check=False,
            **user.popen_arguments(),
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip()
            raise DatabaseServerError(f"removing the extra root accounts failed: {output[-2000:]}")

    def create_from_template(self, template: Path) -> None:
        """This server's data directory (a copy of the template) and configuration file."""
        subprocess.run(["cp", "-a", str(template), str(self.paths.data)], check=True, stdin=subprocess.DEVNULL)
        self.config_path.write_text(
            server_config(self.paths.data, socket=self.socket, port=self.port, tls=self.tls,
                          general_log=self.statement_log if self.log_statements else None)
        )
        self.config_path.chmod(0o644)
        private = self.paths.directory / "tls"
        self.user.make_directory(private)
        for source, name in (
            (self.tls.ca_certificate, "ca.pem"),
            (self.tls.server_certificate, "server.pem"),
            (self.tls.server_key, "server.key"),
        ):
            target = private / name
            target.write_bytes(source.read_bytes())
            target.chmod(0o600)
            self.user.give(target)

    # -- process ----------------------------------------------------------------------------------

    def server_command(self) -> list[str]:
        # A changed port (after PortInUse) must reach the configuration file.
        self.config_path.write_text(
            server_config(self.paths.data, socket=self.socket, port=self.port, tls=self.tls,
                          general_log=self.statement_log if self.log_statements else None)
        )
        return [self.binaries.server, f"--defaults-file={self.config_path}"]

    def is_ready(self) -> bool:
        return run_quietly(
            [
                self.binaries.admin,
                "--no-defaults",
                f"--socket={self.socket}",
                "--user=root",
                "--connect-timeout=2",
                "ping",
            ],
            self.user,
        )

    # -- the master user --------------------------------------------------------------------------

    def create_master(self, username: str, password: str, database_name: str | None) -> None:
        """The master user of a new cluster, and its database."""
        account = f"{literal(username)}@'%'"
        statements = [
            f"CREATE USER {account} IDENTIFIED BY {literal(password)}",
            f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION",
        ]
        if database_name:
            statements.append(f"CREATE DATABASE IF NOT EXISTS {identifier(database_name)}")
        self.execute(statements, secrets=(password,))

    def set_master_password(self, username: str, password: str) -> None:
        self.execute([f"ALTER USER {literal(username)}@'%' IDENTIFIED BY {literal(password)}"], secrets=(password,))

    def execute(self, statements: list[str], secrets: tuple[str, ...] = ()) -> None:
        """Run SQL statements as root over the socket; stop at an error. Passwords go through stdin, and the
        general log leaves these statements out (sql_log_off), as Aurora's logs leave out RDS's own."""
        script = "".join(f"{statement};\n" for statement in ["SET SESSION sql_log_off = 1", *statements]).encode()
        run_client(self._client(), "mariadb", input=script, secrets=secrets)

    # -- snapshots --------------------------------------------------------------------------------

    def dump(self, path: Path) -> None:
        """The user databases and the accounts, as SQL, into `path`."""
        listed = run_client(
            self._client() + ["--batch", "--skip-column-names"],
            "listing databases",
            input=b"SELECT schema_name FROM information_schema.schemata;\n",
        )
        databases = [
            name for name in listed.decode().split() if name and name not in SYSTEM_DATABASES
        ]
        command = [
            self.binaries.dump,
            "--no-defaults",
            f"--socket={self.socket}",
            "--user=root",
            "--system=users",
            "--insert-ignore",
            "--single-transaction",
            "--routines",
            "--events",
            "--triggers",
        ]
        if databases:
            command += ["--databases", *databases]
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as output:
            result = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.PIPE, check=False
            )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise DatabaseServerError(f"mariadb-dump: {result.stderr.decode(errors='replace').strip()}")
        partial.replace(path)

    def load(self, path: Path, master_username: str) -> None:
        """Load a dump made by `dump()` into this (new) server."""
        with open(path, "rb") as dump:
            result = subprocess.run(
                self._client(), stdin=dump, capture_output=True, check=False
            )
        if result.returncode != 0:
            raise DatabaseServerError(
                f"loading the snapshot: {result.stderr.decode(errors='replace').strip()}"
            )
        self.execute(["FLUSH PRIVILEGES"])

    def _client(self) -> list[str]:
        return [self.binaries.client, "--no-defaults", f"--socket={self.socket}", "--user=root"]


def server_config(
    data: Path, socket: Path | None, port: int | None, tls: TlsFiles | None, general_log: Path | None = None
) -> str:
    """A complete option file (the server reads no other: it is passed with --defaults-file); with
    `general_log`, every statement of the clients is logged there."""
    lines = [
        "[mariadbd]",
        f"datadir={data}",
        "skip-name-resolve",
        "skip-log-bin",
        "performance_schema=OFF",
        "innodb_buffer_pool_size=16M",
        "innodb_log_file_size=4M",
        "innodb_log_buffer_size=1M",
        "innodb_data_file_path=ibdata1:10M:autoextend",
        "innodb_autoextend_increment=1",
        "innodb_flush_log_at_trx_commit=0",
        "innodb_doublewrite=0",
        "max_connections=50",
        "character-set-server=utf8mb4",
        "collation-server=utf8mb4_general_ci",
    ]
    if socket is None:
        lines.append("skip-networking")
    else:
        lines += [
            f"socket={socket}",
            f"pid-file={socket.with_suffix('.pid')}",
            f"port={port}",
            "skip-networking=0",
            "bind-address=127.0.0.1",
        ]
    if tls is not None:
        private = data.parent / "tls"  # copies that the server's user can read (see create_from_template)
        lines += [
            f"ssl-ca={private / 'ca.pem'}",
            f"ssl-cert={private / 'server.pem'}",
            f"ssl-key={private / 'server.key'}",
        ]
    if general_log is not None:
        lines += ["general_log=1", f"general_log_file={general_log}"]
    return "\n".join(lines) + "\n"


def identifier(name: str) -> str:
    """A quoted identifier (database name)."""
    if "\x00" in name:
        raise ValueError("names cannot contain NUL characters")
    return "`" + name.replace("`", "``") + "`"


def literal(value: str) -> str:
    """A quoted string (backslash escapes are on, as by default)."""
    if "\x00" in value:
        raise ValueError("values cannot contain NUL characters")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
