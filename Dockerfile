# The operator image: `kopf run` of aurora_restore.main as an unprivileged user, with runtime dependencies only.
#
# Base: python:3.11.14-slim-bookworm, pinned by the digest of its multi-architecture index (amd64 and arm64).
# Both stages use the same one (the virtualenv is copied between them). To move to a newer patch release, take the
# digest from `docker buildx imagetools inspect python:<tag>`.

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

# A numeric user (the "nonroot" id of distroless images), so runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532

# kopf's health endpoint (--liveness); the chart's probes use it.
EXPOSE 8080

# Kubernetes ignores HEALTHCHECK (the chart has probes); it serves `docker run` users.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# The chart passes the scope as arguments (--all-namespaces, or one --namespace=NS per watched namespace) and
# --log-format; the settings come from AURORA_RESTORE_* environment variables.
ENTRYPOINT ["kopf", "run", "--standalone", "-m", "aurora_restore.main", "--liveness=http://0.0.0.0:8080/healthz"]
CMD ["--all-namespaces"]
