"""Where the control plane's binaries come from (KUBEBUILDER_ASSETS, the cache, a build), with stand-in files.

Nothing here runs Go: a build is replaced by one that writes stand-in executables, to see what it is asked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aurora_restore_devenv.controlplane import binaries
from aurora_restore_devenv.controlplane.binaries import (
    CONTROL_PLANE_BINARIES,
    BinariesError,
    GoBuild,
    cached_binaries_dir,
    find_binaries,
    find_promtool,
    prometheus_module_version,
)


def stand_in(path: Path, content: str = "stand-in") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n# {content}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache, KUBEBUILDER_ASSETS unset; returns the directory the control plane binaries go to."""
    monkeypatch.setenv("AURORA_RESTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    return cached_binaries_dir()


@pytest.fixture
def builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record what each build is asked for; the build writes stand-ins and `go` seems to be installed."""
    asked: list[list[str]] = []

    def run(self: GoBuild, names: list[str]) -> None:
        asked.append(list(names))
        self.output.mkdir()
        for name in names:
            stand_in(self.output / name, "built")

    monkeypatch.setattr(GoBuild, "run", run)
    monkeypatch.setattr(binaries.shutil, "which", lambda command: str(tmp_path / "bin" / command))
    return asked


@pytest.fixture
def no_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-go-here"))


def assets_dir(tmp_path: Path, names: tuple[str, ...]) -> Path:
    directory = tmp_path / "assets"
    for name in names:
        stand_in(directory / name, "from the assets")
    return directory


def test_assets_without_a_controller_manager_take_it_from_the_cache(
    tmp_path: Path, cache: Path, builds: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(cache / "kube-controller-manager", "cached")
    assets = assets_dir(tmp_path, ("etcd", "kube-apiserver", "kubectl"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))

    found = find_binaries()

    assert (found.etcd, found.kube_apiserver, found.kubectl) == (
        assets / "etcd", assets / "kube-apiserver", assets / "kubectl"
    )
    assert found.kube_controller_manager == cache / "kube-controller-manager"
    assert builds == []


def test_assets_without_a_controller_manager_build_only_it(
    tmp_path: Path, cache: Path, builds: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = assets_dir(tmp_path, ("etcd", "kube-apiserver"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))

    found = find_binaries(progress=lambda message: None)

    assert builds == [["kube-controller-manager"]]
    assert found.kube_controller_manager == cache / "kube-controller-manager"
    assert found.etcd == assets / "etcd" and found.kubectl is None
    assert sorted(path.name for path in cache.iterdir()) == ["kube-controller-manager"]


def test_assets_with_a_controller_manager_use_it(
    tmp_path: Path, cache: Path, builds: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = assets_dir(tmp_path, ("etcd", "kube-apiserver", "kube-controller-manager"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))

    assert find_binaries().kube_controller_manager == assets / "kube-controller-manager"
    assert builds == []


def test_assets_lacking_etcd_fail_before_anything_is_built(
    tmp_path: Path, cache: Path, builds: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets_dir(tmp_path, ("kube-apiserver",))))

    with pytest.raises(BinariesError, match=r"has no executable etcd\b"):
        find_binaries()
    assert builds == []


def test_assets_without_a_controller_manager_and_no_go_name_what_is_missing(
    tmp_path: Path, cache: Path, no_go: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets_dir(tmp_path, ("etcd", "kube-apiserver"))))

    with pytest.raises(BinariesError, match=r"^kube-controller-manager missing from .*, and there is no `go` on PATH"):
        find_binaries()


def test_a_cache_filled_before_the_controller_manager_existed_is_completed(
    cache: Path, builds: list[list[str]]
) -> None:
    old = {name: stand_in(cache / name, f"old {name}") for name in ("etcd", "kube-apiserver", "kubectl")}
    before = {name: (path.stat().st_ino, path.read_text()) for name, path in old.items()}

    found = find_binaries(progress=lambda message: None)

    assert builds == [["kube-controller-manager"]]
    assert found.kube_controller_manager == cache / "kube-controller-manager"
    assert {name: (path.stat().st_ino, path.read_text()) for name, path in old.items()} == before
    assert not [path for path in cache.parent.iterdir() if ".partial-" in path.name], "staging left behind"


def test_an_empty_cache_builds_everything(cache: Path, builds: list[list[str]]) -> None:
    found = find_binaries(progress=lambda message: None)

    assert builds == [list(CONTROL_PLANE_BINARIES)]
    assert found.etcd == cache / "etcd" and found.kubectl == cache / "kubectl"
    assert find_binaries() == found and len(builds) == 1, "a second call must not build again"


def test_promtool_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    promtool = stand_in(tmp_path / "my-promtool")
    monkeypatch.setenv("PROMTOOL", str(promtool))

    assert find_promtool() == promtool


def test_promtool_that_is_not_executable_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMTOOL", str(tmp_path / "missing"))

    with pytest.raises(BinariesError, match=r"PROMTOOL=.* is not an executable file"):
        find_promtool()


def test_promtool_comes_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_go: None) -> None:
    monkeypatch.delenv("PROMTOOL", raising=False)
    monkeypatch.setenv("AURORA_RESTORE_CACHE_DIR", str(tmp_path / "cache"))
    cached = stand_in(tmp_path / "cache" / "bin" / f"promtool-{binaries.PROMETHEUS_VERSION}" / "promtool")

    assert find_promtool() == cached


def test_promtool_without_go_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_go: None) -> None:
    monkeypatch.delenv("PROMTOOL", raising=False)
    monkeypatch.setenv("AURORA_RESTORE_CACHE_DIR", str(tmp_path / "cache"))

    with pytest.raises(BinariesError, match=r"promtool is not in .* no `go` on PATH.*set PROMTOOL"):
        find_promtool()


@pytest.mark.parametrize(
    ("release", "module_version"), [("v3.16.0", "v0.316.0"), ("v3.5.0", "v0.305.0"), ("v3.10.2", "v0.310.2")]
)
def test_prometheus_releases_map_to_their_go_module_versions(
    release: str, module_version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(binaries, "PROMETHEUS_VERSION", release)

    assert prometheus_module_version() == module_version
