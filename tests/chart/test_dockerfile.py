"""The image, as far as it can be checked without a container engine: hadolint, the base image pin, the user,
what is installed, the RDS CA bundle (its build stage is run here), and that its command line is the operator's.
test_chart_install.py runs that command line."""

import hashlib
import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dockerfile import DOCKERFILE, exec_form, instructions, stage
from helm_cli import REPO

from aurora_restore.settings import IMAGE_CA_BUNDLE, Settings
from aurora_restore_devenv.operator_process import operator_command
from aurora_restore_devenv.simulator.databases.tls import ensure_certificates


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
    """The image runs what the dev environment and the e2e tests run (`aurora-restore run`, there as
    `python -m aurora_restore.cli run`), with the health endpoint on 8080."""
    entrypoint = exec_form("ENTRYPOINT")
    assert entrypoint == ["aurora-restore", "run", "--liveness=http://0.0.0.0:8080/healthz"]
    assert exec_form("CMD") == ["--all-namespaces"]
    dev = operator_command(None, 8080)
    assert dev[dev.index("-m"):dev.index("run")] == ["-m", "aurora_restore.cli"]
    assert dev[dev.index("run"):-1] == entrypoint[1:-1] + ["--all-namespaces"]
    assert dev[-1].startswith("--liveness=") and dev[-1].endswith(":8080/healthz")
    assert [arguments for keyword, arguments in instructions() if keyword == "EXPOSE"] == ["8080"]


def test_entrypoint_is_the_console_script_of_the_virtualenv_on_path():
    """`aurora-restore` is the package's console script, installed into the virtualenv the image puts first on
    PATH (kopf was found there the same way)."""
    with (REPO / "pyproject.toml").open("rb") as file:
        scripts = tomllib.load(file)["project"]["scripts"]
    assert scripts[exec_form("ENTRYPOINT")[0]] == "aurora_restore.cli:main"
    [path] = [arguments for keyword, arguments in stage(None) if keyword == "ENV" and "PATH=" in arguments]
    assert path.split()[0] == "PATH=/opt/venv/bin:$PATH"
    copies = [arguments.split() for keyword, arguments in stage(None) if keyword == "COPY"]
    assert ["--from=build", "/opt/venv", "/opt/venv"] in copies
    installs = [arguments for keyword, arguments in stage("build") if keyword == "RUN"]
    assert any(run.startswith("/opt/venv/bin/pip install --no-cache-dir .") for run in installs)


def test_entrypoint_module_imports():
    """The command `run` exists, takes the image's and the chart's arguments, and runs aurora_restore.run.run."""
    from aurora_restore import cli

    run = importlib.import_module("aurora_restore.run")
    assert callable(run.run) and callable(run.add_arguments)
    args = cli.build_parser().parse_args(exec_form("ENTRYPOINT")[1:] + exec_form("CMD") + ["--log-format=json"])
    assert args.command == "run" and args.all_namespaces and args.log_format == "json"
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    args = cli.build_parser().parse_args(["run", "--namespace=team-a", "--namespace=team-b"])
    assert args.namespace == ["team-a", "team-b"] and not args.all_namespaces
    assert importlib.import_module("aurora_restore.main").restore  # the handlers kopf runs on the leader


# --- the RDS CA bundle: the image verifies database TLS against it ---------------------------------------------------
# The rds-ca stage's RUN is run here as `docker build` runs it (/bin/sh -c, the build arguments in its environment,
# in the stage's WORKDIR), the download from a file:// URL; its base image's `python` is this interpreter.

CA_ARGUMENTS = ["RDS_CA_BUNDLE_URL", "RDS_CA_BUNDLE_SHA256"]


def rds_ca_build(directory: Path, **arguments: str) -> subprocess.CompletedProcess:
    """The rds-ca stage's RUN in `directory` with these build arguments (unset ones are empty, as for docker)."""
    (script,) = [arguments_ for keyword, arguments_ in stage("rds-ca") if keyword == "RUN"]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **{name: "" for name in CA_ARGUMENTS}, **arguments}
    return subprocess.run(["/bin/sh", "-c", script], cwd=directory, env=env, capture_output=True, text=True)


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A PEM CA certificate published at a URL (a file:// one), standing in for the RDS CA bundle."""
    return ensure_certificates(tmp_path / "published").ca_certificate


def test_the_rds_ca_bundle_url_and_sha256_are_build_arguments_without_a_default():
    declared = [arguments for keyword, arguments in instructions() if keyword == "ARG"]
    assert [name for name in declared if name.startswith("RDS_CA_")] == CA_ARGUMENTS, "once each, no =default"
    assert [arguments for keyword, arguments in stage("rds-ca") if keyword == "ARG"] == CA_ARGUMENTS


@pytest.mark.parametrize("given", [{}, {"RDS_CA_BUNDLE_URL": "file:///x.pem"}, {"RDS_CA_BUNDLE_SHA256": "0" * 64}],
                         ids=["neither", "url only", "sha256 only"])
def test_a_build_without_both_arguments_fails_saying_what_it_needs(tmp_path, given):
    result = rds_ca_build(tmp_path, **given)
    assert result.returncode != 0
    assert "build arguments RDS_CA_BUNDLE_URL and RDS_CA_BUNDLE_SHA256 are required" in result.stderr
    assert "docs/deployment.md" in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing downloaded"


def test_a_download_whose_sha256_differs_is_never_used(tmp_path, bundle):
    work = tmp_path / "rds-ca"
    work.mkdir()
    other = hashlib.sha256(b"another bundle").hexdigest()
    result = rds_ca_build(work, RDS_CA_BUNDLE_URL=bundle.as_uri(), RDS_CA_BUNDLE_SHA256=other)
    assert result.returncode != 0
    assert "download.pem: FAILED" in result.stdout
    assert not (work / "rds-ca-bundle.pem").exists()


def test_the_checked_bundle_lands_where_the_setting_looks_for_it(tmp_path, bundle):
    work = tmp_path / "rds-ca"
    work.mkdir()
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    result = rds_ca_build(work, RDS_CA_BUNDLE_URL=bundle.as_uri(), RDS_CA_BUNDLE_SHA256=digest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (work / "rds-ca-bundle.pem").read_bytes() == bundle.read_bytes()

    # The runtime stage copies that one file from the stage's WORKDIR to AURORA_RESTORE_DB_CA_BUNDLE's default.
    [workdir] = [arguments for keyword, arguments in stage("rds-ca") if keyword == "WORKDIR"]
    copies = [arguments.split() for keyword, arguments in stage(None) if keyword == "COPY"]
    from_rds_ca = [copy[1:] for copy in copies if copy[0] == "--from=rds-ca"]
    assert from_rds_ca == [[f"{workdir}/rds-ca-bundle.pem", IMAGE_CA_BUNDLE]]
    assert Settings.model_fields["db_ca_bundle"].default == IMAGE_CA_BUNDLE
    assert Settings(db_ca_bundle=str(work / "rds-ca-bundle.pem")).db_tls_verify  # it loads as a CA bundle
