# The two set-up commands of the README: `make demo` and `make test`. Both install what they need first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup binaries demo test down crds

# Python dependencies in a virtualenv (pip's cache lives outside the repo, so repeat runs are quick).
setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# etcd, kube-apiserver and kubectl: KUBEBUILDER_ASSETS if set, else built once from Go modules and cached.
binaries: setup
	$(BIN)/aurora-restore dev binaries

demo: binaries
	$(BIN)/aurora-restore dev demo --dir .dev

down: setup
	$(BIN)/aurora-restore dev down --dir .dev

test: binaries
	$(BIN)/python -m pytest

crds: setup
	$(BIN)/aurora-restore crd > crds/aurorarestores.dbrestore.io.yaml
