"""PostgreSQL servers for aurora-postgresql clusters.

Roles, as in Aurora:

- `rdsadmin`: the bootstrap superuser, for the simulator only. It logs in without a password, and only
  over the server's Unix socket, whose directory only the server's user (and root) can enter.
- the cluster's master user (`MasterUsername`): LOGIN, CREATEROLE, CREATEDB, member of `rds_superuser`
  (which holds pg_monitor and pg_signal_backend) with the admin option, owner of the `postgres` database
  and of the cluster's `DatabaseName` database when one was given. Not a superuser, as in Aurora.

Over TCP every role needs its password (scram-sha-256), with or without TLS. The server listens on
127.0.0.1 only, with TLS on (the simulator's certificate).

Speed: the data directory is a copy of a template made once per simulator (initdb takes about a second,
a copy a few milliseconds); fsync, synchronous commit and full-page writes are off, shared buffers small.

Snapshots are `pg_dumpall` output (roles with their password hashes, then every database), loaded with
`psql` into a fresh copy of the template. `pg_dumpall` does not restore who owns `postgres`, so the load
ends by giving it back to the master user.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from .binaries import PostgresBinaries
from .server_process import DatabaseServer, DatabaseServerError, ServerPaths, run_client, run_quietly
from .server_user import ServerUser
from .tls import TlsFiles

BOOTSTRAP_USER = "rdsadmin"
DEFAULT_DATABASE = "postgres"

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "50",
    "shared_buffers": "16MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "password_encryption": "'scram-sha-256'",
    "ssl": "on",
    "ssl_cert_file": "'server.pem'",
    "ssl_key_file": "'server.key'",
    "logging_collector": "off",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "timezone": "'UTC'",
}

CLIENT_AUTHENTICATION = f"""\
# TYPE  DATABASE  USER          ADDRESS        METHOD
local   all       {BOOTSTRAP_USER}                     trust
local   all       all                          scram-sha-256
host    all       all           127.0.0.1/32   scram-sha-256
host    all       all           ::1/128        scram-sha-256
"""


class PostgresServer(DatabaseServer):
    engine = "postgresql"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, then stop

    def __init__(self, binaries: PostgresBinaries, paths: ServerPaths, port: int, user: ServerUser) -> None:
        super().__init__(paths, port, user)
        self.binaries = binaries

    # -- data directory ---------------------------------------------------------------------------

    @staticmethod
    def prepare_template(binaries: PostgresBinaries, template: Path, user: ServerUser, tls: TlsFiles) -> None:
        """initdb into `template` (a new directory), with the simulator's settings and certificate."""
        user.make_directory(template)
        result = subprocess.run(
            [
                binaries.program("initdb"),
                "--pgdata",
                str(template),
                "--username",
                BOOTSTRAP_USER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--wal-segsize",
                "1",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            **user.popen_arguments(),
        )
        if result.returncode != 0:
            raise DatabaseServerError(f"initdb failed: {result.stderr.decode(errors='replace').strip()}")
        settings = "".join(f"{name} = {value}\n" for name, value in SERVER_SETTINGS.items())
        with open(template / "postgresql.conf", "a") as config:
            config.write("\n# aurora-restore simulator\n" + settings)
        (template / "pg_hba.conf").write_text(CLIENT_AUTHENTICATION)
        shutil.copyfile(tls.server_certificate, template / "server.pem")
        shutil.copyfile(tls.server_key, template / "server.key")
        (template / "server.key").chmod(0o600)  # PostgreSQL refuses a key others can read
        user.give(template / "server.pem", template / "server.key")

    def create_from_template(self, template: Path) -> None:
        """This server's data directory: a copy of the template (owner and modes kept)."""
        subprocess.run(["cp", "-a", str(template), str(self.paths.data)], check=True, stdin=subprocess.DEVNULL)

    # -- process ----------------------------------------------------------------------------------

    def server_command(self) -> list[str]:
        return [
            self.binaries.program("postgres"),
            "-D",
            str(self.paths.data),
            "-p",
            str(self.port),
            "-k",
            str(self.paths.run_dir),
            *(["-c", "log_statement=all"] if self.log_statements else []),
        ]

    def is_ready(self) -> bool:
        return run_quietly(
            [
                self.binaries.program("pg_isready"),
                "--quiet",
                "--host",
                str(self.paths.run_dir),
                "--port",
                str(self.port),
                "--username",
                BOOTSTRAP_USER,
                "--dbname",
                DEFAULT_DATABASE,
            ],
            self.user,
        )

    # -- the master user --------------------------------------------------------------------------

    def create_master(self, username: str, password: str, database_name: str | None) -> None:
        """The master user of a new cluster, and its database."""
        role = identifier(username)
        statements = [
            "CREATE ROLE rds_superuser NOLOGIN",
            "GRANT pg_monitor, pg_signal_backend TO rds_superuser WITH ADMIN OPTION",
            f"CREATE ROLE {role} LOGIN CREATEROLE CREATEDB PASSWORD {literal(password)}",
            f"GRANT rds_superuser TO {role} WITH ADMIN OPTION",
            f"ALTER DATABASE {DEFAULT_DATABASE} OWNER TO {role}",
        ]
        if database_name and database_name != DEFAULT_DATABASE:
            statements.append(f"CREATE DATABASE {identifier(database_name)} OWNER {role}")
        self.execute(statements, secrets=(password,))

    def set_master_password(self, username: str, password: str) -> None:
        self.execute([f"ALTER ROLE {identifier(username)} PASSWORD {literal(password)}"], secrets=(password,))

    def execute(self, statements: list[str], secrets: tuple[str, ...] = (), database: str = DEFAULT_DATABASE) -> None:
        """Run SQL statements as the bootstrap superuser, each in its own transaction; stop at an error.

        The statements go through stdin, so passwords never show in a process list, and are not logged (as
        RDS's own statements are not in Aurora's log): only clients' statements are, with log_statement.
        """
        script = "".join(f"{statement};\n" for statement in ["SET log_statement = 'none'", *statements]).encode()
        run_client(self._psql(database) + ["--file", "-"], "psql", input=script, secrets=secrets)

    # -- snapshots --------------------------------------------------------------------------------

    def dump(self, path: Path) -> None:
        """Everything in the server (roles, then databases), as SQL, into `path`.

        pg_dumpall writes `CREATE ROLE rdsadmin;` too, which a server made from the same template has
        already: that one line is left out, so that the load can stop at the first real error.
        """
        command = [
            self.binaries.program("pg_dumpall"),
            "--host",
            str(self.paths.run_dir),
            "--port",
            str(self.port),
            "--username",
            BOOTSTRAP_USER,
            "--no-password",
        ]
        bootstrap_role = f"CREATE ROLE {BOOTSTRAP_USER};\n".encode()
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            assert process.stdout is not None and process.stderr is not None
            for line in process.stdout:
                if line != bootstrap_role:
                    output.write(line)
            errors = process.stderr.read()
            if process.wait() != 0:
                partial.unlink(missing_ok=True)
                raise DatabaseServerError(f"pg_dumpall: {errors.decode(errors='replace').strip()}")
        partial.replace(path)

    def load(self, path: Path, master_username: str) -> None:
        """Load a dump made by `dump()` into this (new) server, then give `postgres` to the master user."""
        run_client(self._psql(DEFAULT_DATABASE) + ["--file", str(path)], "loading the snapshot")
        self.execute([f"ALTER DATABASE {DEFAULT_DATABASE} OWNER TO {identifier(master_username)}"])

    def _psql(self, database: str) -> list[str]:
        return [
            self.binaries.program("psql"),
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--set",
            "VERBOSITY=terse",
            "--host",
            str(self.paths.run_dir),
            "--port",
            str(self.port),
            "--username",
            BOOTSTRAP_USER,
            "--dbname",
            database,
        ]


def identifier(name: str) -> str:
    """A quoted SQL identifier."""
    if "\x00" in name:
        raise ValueError("names cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A quoted SQL string (standard_conforming_strings is on: backslashes are plain characters)."""
    if "\x00" in value:
        raise ValueError("values cannot contain NUL characters")
    return "'" + value.replace("'", "''") + "'"
