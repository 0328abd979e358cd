"""A local Kubernetes control plane for tests and the dev environment: real etcd, kube-apiserver and
kube-controller-manager (garbage collector and namespace controller only), no nodes.

``find_binaries`` locates (KUBEBUILDER_ASSETS, then a per-user cache) or builds the binaries; ``ControlPlane``
runs them under a working directory; ``stop_from_state`` stops one started by another process.
See docs/control-plane.md.
"""

from .binaries import (
    ETCD_VERSION,
    KUBERNETES_VERSION,
    PROMETHEUS_VERSION,
    Binaries,
    BinariesError,
    cached_binaries_dir,
    find_binaries,
    find_helm,
    find_promtool,
)
from .server import ControlPlane, ControlPlaneError, stop_from_state

__all__ = [
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "PROMETHEUS_VERSION",
    "Binaries",
    "BinariesError",
    "ControlPlane",
    "ControlPlaneError",
    "cached_binaries_dir",
    "find_binaries",
    "find_helm",
    "find_promtool",
    "stop_from_state",
]
