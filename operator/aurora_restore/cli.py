"""`aurora-restore`: the command line for developers and operators of this project."""

import argparse
import sys
from pathlib import Path


def _crd(args: argparse.Namespace) -> int:
    from .api.crd import render_crds

    sys.stdout.write(render_crds())
    return 0


def _iam_policy(args: argparse.Namespace) -> int:
    from .aws import iam_policy

    if args.trust:
        if not args.oidc_provider_arn:
            print("aurora-restore: --trust needs --oidc-provider-arn", file=sys.stderr)
            return 2
        policy = iam_policy.trust_policy(args.oidc_provider_arn, args.namespace, args.service_account)
    elif args.source_role:
        policy = iam_policy.source_role_policy(args.account, args.partition)
    else:
        policy = iam_policy.operator_policy(args.account, args.partition, args.assumable_role or None)
    print(iam_policy.render(policy))
    return 0


def _dev_up(args: argparse.Namespace) -> int:
    from .dev.environment import up

    up(Path(args.dir), aws_delay=args.aws_delay, databases=args.databases)
    return 0


def _dev_seed(args: argparse.Namespace) -> int:
    from .dev.environment import seed

    seed(Path(args.dir))
    return 0


def _dev_down(args: argparse.Namespace) -> int:
    from .dev.environment import down

    down(Path(args.dir))
    return 0


def _dev_demo(args: argparse.Namespace) -> int:
    from .dev.demo import run_demo

    return 0 if run_demo(Path(args.dir), aws_delay=args.aws_delay) else 1


def _dev_binaries(args: argparse.Namespace) -> int:
    from .dev.controlplane import find_binaries

    binaries = find_binaries()
    print(f"etcd: {binaries.etcd}\nkube-apiserver: {binaries.kube_apiserver}\nkubectl: {binaries.kubectl}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurora-restore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    crd = commands.add_parser("crd", help="print the CustomResourceDefinitions generated from the models")
    crd.set_defaults(func=_crd)

    iam = commands.add_parser("iam-policy", help="print the least-privilege IAM policy (or trust policy)")
    iam.add_argument("--account", default="*", help="AWS account id for resource ARNs (default *)")
    iam.add_argument("--partition", default="aws")
    iam.add_argument("--assumable-role", action="append", help="role ARN (glob) the operator may assume; repeatable")
    iam.add_argument("--source-role", action="store_true", help="the policy of a cross-account source role")
    iam.add_argument("--trust", action="store_true", help="the IRSA trust policy of the operator's role")
    iam.add_argument("--oidc-provider-arn", help="with --trust: the cluster's OIDC provider ARN")
    iam.add_argument("--namespace", default="aurora-restore-system", help="with --trust: the operator's namespace")
    iam.add_argument("--service-account", default="aurora-restore-operator", help="with --trust")
    iam.set_defaults(func=_iam_policy)

    dev = commands.add_parser("dev", help="the local environment: control plane, AWS simulator, operator")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)
    dev_up = dev_commands.add_parser("up", help="start everything in the background and write DIR/env")
    dev_up.add_argument("--dir", default=".dev", help="working directory (default .dev)")
    dev_up.add_argument(
        "--aws-delay", type=float, default=3.0, help="seconds each simulated RDS operation takes (default 3)"
    )
    dev_up.add_argument(
        "--databases", action=argparse.BooleanOptionalAction, default=None,
        help="back each simulated cluster with a real PostgreSQL/MariaDB server (default: when installed)",
    )
    dev_up.set_defaults(func=_dev_up)
    dev_seed = dev_commands.add_parser("seed", help="create demo source clusters, snapshots and KMS keys")
    dev_seed.add_argument("--dir", default=".dev")
    dev_seed.set_defaults(func=_dev_seed)
    dev_down = dev_commands.add_parser("down", help="stop everything `dev up` started")
    dev_down.add_argument("--dir", default=".dev")
    dev_down.set_defaults(func=_dev_down)
    dev_demo = dev_commands.add_parser("demo", help="up (unless running), seed, apply examples/orders-stage.yaml, watch")
    dev_demo.add_argument("--dir", default=".dev")
    dev_demo.add_argument("--aws-delay", type=float, default=3.0)
    dev_demo.set_defaults(func=_dev_demo)
    dev_binaries = dev_commands.add_parser(
        "binaries", help="find or build etcd, kube-apiserver and kubectl (honours KUBEBUILDER_ASSETS)"
    )
    dev_binaries.set_defaults(func=_dev_binaries)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as error:  # a clear one-line message for expected failures (already running, ...)
        if type(error).__name__ in ("DevEnvironmentError", "ControlPlaneError", "BinariesError"):
            print(f"aurora-restore: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
