# Two images from one file, both built from pinned, hashed requirements (requirements/*.txt, `make lock`) on a
# base pinned by digest, so CI tests the packages the images ship:
#
#   docker build --target platform -t recsys .            the Dagster code server (default command), the
#       webserver, the daemon, the migration and every run worker of deploy/ (requirements/platform.txt:
#       setup.py with the `deploy`, `mlflow` and `serve` extras: the service runs from it too);
#   docker build --target training -t recsys-training .   what the Docker and Vertex AI launchers run,
#       `python -m recsys_assets.train` (requirements/training.txt: setup.py's TRAINING_REQUIRES, without
#       Dagster, the webserver, the Kubernetes client or the Google API clients).
#
# Installed size of each target's Python packages (`pip install --target`, December 2026; README "Deploy"):
# platform 1,502 MB, training 736 MB (before: one image of everything), on a base of about 125 MB.
# No ENTRYPOINT, so a launcher's command replaces the default command outright. CI tags each image with the
# commit and deploys it by digest; the launchers refuse mutable tags. Nothing secret goes in here: the
# worker's identity (service account, workload identity) or the secret store provides credentials at run time.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS base
# implicit's manylinux wheel links the system OpenMP runtime and does not bundle it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libstdc++6 \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/recsys \
    DAGSTER_HOME=/opt/dagster/home \
    RECSYS_DATA_DIR=/var/lib/recsys \
    MPLCONFIGDIR=/tmp/matplotlib
# A non-root user. The root filesystem can be read-only: the data folder and the compute-log staging
# folder are the only places written outside /tmp, and they exist here owned by that user, so a named
# volume mounted on them starts with that owner too.
RUN groupadd --gid 10001 recsys \
    && useradd --no-log-init --create-home --uid 10001 --gid 10001 recsys \
    && mkdir -p "$DAGSTER_HOME" "$RECSYS_DATA_DIR" /tmp/dagster-compute-logs \
    && chown recsys:recsys "$RECSYS_DATA_DIR" /tmp/dagster-compute-logs
WORKDIR /opt/recsys

# Each target's dependencies in their own stage and layer: a code change rebuilds only the layer below them.
# --require-hashes: pip refuses anything not pinned with its hash in the lock file, dependencies included.
FROM base AS training-deps
COPY requirements/training.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && pip install --require-hashes -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

FROM base AS platform-deps
COPY requirements/platform.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && pip install --require-hashes -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself is pure Python: importable from /opt/recsys (PYTHONPATH), nothing to build or fetch.
FROM training-deps AS training
COPY recsys_assets ./recsys_assets
# The commit this image was built from, recorded in every bundle manifest (CI passes it).
ARG RECSYS_CODE_VERSION=""
ENV RECSYS_CODE_VERSION=${RECSYS_CODE_VERSION}
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
CMD ["python", "-m", "recsys_assets.train"]

# The default target (last): every Dagster process of deploy/.
FROM platform-deps AS platform
COPY recsys_assets ./recsys_assets
# The production instance (PostgreSQL from DAGSTER_PG_*), so no process of this image falls back to SQLite,
# and the workspace the webserver and the daemon load the code server from (gRPC).
COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
ARG RECSYS_CODE_VERSION=""
ENV RECSYS_CODE_VERSION=${RECSYS_CODE_VERSION}
USER 10001:10001
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "recsys_assets.definitions"]
