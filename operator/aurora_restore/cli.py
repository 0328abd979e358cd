"""`aurora-restore`: the operator's command line (CRDs, IAM policies). The local environment has its own,
`aurora-restore-dev`, in the devenv distribution."""

import argparse
import sys


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

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
