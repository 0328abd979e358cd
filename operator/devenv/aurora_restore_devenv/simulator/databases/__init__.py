"""Real database servers behind the simulated Aurora clusters (`--databases`).

Every aurora-postgresql cluster gets a PostgreSQL server and every aurora-mysql cluster a MariaDB server,
on a free loopback port, with TLS, the cluster's master user and its data: snapshots are dumps of the
server, restores load them. See docs/simulator.md, "Database servers".

- `binaries`: where PostgreSQL and MariaDB are installed,
- `tls`: the simulator's CA and the servers' certificate,
- `server_user`: who the servers run as (`nobody` when the simulator runs as root),
- `server_process`, `postgres`, `mariadb`: one server process, and what each engine does differently,
- `fleet`: every server and dump of the simulator, each cluster's work done in order on its own thread,
- `managed_passwords`, `rds_actions`: what RDS actions do to the servers (hooked into moto).

Only `rds_actions` and `managed_passwords` import moto.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .binaries import find_mariadb, find_postgres
from .fleet import DatabaseFleet, DatabaseSetupError

__all__ = ["DatabaseFleet", "DatabaseSetupError", "create_fleet"]


def create_fleet(
    enabled: bool | None, data_dir: Path | None, warn: Callable[[str], None], log_statements: bool = False
) -> DatabaseFleet | None:
    """The fleet for `--databases` (True), `--no-databases` (False) or neither (None: on when PostgreSQL
    is installed); None when databases are off. Missing engines are reported through `warn`.
    `log_statements` (`--db-log-statements`): the servers log every statement their clients send."""
    if enabled is False:
        return None
    postgres = find_postgres()
    mariadb = find_mariadb()
    hint = "install the postgresql and mariadb-server packages (.ci/install-system-packages does)"
    if postgres is None:
        if enabled:
            raise DatabaseSetupError(f"--databases: no PostgreSQL server found; {hint}")
        warn(f"no PostgreSQL server found: simulated clusters get no database servers; {hint}")
        return None
    if mariadb is None:
        warn(f"no MariaDB server found: aurora-mysql clusters get no database server; {hint}")
    return DatabaseFleet(data_dir, postgres, mariadb, log_statements=log_statements)
