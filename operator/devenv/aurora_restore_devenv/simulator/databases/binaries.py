"""Where the database programs are: PostgreSQL for aurora-postgresql clusters, MariaDB for aurora-mysql.

Looked up once when the simulator starts. Distributions put them in different places:

- PostgreSQL: `pg_config --bindir` when it names a directory with a server in it, else `initdb` on PATH
  (Fedora, Homebrew), else the newest of /usr/lib/postgresql/*/bin (Debian, Ubuntu), /usr/pgsql-*/bin (RHEL
  with the PGDG packages) and /usr/local/pgsql/bin (built from source).
- MariaDB: `mariadbd` (or the older name `mysqld`) and its tools on PATH or in /usr/sbin, /usr/bin,
  /usr/libexec, /usr/local/sbin, /usr/local/bin. Oracle's MySQL server is not supported: it has no
  `mysql_install_db` and dumps users differently.

`.ci/install-system-packages` installs both on Debian and Ubuntu.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Directories searched after PATH: system daemons often live in sbin, which a non-root PATH may lack.
SYSTEM_DIRECTORIES = ("/usr/sbin", "/usr/bin", "/usr/libexec", "/usr/local/sbin", "/usr/local/bin")
POSTGRES_DIRECTORY_PATTERNS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
)
POSTGRES_PROGRAMS = ("initdb", "postgres", "pg_isready", "psql", "pg_dumpall")


@dataclass(frozen=True)
class PostgresBinaries:
    """A PostgreSQL installation: every program the simulator runs comes from `bindir`."""

    bindir: Path
    #: "15.18", from `postgres --version`.
    version: str

    def program(self, name: str) -> str:
        return str(self.bindir / name)


@dataclass(frozen=True)
class MariadbBinaries:
    """A MariaDB installation: server, data directory initialization and client programs."""

    server: str
    install_db: str
    client: str
    dump: str
    admin: str
    #: "10.11.19-MariaDB-0+deb12u1", from `mariadbd --version`.
    version: str


def find_postgres() -> PostgresBinaries | None:
    """The PostgreSQL installation to use, or None when there is none with every program needed."""
    for bindir in _postgres_candidates():
        if all(_is_executable(bindir / name) for name in POSTGRES_PROGRAMS):
            version = _version_output(bindir / "postgres")
            match = re.search(r"\d+(\.\d+)*", version or "")
            if match:
                return PostgresBinaries(bindir=bindir, version=match.group(0))
    return None


def find_mariadb() -> MariadbBinaries | None:
    """The MariaDB installation to use, or None when a program is missing or the server is not MariaDB."""
    server = _first_program("mariadbd", "mysqld")
    programs = {
        "install_db": _first_program("mariadb-install-db", "mysql_install_db"),
        "client": _first_program("mariadb", "mysql"),
        "dump": _first_program("mariadb-dump", "mysqldump"),
        "admin": _first_program("mariadb-admin", "mysqladmin"),
    }
    if server is None or None in programs.values():
        return None
    version = _version_output(Path(server)) or ""
    if "mariadb" not in version.lower():
        return None
    match = re.search(r"Ver\s+(\S+)", version)
    return MariadbBinaries(
        server=server, version=match.group(1) if match else version.strip(), **programs  # type: ignore[arg-type]
    )


def find_program(name: str) -> str | None:
    """`name` on PATH or in the system directories."""
    return _first_program(name)


def _postgres_candidates() -> list[Path]:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            bindir = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=10,
                stdin=subprocess.DEVNULL,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            bindir = ""
        if bindir:
            candidates.append(Path(bindir))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    found = [Path(path) for pattern in POSTGRES_DIRECTORY_PATTERNS for path in glob.glob(pattern)]
    candidates.extend(sorted(found, key=_version_key, reverse=True))
    return candidates


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", str(path))) or (0,)


def _first_program(*names: str) -> str | None:
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_DIRECTORIES])
    for name in names:
        found = shutil.which(name, path=search_path)
        if found:
            return found
    return None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _version_output(program: Path) -> str | None:
    try:
        result = subprocess.run(
            [str(program), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None
