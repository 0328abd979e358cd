"""Build (or find) the control plane binaries ahead of time and print their directory.

    export KUBEBUILDER_ASSETS="$(python -m aurora_restore_devenv.controlplane)"

Useful before running tests in parallel, or to warm a CI cache; progress goes to stderr. With KUBEBUILDER_ASSETS
set, that directory is printed, and a kube-controller-manager it lacks is built into the cache. helm and promtool
are not built here: ``aurora-restore-dev binaries`` builds everything.
"""

import sys

from .binaries import BinariesError, find_binaries


def main() -> int:
    try:
        binaries = find_binaries()
    except BinariesError as error:
        print(error, file=sys.stderr)
        return 1
    print(binaries.kube_apiserver.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
