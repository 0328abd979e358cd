"""`aurora-restore`: the operator's command line (run the operator, CRDs, IAM policies, reasons). The local
environment has its own, `aurora-restore-dev`, in the devenv distribution."""

import argparse
import os
import sys
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from .run import run

    return run(args)


def _crd(args: argparse.Namespace) -> int:
    from .api.crd import build_crds, render_crd, render_crds

    if args.out is None:
        sys.stdout.write(render_crds())
        return 0
    for crd in build_crds():
        (Path(args.out) / f"{crd['metadata']['name']}.yaml").write_text(render_crd(crd))
    return 0


def _reasons(args: argparse.Namespace) -> int:
    from . import reasons
    from .troubleshooting import render_markdown

    if args.markdown:
        sys.stdout.write(render_markdown())
        return 0
    for name, reason in reasons.REASONS.items():
        print(f"{name}\t{reason.kind}\t{reason.meaning}")
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
        secrets_tag = None
        if args.secrets_tag is not None:
            key, equals, value = args.secrets_tag.partition("=")
            if not equals:
                print("aurora-restore: --secrets-tag takes KEY=VALUE", file=sys.stderr)
                return 2
            secrets_tag = (key, value)
        try:
            policy = iam_policy.operator_policy(args.account, args.partition, args.assumable_role or None,
                                                secrets_prefix=args.secrets_prefix, secrets_tag=secrets_tag,
                                                events_queue_url=args.events_queue_url or None)
        except ValueError as error:
            print(f"aurora-restore: {error}", file=sys.stderr)
            return 2
    print(iam_policy.render(policy))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurora-restore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    from .run import add_arguments  # light: the heavy imports happen when it runs

    run = commands.add_parser("run", help="run the operator: stand by, lead when elected, drain on SIGTERM")
    add_arguments(run)
    run.set_defaults(func=_run)

    crd = commands.add_parser("crd", help="print the CustomResourceDefinitions generated from the models")
    crd.add_argument("--out", metavar="DIR", help="write each CRD to DIR/<name>.yaml instead of printing them all")
    crd.set_defaults(func=_crd)

    why = commands.add_parser("reasons", help="list every reason the operator emits (status, Events, metrics)")
    why.add_argument("--markdown", action="store_true", help="print docs/troubleshooting.md")
    why.set_defaults(func=_reasons)

    from .aws import iam_policy  # light: json and re only

    iam = commands.add_parser("iam-policy", help="print the least-privilege IAM policy (or trust policy)")
    iam.add_argument("--account", default="*", help="AWS account id for resource ARNs (default *)")
    iam.add_argument("--partition", default="aws")
    iam.add_argument("--assumable-role", action="append", help="role ARN (glob) the operator may assume; repeatable")
    iam.add_argument("--secrets-prefix", default=iam_policy.DEFAULT_SECRETS_PREFIX, metavar="PREFIX",
                     help="Secrets Manager secrets (masterPassword.secretsManagerSecretId) may be read only when "
                          f"their name starts with PREFIX (default {iam_policy.DEFAULT_SECRETS_PREFIX}; '' for any "
                          "name, with --secrets-tag)")
    iam.add_argument("--secrets-tag", metavar="KEY=VALUE",
                     help="and only when they carry this tag")
    iam.add_argument("--events-queue-url", default=os.environ.get("AURORA_RESTORE_EVENTS_QUEUE_URL"), metavar="URL",
                     help="also grant reading the RDS events queue (default $AURORA_RESTORE_EVENTS_QUEUE_URL)")
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
