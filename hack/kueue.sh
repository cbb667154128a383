#!/usr/bin/env bash
# Runs Kueue's controller manager (built from its Go module by `hack/build-binaries.sh kueue`) as a
# process on this machine against the local cluster of hack/cluster.sh, with its webhooks served on
# 127.0.0.1 under a certificate the API server trusts.
#
#   hack/kueue.sh up        start it (idempotent: a running one is kept), apply CRDs, webhooks, queues
#   hack/kueue.sh down      stop it and remove its webhook configurations
#   hack/kueue.sh status    running? its ClusterQueues
#   hack/kueue.sh logs      its log file
#
# How it runs without a pod (details in hack/kueue/README.md):
# - CRDs: config/components/crd/bases of the module, applied server-side (they are too large for
#   a client-side apply's last-applied annotation).
# - Webhooks: the API server runs on this machine, so it can call https://127.0.0.1:<port>. We make
#   a CA and a serving certificate for IP 127.0.0.1, point Kueue's webhook server at it
#   (internalCertManagement off: Kueue's own rotator only signs <service>.<ns>.svc names), and
#   register Kueue's webhooks for batch/v1 Jobs and its own kinds with url + caBundle instead of a
#   Service. failurePolicy is Ignore here: a stopped Kueue must not block every Job in the cluster.
# - Every listener (webhook, metrics, health) is on 127.0.0.1, on ports free at start; the
#   visibility API server (an aggregated API server of its own) is off.
#
# Env: KUBEFORGE_CACHE, KUBEFORGE_CLUSTER_NAME (as hack/cluster.sh), KUBEFORGE_NO_BUILD=1 (exit 3
# instead of building a missing binary).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}"
BIN="$CACHE/k8s-$K8S_VERSION/bin"
NAME="${KUBEFORGE_CLUSTER_NAME:-kubeforge}"
WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$NAME"
KUBECONFIG_PATH="$WORKDIR/kubeconfig.yaml"
# Inside the cluster's directory: `hack/cluster.sh down` removes it with the cluster.
STATE="$WORKDIR/kueue"
NAMESPACE=kueue-system
WEBHOOK_PREFIX=kubeforge-kueue

log() { printf '[kueue %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

running_pid() {  # the pid of our Kueue, if it runs: its command line must name our state dir
  local pid
  pid="$(cat "$STATE/kueue.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$STATE/" && echo "$pid"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

ensure_binary() {
  [[ -x "$BIN/kueue" && -d "$BIN/kueue-config" ]] && return
  [[ "${KUBEFORGE_NO_BUILD:-0}" == 1 ]] && die "no kueue binary in $BIN; build it with hack/build-binaries.sh kueue (cold: ~15 min on 2 cores)" 3
  "$HERE/build-binaries.sh" kueue
}

make_certs() {  # a CA the API server trusts (caBundle) and a serving certificate for 127.0.0.1
  local dir="$STATE/certs"
  [[ -f "$dir/tls.crt" ]] && return
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kubeforge-kueue-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
    -extfile "$dir/ext.cnf" -out "$dir/tls.crt" 2>/dev/null
}

write_config() {  # webhook_port metrics_port health_port
  cat >"$STATE/config.yaml" <<EOF
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: $NAMESPACE
manageJobsWithoutQueueName: false
leaderElection: {leaderElect: false}
internalCertManagement: {enable: false}
webhook: {host: 127.0.0.1, port: $1, certDir: $STATE/certs}
metrics: {bindAddress: "127.0.0.1:$2"}
health: {healthProbeBindAddress: "127.0.0.1:$3"}
clientConnection: {qps: 50, burst: 100}
integrations:
  frameworks: [batch/job]
EOF
}

# Kueue's webhook manifests name a Service; here they name 127.0.0.1 and carry our CA. Only the
# webhooks for batch/v1 Jobs and Kueue's own kinds are registered (the other frameworks are off).
register_webhooks() {  # port
  local ca
  ca="$(base64 -w0 <"$STATE/certs/ca.crt")"
  kubectl create --dry-run=client --validate=false -o json -f "$BIN/kueue-config/manifests.yaml" \
    | PORT="$1" CA="$ca" PREFIX="$WEBHOOK_PREFIX" python3 -c '
import json, os, sys
port, ca, prefix = os.environ["PORT"], os.environ["CA"], os.environ["PREFIX"]
wanted = ("batch-v1-job", "kueue-x-k8s-io-")
text, items, at = sys.stdin.read(), [], 0
decoder = json.JSONDecoder()
while text[at:].strip():  # kubectl prints one JSON object per document
    at += len(text[at:]) - len(text[at:].lstrip())
    obj, at = decoder.raw_decode(text, at)
    items.append(obj)
for config in items:
    kind = "mutating" if config["kind"].startswith("Mutating") else "validating"
    config["metadata"] = {"name": prefix + "-" + kind}
    kept = []
    for hook in config["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        if not any(w in path for w in wanted):
            continue
        hook["clientConfig"] = {"url": "https://127.0.0.1:" + port + path, "caBundle": ca}
        hook["failurePolicy"] = "Ignore"
        kept.append(hook)
    config["webhooks"] = kept
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
' >"$STATE/webhooks.json"
  kubectl apply -f "$STATE/webhooks.json" >/dev/null
}

wait_healthy() {  # health_port seconds
  local deadline=$((SECONDS + $2))
  until curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; do
    running_pid >/dev/null || die "kueue exited; log: $STATE/kueue.log ($(tail -n 5 "$STATE/kueue.log" 2>/dev/null))"
    (( SECONDS < deadline )) || die "kueue not ready after $2s; log: $STATE/kueue.log"
    sleep 0.5
  done
}

apply_queues() {
  # The webhooks answer as soon as the health probe does; a ClusterQueue needs the CRDs served.
  kubectl apply --server-side --field-manager=kubeforge-hack -f "$HERE/kueue/queues.yaml" >/dev/null
}

up() {
  [[ -f "$KUBECONFIG_PATH" ]] || die "no cluster $NAME: run hack/cluster.sh up first"
  ensure_binary
  mkdir -p "$STATE"
  exec 9>"$CACHE/kueue-$NAME.lock"
  flock -w 300 9 || die "timed out waiting for another 'kueue.sh up'"
  if pid="$(running_pid)"; then
    log "kueue already running (pid $pid)"
  else
    local start=$SECONDS webhook metrics health
    log "applying Kueue $KUEUE_VERSION CRDs"
    local crd files=()
    for crd in "$BIN"/kueue-config/kueue.x-k8s.io_*.yaml; do files+=(-f "$crd"); done
    kubectl apply --server-side --force-conflicts --field-manager=kubeforge-hack "${files[@]}" >/dev/null
    # A CRD created a moment ago has no status.conditions yet, which `kubectl wait` reports as an error.
    local deadline=$((SECONDS + 60))
    until kubectl wait --for=condition=Established "${files[@]}" --timeout=10s >/dev/null 2>&1; do
      (( SECONDS < deadline )) || die "Kueue's CRDs not Established after 60s"
      sleep 1
    done
    kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$NAMESPACE" >/dev/null
    make_certs
    webhook="$(free_port)"; metrics="$(free_port)"; health="$(free_port)"
    write_config "$webhook" "$metrics" "$health"
    echo "$health" >"$STATE/health.port"
    log "starting kueue (webhooks https://127.0.0.1:$webhook, health :$health); log: $STATE/kueue.log"
    # 9>&-: the process must not inherit the lock.
    KUBECONFIG="$KUBECONFIG_PATH" KUEUE_METRICS_CERT_DIR="$STATE/certs" setsid "$BIN/kueue" \
      --config="$STATE/config.yaml" --feature-gates=VisibilityOnDemand=false \
      </dev/null >"$STATE/kueue.log" 2>&1 9>&- &
    echo $! >"$STATE/kueue.pid"
    wait_healthy "$health" 120
    register_webhooks "$webhook"
    log "kueue ready in $((SECONDS - start))s"
  fi
  apply_queues
}

down() {
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "kueue stopped (pid $pid)"
  fi
  rm -f "$STATE/kueue.pid"
  if [[ -f "$KUBECONFIG_PATH" ]]; then
    kubectl delete mutatingwebhookconfiguration "$WEBHOOK_PREFIX-mutating" --ignore-not-found --request-timeout=5s >/dev/null 2>&1 || true
    kubectl delete validatingwebhookconfiguration "$WEBHOOK_PREFIX-validating" --ignore-not-found --request-timeout=5s >/dev/null 2>&1 || true
  fi
}

status() {
  if pid="$(running_pid)"; then
    echo "kueue: running (pid $pid), log $STATE/kueue.log"
    kubectl get clusterqueues,resourceflavors
  else
    echo "kueue: not running (hack/kueue.sh up starts it)"; return 1
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  logs) cat "$STATE/kueue.log" ;;
  *) echo "usage: $0 up|down|status|logs" >&2; exit 2 ;;
esac
