"""`python -m aurora_restore_devenv.simulator`: run the AWS simulator in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from .settings import SimulatorSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m aurora_restore_devenv.simulator",
        description="moto in server mode with RDS transitions, pagination, ARNs, "
        "validation, a request log and fault injection.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=5000, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--delay",
        type=float,
        metavar="SECONDS",
        default=0.0,
        help="seconds each RDS transition takes; 0 = at once, like moto (default: %(default)s)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        metavar="N",
        default=None,
        help="at most this many items per page of the RDS describe calls (default: AWS's limits)",
    )
    parser.add_argument(
        "--restorable-lag",
        type=float,
        metavar="SECONDS",
        default=300.0,
        help="how far DescribeDBClusters' LatestRestorableTime trails the present; a RestoreToTime "
        "after it is refused (default: %(default)s, about what RDS shows)",
    )
    parser.add_argument(
        "--databases",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give every aurora-postgresql cluster a PostgreSQL server and every aurora-mysql "
        "cluster a MariaDB server (default: on when PostgreSQL is installed)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        default=None,
        help="where the database servers, snapshot dumps and CA live "
        "(default: a temporary directory, removed at exit)",
    )
    parser.add_argument(
        "--db-log-statements",
        action="store_true",
        help="log every SQL statement the clients send: log_statement=all for PostgreSQL (in its "
        "server.log), the general log for MariaDB (general.log); the simulator's own statements are not logged",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    try:
        settings = SimulatorSettings(
            delay=args.delay, page_size=args.page_size, restorable_lag=args.restorable_lag
        )
    except ValueError as error:
        parser.error(str(error))
    # SIGTERM (SimulatorProcess.stop) ends the process as Ctrl-C does (database servers stop too).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    log = _simulator_logger()

    from .databases import DatabaseSetupError, create_fleet

    try:
        databases = create_fleet(
            args.databases, args.data_dir, warn=log.warning, log_statements=args.db_log_statements
        )
    except (DatabaseSetupError, OSError) as error:
        parser.error(str(error))
    if databases is not None:
        log.info(
            "database servers: PostgreSQL %s%s; data in %s",
            databases.postgres.version if databases.postgres else "-",
            f", MariaDB {databases.mariadb.version}" if databases.mariadb else ", no MariaDB",
            databases.root,
        )

    from .server import serve  # imports moto: only once the arguments are valid

    try:
        serve(args.host, args.port, settings, verbose=args.verbose, databases=databases)
    except KeyboardInterrupt:
        pass


def _simulator_logger() -> logging.Logger:
    """The simulator's own log lines (database servers starting, failing) go to stderr; moto's
    and werkzeug's logging is left as it is."""
    logger = logging.getLogger("aurora_restore_devenv.simulator")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


if __name__ == "__main__":
    main()
