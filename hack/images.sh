#!/usr/bin/env bash
# Builds the kubeforge images with Docker (make images). Untested on the CI machines, which have no
# Docker engine. Usage: hack/images.sh [operator|trainer|server|server-tensorrt|all]
#   KUBEFORGE_IMAGE_REPO (default ghcr.io/kubeforge), KUBEFORGE_IMAGE_TAG (default: the chart's appVersion),
#   KUBEFORGE_TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu for a CPU-only trainer).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
REPO="${KUBEFORGE_IMAGE_REPO:-ghcr.io/kubeforge}"
TAG="${KUBEFORGE_IMAGE_TAG:-$(awk -F'"' '/^appVersion:/ {print $2}' charts/kubeforge/Chart.yaml)}"
export DOCKER_BUILDKIT=1  # per-Dockerfile .dockerignore files need BuildKit

build() {  # image-name dockerfile [extra docker args...]
  local name="$1" file="$2"; shift 2
  echo "[images] $REPO/$name:$TAG from $file"
  docker build -f "$file" -t "$REPO/$name:$TAG" "$@" .
}

what="${1:-all}"
case "$what" in
  operator) build operator docker/operator.Dockerfile ;;
  trainer) build trainer docker/trainer.Dockerfile ${KUBEFORGE_TORCH_INDEX_URL:+--build-arg "TORCH_INDEX_URL=$KUBEFORGE_TORCH_INDEX_URL"} ;;
  server) build server docker/server.Dockerfile ;;
  server-tensorrt) docker build -f docker/server-tensorrt.Dockerfile -t "$REPO/server:$TAG-tensorrt" . ;;
  all) "$0" operator; "$0" trainer; "$0" server ;;
  *) echo "usage: $0 [operator|trainer|server|server-tensorrt|all]" >&2; exit 2 ;;
esac
