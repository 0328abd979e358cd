"""What ships: the operator's wheel holds only the `aurora_restore` package (no simulator, no control-plane builder,
no demo), and installs and imports in a fresh virtualenv without moto or the dev extra, as the image does."""

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from helm_cli import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources: setuptools writes build/ and egg-info into the tree it builds, which must not
    be the checkout that other tests (and the editable install) read."""
    directory = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "operator" / "aurora_restore", source / "operator" / "aurora_restore",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(directory), str(source)],
        check=True, stdin=subprocess.DEVNULL, timeout=300,
    )
    (built,) = directory.glob("aurora_restore_operator-*.whl")
    return built


def test_wheel_holds_the_operator_package_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"aurora_restore"}
    assert "aurora_restore/main.py" in names
    assert not [name for name in names if "simulator" in name or "devenv" in name or "controlplane" in name]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not [line for line in requirements if "moto" in line and "extra ==" not in line]


def test_wheel_installs_and_imports_without_the_local_environment(wheel, tmp_path):
    """`pip install .` with no extras, then the image's entry module (and every other module) imports; neither moto
    nor the local environment is installed."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
                   check=True, stdin=subprocess.DEVNULL, timeout=600)
    imported = subprocess.run(
        [python, "-c", "import importlib, importlib.util as u, pkgutil, aurora_restore, aurora_restore.main; "
                       "[importlib.import_module(m.name) for m in "
                       "pkgutil.walk_packages(aurora_restore.__path__, 'aurora_restore.')]; "
                       "print(u.find_spec('moto'), u.find_spec('aurora_restore_devenv'))"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["None", "None"]
