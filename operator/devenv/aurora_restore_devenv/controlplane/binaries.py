"""Find, or build once and cache, the binaries the local control plane runs.

They are etcd, kube-apiserver, kube-controller-manager and kubectl. Where they come from, first match wins:

1. ``KUBEBUILDER_ASSETS``: the directory controller-runtime's envtest reads (``setup-envtest use -p path`` prints
   one). It must hold ``etcd`` and ``kube-apiserver``; ``kubectl`` is optional (None when absent).
   ``kube-controller-manager`` is taken from there when present; envtest's asset archives do not ship it, so
   otherwise it comes from the cache below (built there if missing, and only it: etcd, kube-apiserver and kubectl
   are still the assets'). That controller-manager is KUBERNETES_VERSION's, whatever version the assets are.
2. The cache ``${AURORA_RESTORE_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/aurora-restore-operator}/bin/<versions>/``.
3. A build from Go modules into that cache, of only the binaries it lacks: a cache filled before
   kube-controller-manager was added gets just that one built. No package repository ships a recent
   kube-apiserver, and ``go install`` refuses k8s.io/kubernetes and etcd's server module because their go.mod
   files carry replace directives, so each is built as a dependency of a throwaway wrapper module. A first build
   of everything takes five minutes or more on a 2-core machine; it fills Go's module and build caches, so a
   rebuild of the same versions takes about a minute.

The build holds a file lock (two pytest-xdist workers or two shells build once) and installs each binary by
renaming a complete file into place (a killed build never leaves half a binary behind).

``find_helm`` does the same for helm, which the chart tests run: the ``HELM`` environment variable wins (a path
to a helm 4 or 3.18+ executable: the tests match its schema error messages), else
``<cache>/bin/helm-<HELM_VERSION>/helm``, else ``go install`` into that directory. helm's module has no replace
directives, so a plain ``go install`` works; its version is stamped the way helm's Makefile does, and helm 4 takes
its default Kubernetes version from the client-go it was built with.

``find_promtool`` does the same for Prometheus' promtool, which checks the chart's alerting rules: the ``PROMTOOL``
environment variable wins, else ``<cache>/bin/promtool-<PROMETHEUS_VERSION>/promtool``, else a build into that
directory. Prometheus' go.mod has no replace directives, so that is a plain ``go install`` too.
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

# promtool for checking the chart's Prometheus rules. Prometheus 3.x publishes its Go module as v0.3<minor>.<patch>
# (v3.16.0 is v0.316.0, the newest the Go module proxy served when it was chosen).
PROMETHEUS_VERSION = "v3.16.0"
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"

# The commands built from k8s.io/kubernetes, and every binary of the control plane's cache directory.
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kubectl")
CONTROL_PLANE_BINARIES = ("etcd", *KUBERNETES_COMMANDS)

Progress = Callable[[str], None]

# How often a running `go build` reports that it is still busy, so a cold build never looks hung.
HEARTBEAT_SECONDS = 60.0


class BinariesError(Exception):
    """The binaries are neither provided nor cached, and could not be built."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the executables a ControlPlane runs; kubectl is only for people poking at the control plane.

    Without a kube-controller-manager, a ControlPlane runs no controllers (no garbage collection, namespaces stay
    Terminating); find_binaries always returns one.
    """

    etcd: Path
    kube_apiserver: Path
    kubectl: Path | None
    kube_controller_manager: Path | None = None


def find_binaries(progress: Progress | None = None) -> Binaries:
    """Return the binaries from KUBEBUILDER_ASSETS or the cache, building them into the cache when missing."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        return binaries_from_assets(Path(assets), progress)
    directory = cached_binaries_dir()
    build_binaries(directory, progress or print_progress)
    return Binaries(
        etcd=directory / "etcd",
        kube_apiserver=directory / "kube-apiserver",
        kubectl=directory / "kubectl",
        kube_controller_manager=directory / "kube-controller-manager",
    )


def binaries_from_assets(directory: Path, progress: Progress | None = None) -> Binaries:
    """Take the binaries from an envtest-style assets directory, failing loudly rather than building them.

    Only kube-controller-manager, which envtest's assets lack, may come from the cache (and be built there).
    """
    missing = [name for name in ("etcd", "kube-apiserver") if not is_executable(directory / name)]
    if missing:
        raise BinariesError(
            f"KUBEBUILDER_ASSETS={directory} has no executable {' or '.join(missing)}. The directory must hold "
            "etcd and kube-apiserver (kubectl is optional), like the one `setup-envtest use -p path` prints; "
            "unset KUBEBUILDER_ASSETS to build them from Go modules instead."
        )
    kubectl = directory / "kubectl"
    controller_manager = directory / "kube-controller-manager"
    if not is_executable(controller_manager):
        cached = cached_binaries_dir()
        build_binaries(cached, progress or print_progress, ("kube-controller-manager",))
        controller_manager = cached / "kube-controller-manager"
    return Binaries(
        etcd=directory / "etcd",
        kube_apiserver=directory / "kube-apiserver",
        kubectl=kubectl if is_executable(kubectl) else None,
        kube_controller_manager=controller_manager,
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


def missing_binaries(directory: Path, names: tuple[str, ...] = CONTROL_PLANE_BINARIES) -> list[str]:
    return [name for name in names if not is_executable(directory / name)]


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def print_progress(message: str) -> None:
    print(f"[control plane] {message}", file=sys.stderr, flush=True)


def build_binaries(target: Path, progress: Progress, names: tuple[str, ...] = CONTROL_PLANE_BINARIES) -> None:
    """Build those of ``names`` that ``target`` lacks into it, unless another process does it first.

    The lock file sits beside the target; whoever holds it may delete leftovers of builds that were killed.
    Binaries already there are kept, so a cache filled by an older version of this module is completed.
    """
    if not missing_binaries(target, names):
        return
    if shutil.which("go") is None:
        raise BinariesError(
            f"{', '.join(missing_binaries(target, names))} missing from {target}, and there is no `go` on PATH "
            "to build them. Install Go 1.24 or newer (https://go.dev/dl/), or point KUBEBUILDER_ASSETS at a directory "
            "holding etcd and kube-apiserver, e.g. `export KUBEBUILDER_ASSETS=$(setup-envtest use -p path 1.34.x)` "
            "(kube-controller-manager, which envtest lacks, is still built)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f".{target.name}.lock", progress):
        missing = missing_binaries(target, names)
        if not missing:
            progress(f"another process has built the binaries into {target}")
            return
        remove_abandoned_builds(target)
        # Everything of this build (wrapper modules, binaries) lives in one directory beside the target, so
        # whoever takes the lock after a killed build can remove all of it.
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            build = GoBuild(staging, progress)
            build.run(missing)
            target.mkdir(mode=0o755, exist_ok=True)
            for name in missing:
                os.replace(build.output / name, target / name)  # same file system: atomic, whole files only
            progress(f"installed {', '.join(missing)} into {target}")
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
    return find_go_tool(
        "helm",
        "HELM",
        cached_helm_dir(),
        f"{HELM_MODULE}/cmd/helm@{HELM_VERSION}",
        # -X as in helm's Makefile, else `helm version` reports only the minor version.
        f"-X {HELM_MODULE}/internal/version.version={HELM_VERSION}",
        progress,
    )


def find_promtool(progress: Progress | None = None) -> Path:
    """Return promtool from the PROMTOOL environment variable or the cache, building it into the cache if missing."""
    return find_go_tool(
        "promtool",
        "PROMTOOL",
        cached_promtool_dir(),
        f"{PROMETHEUS_MODULE}/cmd/promtool@{prometheus_module_version()}",
        # What Prometheus' release build (.promu.yml) stamps, else `promtool --version` shows no version.
        f"-X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION.removeprefix('v')}",
        progress,
    )


def prometheus_module_version() -> str:
    """Prometheus v3.<minor>.<patch> is the Go module version v0.3<minor, two digits>.<patch>."""
    major, minor, patch = PROMETHEUS_VERSION.removeprefix("v").split(".")
    return f"v0.{major}{int(minor):02d}.{patch}"


def cached_helm_dir() -> Path:
    return cache_dir() / "bin" / f"helm-{HELM_VERSION}"


def cached_promtool_dir() -> Path:
    return cache_dir() / "bin" / f"promtool-{PROMETHEUS_VERSION}"


def find_go_tool(
    name: str, variable: str, directory: Path, package: str, ldflags: str, progress: Progress | None
) -> Path:
    """The executable ``variable`` names, else ``directory``/``name``, `go install`ed there from ``package`` first."""
    configured = os.environ.get(variable)
    if configured:
        path = Path(configured).expanduser()
        if not is_executable(path):
            raise BinariesError(
                f"{variable}={configured} is not an executable file; unset {variable} to build {name} instead"
            )
        return path
    if not is_executable(directory / name):
        install_go_tool(name, variable, directory, package, ldflags, progress or print_progress)
    return directory / name


def install_go_tool(
    name: str, variable: str, target: Path, package: str, ldflags: str, progress: Progress
) -> None:
    """`go install` ``package`` into ``target`` (under the same lock-and-rename scheme as the control plane)."""
    if shutil.which("go") is None:
        raise BinariesError(
            f"{name} is not in {target} and there is no `go` on PATH to build it. Install Go 1.24 or newer "
            f"(https://go.dev/dl/), or set {variable} to the path of a {name} executable."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f".{target.name}.lock", progress):
        if is_executable(target / name):
            progress(f"another process has built {name} into {target}")
            return
        remove_abandoned_builds(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            build = GoBuild(staging, progress)
            build.output.mkdir()
            build.report(f"building {package} from Go modules (a first build takes a few minutes)")
            build.env["GOBIN"] = str(build.output)
            build.go(["install", "-v", "-trimpath", "-ldflags", ldflags, package], staging, name)
            build.report(f"built {name}")
            build.output.chmod(0o755)
            if target.exists():
                shutil.rmtree(target)
            build.output.rename(target)
            progress(f"installed {name} into {target}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)


class GoBuild:
    """One build of control plane binaries (or of helm, promtool) into ``workspace``/bin, printing each stage."""

    def __init__(self, workspace: Path, progress: Progress) -> None:
        self.workspace = workspace
        self.output = workspace / "bin"
        self.progress = progress
        self.started = time.monotonic()
        # GOWORK=off: a go.work in a parent directory must not pull other modules into the wrappers.
        self.env = {**os.environ, "GOWORK": "off"}

    def run(self, names: list[str]) -> None:
        """Build ``names``, a subset of CONTROL_PLANE_BINARIES."""
        unknown = set(names) - set(CONTROL_PLANE_BINARIES)
        if unknown:
            raise ValueError(f"no recipe for {sorted(unknown)}")
        commands = [command for command in KUBERNETES_COMMANDS if command in names]
        described = [f"{command} {KUBERNETES_VERSION}" for command in commands]
        if "etcd" in names:
            described.append(f"etcd {ETCD_VERSION}")
        self.report(
            f"building {', '.join(described)} from Go modules (a first build takes five minutes or more; "
            "rebuilds reuse Go's caches)"
        )
        self.output.mkdir()
        if commands:
            self.build_kubernetes(new_directory(self.workspace / "kubernetes-wrapper"), commands)
        if "etcd" in names:
            self.build_etcd(new_directory(self.workspace / "etcd-wrapper"))
        self.report("build finished")

    def build_kubernetes(self, wrapper: Path, commands: list[str]) -> None:
        """Build Kubernetes commands as dependencies of a wrapper module that undoes the staging replaces.

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
        # All commands, whichever are built: the requirements `go mod tidy` keeps, and so the versions built, are
        # the same whether a command is built with the others or later on its own.
        write_tools_file(wrapper, [f"k8s.io/kubernetes/cmd/{command}" for command in KUBERNETES_COMMANDS])
        self.report(f"downloading modules (go mod tidy, {len(staging_modules)} staging modules replaced)")
        self.go(["mod", "tidy"], wrapper)
        major, minor, _ = KUBERNETES_VERSION.removeprefix("v").split(".")
        # What Kubernetes' own build stamps (hack/lib/version.sh); without it the binaries report v0.0.0.
        version_flags = " ".join(
            f"-X {package}.{variable}={value}"
            for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
            for variable, value in (("gitVersion", KUBERNETES_VERSION), ("gitMajor", major), ("gitMinor", minor))
        )
        for command in commands:
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
