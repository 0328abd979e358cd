# The two set-up commands of the README: `make demo` and `make test`. Both install what they need first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup system-packages binaries demo test down crds lint

# PostgreSQL and MariaDB servers for the simulated clusters (Debian packages; skipped when present).
system-packages:
	bash .ci/install-system-packages

# Python dependencies in a virtualenv (pip's cache lives outside the repo, so repeat runs are quick).
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml operator/devenv/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e operator/devenv
	touch $@

# etcd, kube-apiserver, kube-controller-manager and kubectl (KUBEBUILDER_ASSETS if set, else built once from Go
# modules and cached), plus helm and promtool for the chart tests.
binaries: setup system-packages
	$(BIN)/aurora-restore-dev binaries

demo: binaries
	$(BIN)/aurora-restore-dev demo --dir .dev

down: setup
	$(BIN)/aurora-restore-dev down --dir .dev

# The suite in TEST_WORKERS pytest-xdist worker processes, each with its own control plane and simulator (most e2e
# time is waiting on simulated AWS delays, not CPU); loadgroup keeps each xdist_group on one worker, and
# --no-loadscope-reorder hands the work out in the order tests/conftest.py sorts it (xdist would otherwise hand out
# the biggest groups first, the after_all_e2e audits among them, which then wait for the whole run).
TEST_WORKERS ?= 2
test: binaries
	bash .ci/lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# Regenerate the CRDs from the models, for the repository and the chart (tests keep both equal to the models).
crds: setup
	$(BIN)/aurora-restore crd --out crds
	$(BIN)/aurora-restore crd --out helm/aurora-restore-operator/crds
