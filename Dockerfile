# One image for every step: the Dagster code server (the default command), the webserver and the
# daemon of the production deployment (deploy/), every run worker, and the training job, which the
# Docker and Vertex AI launchers start with `python -m recsys_assets.train`.
# No ENTRYPOINT, so a launcher's command replaces the default command outright.
# CI tags the image with the commit (…/recsys:<git sha>); the launchers refuse mutable tags.
# Nothing secret goes in here: the worker's identity (service account, workload identity) or
# the secret store provides credentials at run time.
FROM python:3.11-slim

# implicit's manylinux wheel links the system OpenMP runtime and does not bundle it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libstdc++6 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    RECSYS_DATA_DIR=/var/lib/recsys

WORKDIR /opt/recsys

# Dependencies first, from setup.py's pins, in their own layer: a code change then rebuilds
# only the small layer below instead of reinstalling about a gigabyte of wheels.
COPY setup.py ./
RUN mkdir recsys_assets \
    && touch recsys_assets/__init__.py \
    && pip install . \
    && pip uninstall --yes recsys_assets \
    && rm -rf recsys_assets build ./*.egg-info

COPY recsys_assets ./recsys_assets
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info

# A non-root user; the instance folder and the data folder are the only writable places.
RUN groupadd --gid 10001 recsys \
    && useradd --no-log-init --create-home --uid 10001 --gid 10001 recsys \
    && mkdir -p "$DAGSTER_HOME" "$RECSYS_DATA_DIR" \
    && chown recsys:recsys "$DAGSTER_HOME" "$RECSYS_DATA_DIR"
COPY dagster.yaml "$DAGSTER_HOME/dagster.yaml"
COPY workspace.yaml ./workspace.yaml

# The commit this image was built from, recorded in every bundle manifest (CI passes it).
ARG RECSYS_CODE_VERSION=""
ENV RECSYS_CODE_VERSION=${RECSYS_CODE_VERSION}

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "recsys_assets.definitions"]
