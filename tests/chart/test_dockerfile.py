"""The image, as far as it can be checked without a container engine: hadolint, the base image pin, the user,
what is installed, and that its command line is the operator's. test_chart_install.py runs that command line."""

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

from dockerfile import DOCKERFILE, exec_form, instructions
from helm_cli import REPO

from aurora_restore_devenv.operator_process import operator_command


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_images_are_one_slim_python_pinned_by_digest():
    bases = {arguments.split()[0] for keyword, arguments in instructions() if keyword == "FROM"}
    assert len(bases) == 1, bases
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base


def test_runs_as_a_numeric_non_root_user():
    users = [arguments for keyword, arguments in instructions() if keyword == "USER"]
    assert users == ["65532:65532"]


def test_installs_runtime_dependencies_only():
    runs = " ".join(arguments for keyword, arguments in instructions() if keyword == "RUN")
    assert "pip install --no-cache-dir ." in runs
    assert "[dev]" not in runs
    copies = [arguments for keyword, arguments in instructions() if keyword == "COPY"]
    assert copies[:2] == ["pyproject.toml README.md ./", "operator ./operator"]
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!operator/"]


def test_entrypoint_is_the_operator_command_line():
    """The image runs what the dev environment and the e2e tests run, with kopf's health endpoint on 8080."""
    entrypoint = exec_form("ENTRYPOINT")
    assert entrypoint == ["kopf", "run", "--standalone", "-m", "aurora_restore.main",
                          "--liveness=http://0.0.0.0:8080/healthz"]
    assert exec_form("CMD") == ["--all-namespaces"]
    dev = operator_command(None, 8080)
    assert dev[dev.index("run"):-1] == entrypoint[1:-1] + ["--all-namespaces"]
    assert [arguments for keyword, arguments in instructions() if keyword == "EXPOSE"] == ["8080"]


def test_entrypoint_module_imports():
    module = importlib.import_module(exec_form("ENTRYPOINT")[exec_form("ENTRYPOINT").index("-m") + 1])
    assert hasattr(module, "configure") and hasattr(module, "restore")
