# The operator image: `aurora-restore run` (leader election, then kopf with the handlers of aurora_restore.main;
# drains on SIGTERM) as an unprivileged user, with runtime dependencies only.
#
# Base: python:3.11.14-slim-bookworm, pinned by the digest of its multi-architecture index (amd64 and arm64).
# Every stage uses the same one (the virtualenv is copied between them). To move to a newer patch release, take the
# digest from `docker buildx imagetools inspect python:<tag>`.
#
# Build arguments, both required and without a default (docs/deployment.md): RDS_CA_BUNDLE_URL and
# RDS_CA_BUNDLE_SHA256, the RDS CA bundle that TLS to the restored databases is verified against, and its sha256.

# --- rds-ca: the RDS CA bundle, downloaded and checked against its sha256 before anything uses it ------------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS rds-ca

# No defaults: the bundle a build trusts is its builder's choice (for the commercial regions
# https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem), pinned by the sha256 they checked.
ARG RDS_CA_BUNDLE_URL
ARG RDS_CA_BUNDLE_SHA256

WORKDIR /rds-ca
# Only a download whose sha256 matches is named rds-ca-bundle.pem, the one file the runtime stage copies.
RUN if [ -z "$RDS_CA_BUNDLE_URL" ] || [ -z "$RDS_CA_BUNDLE_SHA256" ]; then \
        echo "build arguments RDS_CA_BUNDLE_URL and RDS_CA_BUNDLE_SHA256 are required: the RDS CA bundle that" \
            "database TLS is verified against, and its sha256 (docs/deployment.md)" >&2; \
        exit 1; \
    fi \
    && python -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
        "$RDS_CA_BUNDLE_URL" download.pem \
    && printf '%s  download.pem\n' "$RDS_CA_BUNDLE_SHA256" > download.pem.sha256 \
    && sha256sum --check --strict download.pem.sha256 \
    && mv download.pem rds-ca-bundle.pem

# --- build: install the package and its runtime dependencies into a virtualenv -----------------------------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# No [dev] extra and no operator/devenv (.dockerignore): the simulator, moto, test and lint tools stay out.
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- runtime ------------------------------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

LABEL org.opencontainers.image.title="aurora-restore-operator" \
      org.opencontainers.image.description="Kubernetes operator that restores Amazon Aurora clusters from snapshots"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=build /opt/venv /opt/venv
# AURORA_RESTORE_DB_CA_BUNDLE's default (operator/aurora_restore/settings.py, IMAGE_CA_BUNDLE).
COPY --from=rds-ca /rds-ca/rds-ca-bundle.pem /etc/aurora-restore/rds-ca-bundle.pem

# A numeric user (the "nonroot" id of distroless images), so runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532

# The operator's health endpoint (--liveness), served by every replica, standbys included; the chart's probes use it.
EXPOSE 8080

# Kubernetes ignores HEALTHCHECK (the chart has probes); it serves `docker run` users.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# `aurora-restore` is the package's console script, in /opt/venv/bin (on PATH above). The chart passes the scope as
# arguments (--all-namespaces, or one --namespace=NS per watched namespace) and --log-format; the settings, leader
# election's included, come from AURORA_RESTORE_* environment variables. Exec form: SIGTERM reaches the operator
# itself (PID 1), which drains the steps in flight, releases the leader Lease and exits 0.
ENTRYPOINT ["aurora-restore", "run", "--liveness=http://0.0.0.0:8080/healthz"]
CMD ["--all-namespaces"]
