"""Find, or build once and cache, the etcd, kube-apiserver and kubectl binaries the local control plane runs.

Where they come from, first match wins:

1. ``KUBEBUILDER_ASSETS``: the directory controller-runtime's envtest reads (``setup-envtest use -p path`` prints
   one). It must hold ``etcd`` and ``kube-apiserver``; ``kubectl`` is optional.
2. The cache ``${AURORA_RESTORE_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/aurora-restore-operator}/bin/<versions>/``.
3. A build from Go modules into that cache. No package repository ships a recent kube-apiserver, and
   ``go install`` refuses k8s.io/kubernetes and etcd's server module because their go.mod files carry replace
   directives, so each is built as a dependency of a throwaway wrapper module. A first build takes about five
   minutes on a fast 2-core machine (more on slower ones); it fills Go's module and build caches, so a rebuild of
   the same versions takes well under a minute.

The build holds a file lock (two pytest-xdist workers or two shells build once) and installs by renaming a
complete directory into place (a killed build never leaves half a binary behind).

``find_helm`` does the same for helm, which the chart tests run: the ``HELM`` environment variable wins (a path
to a helm 4 or 3.18+ executable: the tests match its schema error messages), else
``<cache>/bin/helm-<HELM_VERSION>/helm``, else ``go install`` into that directory. helm's module has no replace
directives, so a plain ``go install`` works; its version is stamped the way helm's Makefile does, and helm 4 takes
its default Kubernetes version from the client-go it was built with.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

KUBERNETES_VERSION = "v1.34.4"
# The version k8s.io/kubernetes KUBERNETES_VERSION requires for go.etcd.io/etcd/client/v3: kube-apiserver is
# tested against it, and older etcd releases lack the watch-progress and consistent-list support it relies on.
ETCD_VERSION = "v3.6.4"

# helm for the chart tests (tests/chart): the newest release the Go module proxy served when it was chosen.
HELM_VERSION = "v4.3.1"
HELM_MODULE = "helm.sh/helm/v4"

Progress = Callable[[str], None]

# How often a running `go build` reports that it is still busy, so a cold build never looks hung.
HEARTBEAT_SECONDS = 60.0


class BinariesError(Exception):
    """The binaries are neither provided nor cached, and could not be built."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the executables a ControlPlane runs; kubectl is only for people poking at the control plane."""

    etcd: Path
    kube_apiserver: Path
    kubectl: Path | None


def find_binaries(progress: Progress | None = None) -> Binaries:
    """Return the binaries from KUBEBUILDER_ASSETS or the cache, building them into the cache when missing."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        return binaries_from_assets(Path(assets))
    directory = cached_binaries_dir()
    if not has_all_binaries(directory):
        build_binaries(directory, progress or print_progress)
    return Binaries(
        etcd=directory / "etcd",
        kube_apiserver=directory / "kube-apiserver",
        kubectl=directory / "kubectl",
    )


def binaries_from_assets(directory: Path) -> Binaries:
    """Take the binaries from an envtest-style assets directory, failing loudly rather than building."""
    missing = [name for name in ("etcd", "kube-apiserver") if not is_executable(directory / name)]
    if missing:
        raise BinariesError(
            f"KUBEBUILDER_ASSETS={directory} has no executable {' or '.join(missing)}. The directory must hold "
            "etcd and kube-apiserver (kubectl is optional), like the one `setup-envtest use -p path` prints; "
            "unset KUBEBUILDER_ASSETS to build them from Go modules instead."
        )
    kubectl = directory / "kubectl"
    return Binaries(
        etcd=directory / "etcd",
        kube_apiserver=directory / "kube-apiserver",
        kubectl=kubectl if is_executable(kubectl) else None,
    )


def cache_dir() -> Path:
    """The per-user cache of the project, outside any checkout, so every clone and worktree shares one build."""
    configured = os.environ.get("AURORA_RESTORE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg_cache).expanduser() / "aurora-restore-operator"


def cached_binaries_dir() -> Path:
    """The directory of one version pair; a version bump builds into a new directory instead of mixing them."""
    return cache_dir() / "bin" / f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}"


def has_all_binaries(directory: Path) -> bool:
    return all(is_executable(directory / name) for name in ("etcd", "kube-apiserver", "kubectl"))


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def print_progress(message: str) -> None:
    print(f"[control plane] {message}", file=sys.stderr, flush=True)


def build_binaries(target: Path, progress: Progress) -> None:
    """Build all binaries into ``target`` unless another process does it first.

    The lock file sits beside the target; whoever holds it may delete leftovers of builds that were killed.
    """
    if shutil.which("go") is None:
        raise BinariesError(
            f"etcd and kube-apiserver are not in {target} and there is no `go` on PATH to build them. "
            "Install Go 1.24 or newer (https://go.dev/dl/), or point KUBEBUILDER_ASSETS at a directory holding "
            "etcd and kube-apiserver, e.g. `export KUBEBUILDER_ASSETS=$(setup-envtest use -p path 1.34.x)`."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f".{target.name}.lock", progress):
        if has_all_binaries(target):
            progress(f"another process has built the binaries into {target}")
            return
        remove_abandoned_builds(target)
        # Everything of this build (wrapper modules, binaries) lives in one directory beside the target, so
        # whoever takes the lock after a killed build can remove all of it.
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            GoBuild(staging, progress).run()
            output = staging / "bin"
            output.chmod(0o755)
            if target.exists():
                shutil.rmtree(target)
            output.rename(target)
            progress(f"installed etcd, kube-apiserver and kubectl into {target}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def exclusive_lock(path: Path, progress: Progress) -> Iterator[None]:
    """Hold an advisory lock on ``path``; the kernel releases it if the holder dies, so it never goes stale."""
    with open(path, "w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another process that is building the binaries (lock {path})")
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def remove_abandoned_builds(target: Path) -> None:
    """Delete staging directories of killed builds; only call this while holding the build lock."""
    for leftover in target.parent.glob(f".{target.name}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def find_helm(progress: Progress | None = None) -> Path:
    """Return helm from the HELM environment variable or the cache, building it into the cache when missing."""
    configured = os.environ.get("HELM")
    if configured:
        path = Path(configured).expanduser()
        if not is_executable(path):
            raise BinariesError(f"HELM={configured} is not an executable file; unset HELM to build helm instead")
        return path
    directory = cached_helm_dir()
    helm = directory / "helm"
    if not is_executable(helm):
        build_helm(directory, progress or print_progress)
    return helm


def cached_helm_dir() -> Path:
    return cache_dir() / "bin" / f"helm-{HELM_VERSION}"


def build_helm(target: Path, progress: Progress) -> None:
    """`go install` helm into ``target`` (under the same lock-and-rename scheme as the control plane binaries)."""
    if shutil.which("go") is None:
        raise BinariesError(
            f"helm is not in {target} and there is no `go` on PATH to build it. Install Go 1.24 or newer "
            "(https://go.dev/dl/), or set HELM to the path of a helm executable."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f".{target.name}.lock", progress):
        if is_executable(target / "helm"):
            progress(f"another process has built helm into {target}")
            return
        remove_abandoned_builds(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            build = GoBuild(staging, progress)
            build.output.mkdir()
            build.report(f"building helm {HELM_VERSION} from Go modules (a first build takes a few minutes)")
            # -X as in helm's Makefile, else `helm version` reports only the minor version.
            version_flag = f"-X {HELM_MODULE}/internal/version.version={HELM_VERSION}"
            build.env["GOBIN"] = str(build.output)
            build.go(
                ["install", "-v", "-trimpath", "-ldflags", version_flag, f"{HELM_MODULE}/cmd/helm@{HELM_VERSION}"],
                staging,
                "helm",
            )
            build.report("built helm")
            build.output.chmod(0o755)
            if target.exists():
                shutil.rmtree(target)
            build.output.rename(target)
            progress(f"installed helm into {target}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)


class GoBuild:
    """One build of kube-apiserver, kubectl and etcd into ``workspace``/bin, printing each stage and its time."""

    def __init__(self, workspace: Path, progress: Progress) -> None:
        self.workspace = workspace
        self.output = workspace / "bin"
        self.progress = progress
        self.started = time.monotonic()
        # GOWORK=off: a go.work in a parent directory must not pull other modules into the wrappers.
        self.env = {**os.environ, "GOWORK": "off"}

    def run(self) -> None:
        self.report(
            f"building kube-apiserver {KUBERNETES_VERSION}, kubectl {KUBERNETES_VERSION} and etcd {ETCD_VERSION} "
            "from Go modules (a first build takes five minutes or more; rebuilds reuse Go's caches)"
        )
        self.output.mkdir()
        self.build_kubernetes(new_directory(self.workspace / "kubernetes-wrapper"))
        self.build_etcd(new_directory(self.workspace / "etcd-wrapper"))
        self.report("build finished")

    def build_kubernetes(self, wrapper: Path) -> None:
        """Build kube-apiserver and kubectl as dependencies of a wrapper module that undoes the staging replaces.

        k8s.io/kubernetes points its k8s.io/* libraries at ./staging/... directories, which do not exist in the
        module download; the wrapper replaces each with the published module of the matching v0.<minor>.<patch>.
        """
        self.report(f"resolving k8s.io/kubernetes@{KUBERNETES_VERSION}")
        self.go(["mod", "init", "aurora-restore.local/kubernetes-binaries"], wrapper)
        self.go(["mod", "edit", f"-require=k8s.io/kubernetes@{KUBERNETES_VERSION}"], wrapper)
        staging_modules = self.staging_modules(wrapper)
        library_version = "v0." + KUBERNETES_VERSION.removeprefix("v1.")
        self.go(
            ["mod", "edit", *(f"-replace={module}={module}@{library_version}" for module in staging_modules)],
            wrapper,
        )
        write_tools_file(wrapper, ["k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kubectl"])
        self.report(f"downloading modules (go mod tidy, {len(staging_modules)} staging modules replaced)")
        self.go(["mod", "tidy"], wrapper)
        major, minor, _ = KUBERNETES_VERSION.removeprefix("v").split(".")
        # What Kubernetes' own build stamps (hack/lib/version.sh); without it the binaries report v0.0.0.
        version_flags = " ".join(
            f"-X {package}.{variable}={value}"
            for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
            for variable, value in (("gitVersion", KUBERNETES_VERSION), ("gitMajor", major), ("gitMinor", minor))
        )
        for command in ("kube-apiserver", "kubectl"):
            self.go_build(wrapper, f"k8s.io/kubernetes/cmd/{command}", command, ["-ldflags", version_flags])

    def build_etcd(self, wrapper: Path) -> None:
        """Build etcd from go.etcd.io/etcd/server/v3, whose root package is etcd's main package."""
        self.report(f"resolving go.etcd.io/etcd/server/v3@{ETCD_VERSION}")
        self.go(["mod", "init", "aurora-restore.local/etcd-binaries"], wrapper)
        self.go(["mod", "edit", f"-require=go.etcd.io/etcd/server/v3@{ETCD_VERSION}"], wrapper)
        write_tools_file(wrapper, ["go.etcd.io/etcd/server/v3"])
        self.go(["mod", "tidy"], wrapper)
        self.go_build(wrapper, "go.etcd.io/etcd/server/v3", "etcd", [])

    def staging_modules(self, wrapper: Path) -> list[str]:
        """The modules k8s.io/kubernetes's own go.mod replaces with ./staging/ directories."""
        module = f"k8s.io/kubernetes@{KUBERNETES_VERSION}"
        go_mod_path = json.loads(self.go(["mod", "download", "-json", module], wrapper))["GoMod"]
        go_mod = json.loads(self.go(["mod", "edit", "-json", go_mod_path], wrapper))
        modules = [
            replace["Old"]["Path"]
            for replace in go_mod.get("Replace") or []
            if replace["New"]["Path"].startswith("./staging/")
        ]
        if not modules:
            raise BinariesError(f"{module} has no ./staging replace directives in {go_mod_path}; update this recipe")
        return modules

    def go_build(self, wrapper: Path, package: str, binary: str, extra_flags: list[str]) -> None:
        """-trimpath keeps paths of this machine out of the binary and lets builds in any temp dir share the cache."""
        self.report(f"building {binary}")
        stage_started = time.monotonic()
        self.go(["build", "-v", "-trimpath", *extra_flags, "-o", str(self.output / binary), package], wrapper, binary)
        self.report(f"built {binary} in {format_duration(time.monotonic() - stage_started)}")

    def go(self, args: list[str], cwd: Path, building: str | None = None) -> str:
        """Run one go command and return its stdout; on failure raise with the tail of its output.

        While ``building`` a binary, go's -v output (one line per compiled package) feeds a periodic heartbeat.
        """
        command = ["go", *args]
        # Append mode: the child writes at the end however this process moves the shared offset to read.
        with tempfile.TemporaryFile(mode="a+") as log:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=self.env,
                stdout=log if building else subprocess.PIPE,
                stderr=log,
                text=True,
            )
            try:
                if building:
                    stdout = ""
                    self.follow_build(process, log, building)
                else:
                    stdout, _ = process.communicate()
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            log.seek(0)
            output = log.read()
        if process.returncode != 0:
            tail = "\n".join(output.splitlines()[-30:])
            raise BinariesError(f"`{' '.join(command)}` failed with exit code {process.returncode}:\n{tail}")
        return stdout

    def follow_build(self, process: subprocess.Popen[str], log: IO[str], binary: str) -> None:
        """Wait for a `go build -v`, reporting every HEARTBEAT_SECONDS how many packages it has compiled."""
        last_heartbeat = time.monotonic()
        while process.poll() is None:
            time.sleep(1.0)
            if time.monotonic() - last_heartbeat >= HEARTBEAT_SECONDS:
                log.seek(0)
                compiled = sum(1 for line in log if not line.startswith(("#", " ", "go: ")))
                self.report(f"still building {binary}: {compiled} packages compiled so far")
                last_heartbeat = time.monotonic()

    def report(self, message: str) -> None:
        self.progress(f"[{format_duration(time.monotonic() - self.started):>7}] {message}")


def write_tools_file(wrapper: Path, packages: list[str]) -> None:
    """Import the commands under a build tag, so `go mod tidy` keeps the requirements they need."""
    imports = "\n".join(f'\t_ "{package}"' for package in packages)
    (wrapper / "tools.go").write_text(
        "//go:build tools\n\n"
        "// Package tools lists the commands this wrapper module builds.\n"
        f"package tools\n\nimport (\n{imports}\n)\n"
    )


def new_directory(path: Path) -> Path:
    path.mkdir()
    return path


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"
