#!/usr/bin/env bash
# Starts, stops and describes the local S3-compatible object store: SeaweedFS (`weed server -s3`,
# built by hack/build-binaries.sh seaweedfs), every port on 127.0.0.1, one test bucket and one
# access key pair. One store per KUBEFORGE_CLUSTER_NAME, so sessions side by side never share one.
#
#   hack/s3.sh up      start it unless it answers already (idempotent), create the bucket, print env
#   hack/s3.sh down    stop it and delete its data
#   hack/s3.sh env     print the shell env that reaches it (AWS_ENDPOINT_URL, keys, bucket)
#   hack/s3.sh status  exit 0 when it answers
#
# Env: KUBEFORGE_CACHE, KUBEFORGE_CLUSTER_NAME (default kubeforge), KUBEFORGE_NO_BUILD=1 (exit 3
# instead of building a missing binary: what the test fixture uses).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}"
WEED="$CACHE/k8s-$K8S_VERSION/bin/weed"
NAME="${KUBEFORGE_CLUSTER_NAME:-kubeforge}"
STATE="$CACHE/s3/$NAME"
BUCKET="${KUBEFORGE_S3_BUCKET:-kubeforge-test}"
# Test credentials for a store that listens on 127.0.0.1 only; a real store's come from a Secret.
ACCESS_KEY="kubeforge-test"
SECRET_KEY="kubeforge-test-secret-key"
REGION="us-east-1"

log() { printf '[s3 %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The ports are picked once per store and kept, so a restart answers on the same endpoint.
ports() {
  if [[ ! -f "$STATE/ports.env" ]]; then
    mkdir -p "$STATE"
    local names=(MASTER MASTER_GRPC VOLUME VOLUME_GRPC FILER FILER_GRPC S3 S3_GRPC) n
    for n in "${names[@]}"; do echo "${n}_PORT=$(free_port)"; done > "$STATE/ports.env.tmp"
    mv "$STATE/ports.env.tmp" "$STATE/ports.env"
  fi
  # shellcheck disable=SC1091
  source "$STATE/ports.env"
}

endpoint() { echo "http://127.0.0.1:$S3_PORT"; }

answers() {  # any HTTP answer from the S3 port (anonymous requests get 403) counts
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(endpoint)/" || true)"
  [[ "$code" =~ ^[1-5][0-9][0-9]$ ]]
}

running_pid() {
  local pid
  pid="$(cat "$STATE/weed.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$STATE/" && echo "$pid"
}

write_identities() {
  cat > "$STATE/s3.json" <<JSON
{"identities": [{"name": "kubeforge-test",
  "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
}

ensure_binary() {
  [[ -x "$WEED" ]] && return
  if [[ "${KUBEFORGE_NO_BUILD:-0}" == 1 ]]; then
    die "missing $WEED; build it with hack/build-binaries.sh seaweedfs (cold: ~20-40 min on 2 cores)" 3
  fi
  "$HERE/build-binaries.sh" seaweedfs
}

start() {
  mkdir -p "$STATE/data"
  write_identities
  log "starting SeaweedFS ($SEAWEEDFS_VERSION) for $NAME: S3 on $(endpoint)"
  # 9>&-: weed must not inherit the `up` lock. Volumes of 256 MB, as many as the disk holds
  # (-volume.max=0); the Iceberg and Lance endpoints are off, their fixed ports would clash
  # between stores side by side.
  setsid "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$STATE/data" \
    -master.port="$MASTER_PORT" -master.port.grpc="$MASTER_GRPC_PORT" -master.volumeSizeLimitMB=256 \
    -volume.port="$VOLUME_PORT" -volume.port.grpc="$VOLUME_GRPC_PORT" -volume.max=0 \
    -filer -filer.port="$FILER_PORT" -filer.port.grpc="$FILER_GRPC_PORT" \
    -s3 -s3.port="$S3_PORT" -s3.port.grpc="$S3_GRPC_PORT" -s3.config="$STATE/s3.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 \
    >"$STATE/weed.log" 2>&1 9>&- </dev/null &
  echo $! > "$STATE/weed.pid"
  local deadline=$((SECONDS + 90))
  until answers; do
    kill -0 "$(cat "$STATE/weed.pid")" 2>/dev/null || { tail -n 30 "$STATE/weed.log" >&2; die "weed exited; log: $STATE/weed.log"; }
    (( SECONDS < deadline )) || { tail -n 30 "$STATE/weed.log" >&2; die "S3 did not answer on $(endpoint) within 90 s"; }
    sleep 0.5
  done
}

create_bucket() {
  local deadline=$((SECONDS + 60)) out
  # The volume server registers with the master a moment after S3 answers; retry until the shell can.
  until out="$(echo "s3.bucket.create -name $BUCKET" | "$WEED" shell -master="127.0.0.1:$MASTER_PORT.$MASTER_GRPC_PORT" \
      -filer="127.0.0.1:$FILER_PORT.$FILER_GRPC_PORT" 2>&1)" && ! grep -qi "error" <<<"$out"; do
    grep -qi "already exist" <<<"$out" && return
    (( SECONDS < deadline )) || die "could not create bucket $BUCKET: $out"
    sleep 1
  done
}

print_env() {
  cat <<ENV
export AWS_ENDPOINT_URL=$(endpoint)
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
export KUBEFORGE_S3_BUCKET=$BUCKET
export KUBEFORGE_S3_DIR=$STATE
ENV
}

up() {
  mkdir -p "$STATE"
  exec 9>"$STATE/up.lock"
  flock 9
  ports
  if running_pid >/dev/null && answers; then
    log "already running on $(endpoint)"
  else
    ensure_binary
    local stale
    stale="$(running_pid || true)"
    [[ -n "$stale" ]] && kill "$stale" 2>/dev/null
    start
  fi
  create_bucket
  print_env
}

down() {
  local pid
  if pid="$(running_pid)"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$STATE"
  log "stopped and deleted $STATE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) ports; print_env ;;
  status) ports; running_pid >/dev/null && answers ;;
  *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
