"""`python -m aurora_restore.dev.simulator`: run the AWS simulator in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys

from .settings import SimulatorSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m aurora_restore.dev.simulator",
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
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    try:
        settings = SimulatorSettings(delay=args.delay, page_size=args.page_size)
    except ValueError as error:
        parser.error(str(error))
    # SIGTERM (SimulatorProcess.stop) ends the process as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))

    from .server import serve  # imports moto: only once the arguments are valid

    try:
        serve(args.host, args.port, settings, verbose=args.verbose)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
