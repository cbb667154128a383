#!/usr/bin/env bash
# Builds the kubeforge images (make images) with the Docker engine that hack/realnode/dockerd.sh
# starts, then smoke-checks each one. Usage: hack/images.sh [operator|trainer|server|server-tensorrt|all]
#   KUBEFORGE_IMAGE_REPO (default ghcr.io/kubeforge), KUBEFORGE_IMAGE_TAG (default: the chart's appVersion),
#   KUBEFORGE_IMAGE_BASE=local (default: Debian-made bases from hack/realnode/base-images.sh, since
#     no registry is reachable here) or registry (the Dockerfiles' own python:3.12 FROMs),
#   KUBEFORGE_TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu for a CPU-only trainer),
#   KUBEFORGE_IMAGE_SMOKE=0 skips the smoke checks.
# pip inside the builds trusts $PIP_CERT (or the system bundle) through the build secret `pip-cert`:
# mounted for the pip step only, never in a layer. pip's cache is a BuildKit cache mount, so the
# multi-GB torch wheels download once per machine.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
source hack/realnode/common.sh
REPO="${KUBEFORGE_IMAGE_REPO:-ghcr.io/kubeforge}"
TAG="${KUBEFORGE_IMAGE_TAG:-$(awk -F'"' '/^appVersion:/ {print $2}' charts/kubeforge/Chart.yaml)}"
BASE="${KUBEFORGE_IMAGE_BASE:-local}"
export DOCKER_BUILDKIT=1  # per-Dockerfile .dockerignore files, RUN --mount
CERT="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"

build() {  # image-name dockerfile [extra docker args...]
  local name="$1" file="$2" start=$SECONDS; shift 2
  local args=(--network=host --progress=plain)
  [[ -s "$CERT" ]] && args+=(--secret "id=pip-cert,src=$CERT")
  if [[ "$BASE" == local ]]; then
    args+=(--build-arg "PYTHON_IMAGE=kubeforge.local/python:bookworm"
           --build-arg "PYTHON_BUILD_IMAGE=kubeforge.local/python-build:bookworm")
  fi
  rn_log "building $REPO/$name:$TAG from $file (log: $REALNODE_LOGS/image-$name.log)"
  mkdir -p "$REALNODE_LOGS"
  if ! nice "${DOCKER[@]}" build -f "$file" -t "$REPO/$name:$TAG" "${args[@]}" "$@" . >"$REALNODE_LOGS/image-$name.log" 2>&1; then
    tail -n 40 "$REALNODE_LOGS/image-$name.log" >&2
    rn_die "image $name failed to build"
  fi
  rn_log "$REPO/$name:$TAG built in $((SECONDS - start))s ($("${DOCKER[@]}" image inspect -f '{{.Size}}' "$REPO/$name:$TAG" | awk '{printf "%.2f GB", $1/1e9}'))"
  [[ "${KUBEFORGE_IMAGE_SMOKE:-1}" == 0 ]] || hack/realnode/smoke-images.sh "$name" "$REPO/$name:$TAG"
}

prepare() {
  hack/realnode/dockerd.sh up
  [[ "$BASE" == local ]] && hack/realnode/base-images.sh
  return 0
}

shared_cache_records() {  # IDs of the build-cache records that back an image now
  "${DOCKER[@]}" system df -v --format '{{json .BuildCache}}' \
    | python3 -c 'import json, sys; print(" ".join(r["ID"] for r in json.load(sys.stdin) or [] if r["Shared"] == "true"))'
}

drop_unshared_records() {  # "ID...": those that backed an image before and back none now
  local now id
  now=" $(shared_cache_records) "
  for id in $1; do
    [[ "$now" == *" $id "* ]] && continue
    rn_log "dropping build cache $id (backed a replaced image): $("${DOCKER[@]}" builder prune -f --filter "id=$id" | tail -n 1)"
  done
}

what="${1:-all}"
case "$what" in
  operator) prepare; build operator docker/operator.Dockerfile ;;
  trainer) prepare; build trainer docker/trainer.Dockerfile ${KUBEFORGE_TORCH_INDEX_URL:+--build-arg "TORCH_INDEX_URL=$KUBEFORGE_TORCH_INDEX_URL"} ;;
  server) prepare; build server docker/server.Dockerfile ;;
  # Unbuildable here: NVIDIA's TensorRT base image is in a registry we cannot reach.
  server-tensorrt) prepare; "${DOCKER[@]}" build -f docker/server-tensorrt.Dockerfile -t "$REPO/server:$TAG-tensorrt" . ;;
  # Then drop what a rebuild left behind: the previous versions of our tags and the build-cache
  # records that backed them (the trainer's venv layer is 6 GB). Not by --keep-storage: it goes least
  # recently used first, and Docker 20.10 never marks a cache hit as used, so it would drop the torch
  # layer (5 GB, a long download) before any garbage.
  all) prepare; before="$(shared_cache_records)"
       "$0" operator; "$0" server; "$0" trainer
       "${DOCKER[@]}" image prune -f >/dev/null
       drop_unshared_records "$before"
       "${DOCKER[@]}" builder prune -f --keep-storage 40GB >/dev/null ;;
  *) echo "usage: $0 [operator|trainer|server|server-tensorrt|all]" >&2; exit 2 ;;
esac
