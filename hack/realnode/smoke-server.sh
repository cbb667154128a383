#!/usr/bin/env bash
# The server image's smoke check: serve a tiny model (written by the trainer's own exporter in the
# host venv, cached per machine) from a read-only mount, and wait for /v2/health/ready inside the
# container (dockerd runs without a bridge, so the check runs in the container's own loopback).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/common.sh"
image="$1"
PY="${KUBEFORGE_VENV:-$HOME/.cache/kubeforge/venv}/bin/python"
model="$(cd "$REPO_ROOT" && PYTHONPATH="$REPO_ROOT/operator:$REPO_ROOT/workloads:$REPO_ROOT" "$PY" -c '
from tests.workload.serve_fixtures import build_tiny_model, cached_model
print(cached_model("tiny", build_tiny_model))' 2>/dev/null | tail -1)"
[[ -d "$model" ]] || rn_die "could not build the tiny model with $PY"
name="kubeforge-smoke-server-$$"
trap '"${DOCKER[@]}" rm -f "$name" >/dev/null 2>&1 || true' EXIT
"${DOCKER[@]}" run -d --name "$name" --network=none --read-only --tmpfs /tmp \
  -v "$model:/models/tiny:ro" -e KUBEFORGE_MODEL_DIR=/models/tiny -e KUBEFORGE_MODEL_NAME=tiny "$image" >/dev/null
probe() {
  "${DOCKER[@]}" exec "$name" python -c '
import json, urllib.request
urllib.request.urlopen("http://127.0.0.1:8080/v2/health/ready", timeout=2).read()
meta = json.load(urllib.request.urlopen("http://127.0.0.1:8080/v2/models/tiny", timeout=2))
assert meta["name"] == "tiny", meta'
}
if ! wait_for 120 "the server's /v2/health/ready" probe; then
  "${DOCKER[@]}" logs "$name" 2>&1 | tail -n 30 >&2
  rn_die "$image did not become ready"
fi
