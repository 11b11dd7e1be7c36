#!/usr/bin/env bash
# Install or upgrade the Dagster release on GKE with deploy/helm/values.yaml, both images pinned by digest:
#
#   deploy/helm/deploy.sh <registry>/recsys[:tag]@sha256:<hex> <registry>/recsys-training[:tag]@sha256:<hex>
#
# The first image (Dockerfile target `platform`) runs the code server, the webserver, the daemon, the
# migration, every run and the online service (recsys-serve); the second (target `training`) is RECSYS_IMAGE, what Vertex AI training jobs run.
#
# An upgrade deletes the previous, finished migration Job (a Job's pod template cannot be changed), then runs
# `helm upgrade --install --rollback-on-failure --wait --wait-for-jobs`: the chart's migrate Job runs
# `dagster instance migrate` on the new image, and a release that does not become ready in time is rolled
# back (--rollback-on-failure is Helm 4's name for --atomic). Last, the rolled-out code server must load the
# definitions.
#
# DEPLOY_RENDER=1 prints the manifests instead (`helm template`, offline, no cluster): the deployment test
# renders through this script, so what it checks is what an upgrade applies.
# Settings: HELM (default tools/bin/helm, installed by `make tools`), KUBECTL (kubectl), VALUES
# (deploy/helm/values.yaml), DAGSTER_CHART (dagster/dagster), DAGSTER_CHART_VERSION (1.13.27), NAMESPACE and
# RELEASE (dagster), KUBE_VERSION (1.33.0, for rendering only; an upgrade asks the cluster).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HELM="${HELM:-$ROOT/tools/bin/helm}"
KUBECTL="${KUBECTL:-kubectl}"
VALUES="${VALUES:-$ROOT/deploy/helm/values.yaml}"
DAGSTER_CHART="${DAGSTER_CHART:-dagster/dagster}"
DAGSTER_CHART_VERSION="${DAGSTER_CHART_VERSION:-1.13.27}"
NAMESPACE="${NAMESPACE:-dagster}"
RELEASE="${RELEASE:-dagster}"
KUBE_VERSION="${KUBE_VERSION:-1.33.0}"

if [[ $# -ne 2 ]]; then
    echo "usage: $0 <platform image>@sha256:<digest> <training image>@sha256:<digest>" >&2
    exit 2
fi
for image in "$1" "$2"; do
    if [[ ! "$image" =~ ^[a-z0-9][^[:space:]@]*@sha256:[0-9a-f]{64}$ ]]; then
        echo "deploy.sh: $image is not an image pinned by digest (<name>[:tag]@sha256:<64 hex digits>)" >&2
        exit 2
    fi
done
platform="$1"
training="$2"
# The chart joins repository and tag with ":", so the digest's hex is the tag and everything before it the
# repository: "<name>[:tag]@sha256" + ":" + "<hex>" gives back the reference pinned by digest.
repository="${platform%:*}"
tag="${platform##*:}"

args=(
    "$RELEASE" "$DAGSTER_CHART" --version "$DAGSTER_CHART_VERSION" --namespace "$NAMESPACE"
    --values "$VALUES"
    --set-string "dagsterWebserver.image.repository=$repository,dagsterWebserver.image.tag=$tag"
    --set-string "dagsterDaemon.image.repository=$repository,dagsterDaemon.image.tag=$tag"
    --set-string "dagster-user-deployments.deployments[0].image.repository=$repository"
    --set-string "dagster-user-deployments.deployments[0].image.tag=$tag"
    --set-string "recsys.trainingImage=$training"
    --set-string "recsys.platformImage=$platform"
)

if [[ "${DEPLOY_RENDER:-}" == 1 ]]; then
    exec "$HELM" template "${args[@]}" --kube-version "$KUBE_VERSION"
fi

if [[ "$DAGSTER_CHART" == dagster/* ]]; then
    "$HELM" repo add dagster https://dagster-io.github.io/helm --force-update
fi
"$KUBECTL" --namespace "$NAMESPACE" delete job "$RELEASE-dagster-webserver-instance-migrate" --ignore-not-found --wait=true
"$HELM" upgrade --install "${args[@]}" --rollback-on-failure --wait --wait-for-jobs --timeout 15m
"$KUBECTL" --namespace "$NAMESPACE" exec "deploy/$RELEASE-dagster-user-deployments-recsys-assets" -- \
    dagster definitions validate -m recsys_assets.definitions
