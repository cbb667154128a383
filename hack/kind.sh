#!/usr/bin/env bash
# kubeforge on kind, for people with Docker (make kind-up / kind-e2e). Untested on the CI machines,
# which have no Docker engine; CI uses the kwok cluster (hack/cluster.sh) instead.
#   hack/kind.sh up    kind cluster "kubeforge", images loaded (build them first: make images), chart installed
#   hack/kind.sh e2e   train MiniLM on CPU for real, serve it, classify two sentences
#   hack/kind.sh down  delete the kind cluster
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
CLUSTER="${KUBEFORGE_KIND_CLUSTER:-kubeforge}"
REPO="${KUBEFORGE_IMAGE_REPO:-ghcr.io/kubeforge}"
TAG="${KUBEFORGE_IMAGE_TAG:-$(awk -F'"' '/^appVersion:/ {print $2}' charts/kubeforge/Chart.yaml)}"
NS=kubeforge-demo

up() {
  kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
  for image in operator trainer server; do
    kind load docker-image --name "$CLUSTER" "$REPO/$image:$TAG"
  done
  # Loaded images only: never pull what kind already has.
  helm upgrade --install kubeforge charts/kubeforge --namespace kubeforge-system --create-namespace \
    --set image.repository="$REPO/operator" --set image.tag="$TAG" --set image.pullPolicy=IfNotPresent \
    --set operator.trainerImage="$REPO/trainer:$TAG" --set operator.serverImage="$REPO/server:$TAG" \
    --wait --timeout 5m
}

e2e() {
  kubectl apply -f examples/workloads/
  echo "[kind] training (CPU, a few minutes)"
  kubectl -n "$NS" wait trainingjob/minilm --for=jsonpath='{.status.phase}'=Succeeded --timeout=30m
  kubectl -n "$NS" get trainingjob minilm -o jsonpath='{.status.result}{"\n"}'
  echo "[kind] serving"
  kubectl -n "$NS" wait modelendpoint/minilm --for=condition=Ready --timeout=10m
  kubectl -n "$NS" port-forward service/minilm 18080:80 >/dev/null &
  local forward=$!
  trap 'kill $forward' EXIT
  for _ in $(seq 30); do curl -fsS http://127.0.0.1:18080/v2/health/ready >/dev/null && break; sleep 1; done
  curl -fsS http://127.0.0.1:18080/predict -H 'content-type: application/json' \
    -d '{"texts": ["a wonderful, moving film", "a dull and tedious mess"]}'
  echo
}

case "${1:-}" in
  up) up ;;
  e2e) e2e ;;
  down) kind delete cluster --name "$CLUSTER" ;;
  *) echo "usage: $0 up|e2e|down" >&2; exit 2 ;;
esac
