"""`aurora-restore-dev`: the local environment (control plane, AWS simulator, operator process, demo).

It lives in its own distribution, so the operator's wheel and image never carry the simulator or moto."""

import argparse
import sys
from pathlib import Path

from .controlplane import BinariesError, ControlPlaneError, find_binaries
from .environment import DevEnvironmentError


def _up(args: argparse.Namespace) -> int:
    from .environment import up

    up(Path(args.dir), aws_delay=args.aws_delay, databases=args.databases, events=args.events)
    return 0


def _seed(args: argparse.Namespace) -> int:
    from .environment import seed

    seed(Path(args.dir))
    return 0


def _down(args: argparse.Namespace) -> int:
    from .environment import down

    down(Path(args.dir))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return 0 if run_demo(Path(args.dir), aws_delay=args.aws_delay) else 1


def _binaries(args: argparse.Namespace) -> int:
    from .controlplane.binaries import find_helm, find_promtool

    binaries = find_binaries()
    found = {
        "etcd": binaries.etcd,
        "kube-apiserver": binaries.kube_apiserver,
        "kube-controller-manager": binaries.kube_controller_manager,
        "kubectl": binaries.kubectl,
        # The chart tests and the linters run these two; building them here lets CI build everything up front.
        "helm": find_helm(),
        "promtool": find_promtool(),
    }
    print("\n".join(f"{name}: {path}" for name, path in found.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurora-restore-dev", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start everything in the background and write DIR/env")
    up.add_argument("--dir", default=".dev", help="working directory (default .dev)")
    up.add_argument("--aws-delay", type=float, default=3.0, help="seconds each simulated RDS operation takes (default 3)")
    up.add_argument(
        "--databases", action=argparse.BooleanOptionalAction, default=None,
        help="back each simulated cluster with a real PostgreSQL/MariaDB server (default: when installed)",
    )
    up.add_argument(
        "--events", action="store_true",
        help="deliver RDS events to an SQS queue the operator wakes up on (AURORA_RESTORE_EVENTS_QUEUE_URL)",
    )
    up.set_defaults(func=_up)
    seed = commands.add_parser("seed", help="create demo source clusters, snapshots and KMS keys")
    seed.add_argument("--dir", default=".dev")
    seed.set_defaults(func=_seed)
    down = commands.add_parser("down", help="stop everything `up` started")
    down.add_argument("--dir", default=".dev")
    down.set_defaults(func=_down)
    demo = commands.add_parser("demo", help="up (unless running), seed, apply examples/orders-stage.yaml, watch")
    demo.add_argument("--dir", default=".dev")
    demo.add_argument("--aws-delay", type=float, default=3.0)
    demo.set_defaults(func=_demo)
    binaries = commands.add_parser(
        "binaries",
        help="find or build etcd, kube-apiserver, kube-controller-manager and kubectl (honours KUBEBUILDER_ASSETS), "
        "helm (HELM) and promtool (PROMTOOL)",
    )
    binaries.set_defaults(func=_binaries)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DevEnvironmentError, ControlPlaneError, BinariesError) as error:  # expected: a one-line message
        print(f"aurora-restore-dev: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
