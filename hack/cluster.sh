#!/usr/bin/env bash
# Starts, stops and reports the local Kubernetes cluster: a real kube-apiserver,
# kube-controller-manager, kube-scheduler and etcd run by kwokctl (binary
# runtime, all on 127.0.0.1), with kwok faking the GPU node pools and pods.
#
#   hack/cluster.sh up          create or start the cluster (idempotent), print the kubeconfig;
#                               a dead component (etcd, API server, controllers, kwok) is restarted
#   hack/cluster.sh up --real   the same, plus the real node (hack/realnode/node.sh: kubelet,
#                               containerd, CNI bridge, kube-proxy, DNS; needs root) as pool `real`
#   hack/cluster.sh down        delete the cluster and its state (and stop the real node if it is in it)
#   hack/cluster.sh status      is it up? nodes by pool
#   hack/cluster.sh kubeconfig  print the kubeconfig path
#   hack/cluster.sh check       up, then check that it behaves as a real cluster (hack/cluster-check/)
#
# Env: KUBEFORGE_CACHE (binary cache root), KUBEFORGE_CLUSTER_NAME (default
# kubeforge), KUBEFORGE_NO_BUILD=1 (fail with exit 3 instead of building
# missing binaries: what the test fixture uses), KUBEFORGE_CLUSTER_PROFILE (a file
# hack/kwok/profiles/<name>.yaml merged into the configuration at create, e.g. `scale`:
# the control plane's client limits raised as production clusters run them; a cluster made
# with another profile, or none, is recreated).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}"
BIN="$CACHE/k8s-$K8S_VERSION/bin"
NAME="${KUBEFORGE_CLUSTER_NAME:-kubeforge}"
WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}/clusters/$NAME"
KUBECONFIG_PATH="$WORKDIR/kubeconfig.yaml"
CONFIGS=("$HERE/kwok/kwokctl.yaml" "$HERE/kwok/stages/nodes.yaml" "$HERE/kwok/stages/pods.yaml")
PROFILE="${KUBEFORGE_CLUSTER_PROFILE:-}"
if [[ -n "$PROFILE" ]]; then
  [[ -f "$HERE/kwok/profiles/$PROFILE.yaml" ]] || { echo "no cluster profile $HERE/kwok/profiles/$PROFILE.yaml" >&2; exit 2; }
  CONFIGS+=("$HERE/kwok/profiles/$PROFILE.yaml")
fi
# One audit line per request (user agent, verb, resource) in $WORKDIR/logs/audit.log: see the policy.
AUDIT_POLICY="$HERE/kwok/audit-policy.yaml"
# Written after a successful create: which config (and binaries) the running
# cluster was made from, so a changed stage file leads to a fresh cluster.
STAMP="$WORKDIR/kubeforge.config.sha256"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl)
REALNODE_JOINED=/var/lib/kubeforge-realnode/joined  # which cluster the real node is in (hack/realnode/node.sh)
# The processes kwokctl runs for the cluster, by pid file name.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller)

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
# 9>&-: the cluster processes kwokctl starts must not inherit the `up` lock (they would hold it for good);
# 7>&-: nor the real node's in-use lock (hack/demo-real.sh).
kwokctl() { "$BIN/kwokctl" --name "$NAME" "$@" 7>&- 9>&-; }

ensure_binaries() {
  local b missing=()
  for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || missing+=("$b"); done
  [[ ${#missing[@]} == 0 ]] && return
  if [[ "${KUBEFORGE_NO_BUILD:-0}" == 1 ]]; then
    die "missing binaries in $BIN: ${missing[*]}; build them with hack/build-binaries.sh (cold: ~30 min on 2 cores)" 3
  fi
  log "missing binaries (${missing[*]}): building them (cold: ~30 min on 2 cores)"
  "$HERE/build-binaries.sh" all
}

config_stamp() {
  { cat "${CONFIGS[@]}" "$AUDIT_POLICY"; for b in "${BINARIES[@]}"; do echo "$b $(stat -c %s:%Y "$BIN/$b")"; done; } | sha256sum | cut -d' ' -f1
}

ready() {  # the API server answers /readyz with the kubeconfig we hand out
  [[ -f "$KUBECONFIG_PATH" ]] && kubectl get --raw=/readyz --request-timeout=3s >/dev/null 2>&1
}

# kwokctl trusts its pid files; after a reboot a recorded pid may belong to an
# unrelated process, which kwokctl would then leave running (start) or kill
# (delete). A pid counts only if its command line points into our workdir.
scrub_stale_pids() {
  local f pid
  for f in "$WORKDIR"/pids/*.pid; do
    [[ -e "$f" ]] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    if [[ ! "$pid" =~ ^[0-9]+$ ]] || ! tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$WORKDIR/"; then
      log "dropping stale pid file $(basename "$f") (pid ${pid:-?} is gone or not ours)"
      rm -f "$f"
    fi
  done
}

components_alive() {  # every component has a live pid (scrub_stale_pids dropped the dead ones)
  local c
  scrub_stale_pids
  for c in "${COMPONENTS[@]}"; do [[ -f "$WORKDIR/pids/$c.pid" ]] || { log "$c is not running"; return 1; }; done
}

wait_ready() {  # seconds
  local deadline=$((SECONDS + $1))
  until ready; do
    (( SECONDS < deadline )) || return 1
    sleep 0.5
  done
}

create() {
  log "creating cluster $NAME (kwokctl, binary runtime, 127.0.0.1)"
  # The binaries come from the local cache; kubectl has no flag, only the env.
  KWOK_KUBECTL_BINARY="$BIN/kubectl" KWOK_ETCD_VERSION="${ETCD_VERSION#v}" KWOK_KUBE_VERSION="$K8S_VERSION" \
  kwokctl create cluster \
    --runtime binary \
    "${CONFIGS[@]/#/--config=}" \
    --kube-audit-policy "$AUDIT_POLICY" \
    --kube-apiserver-binary "$BIN/kube-apiserver" \
    --kube-controller-manager-binary "$BIN/kube-controller-manager" \
    --kube-scheduler-binary "$BIN/kube-scheduler" \
    --etcd-binary "$BIN/etcd" \
    --kwok-controller-binary "$BIN/kwok" \
    --kubeconfig "" \
    --quiet-pull \
    --timeout 5m \
    --wait 2m >&2
  config_stamp >"$STAMP"
}

delete() {
  [[ -d "$WORKDIR" ]] || return 0
  scrub_stale_pids
  # Kueue (hack/kueue.sh) keeps its state in the cluster's directory: stop it before that goes.
  [[ -f "$WORKDIR/kueue/kueue.pid" ]] && { "$HERE/kueue.sh" down || log "kueue.sh down failed"; }
  # --kubeconfig names the file to drop our context from; we never added one
  # to any (and kwokctl refuses an empty path here).
  kwokctl delete cluster --kubeconfig "$WORKDIR/kubeconfig.yaml" >&2 || log "kwokctl delete failed; removing $WORKDIR"
  rm -rf "$WORKDIR"
}

start_existing() {  # returns non-zero when the old state cannot be brought back
  scrub_stale_pids
  log "starting existing cluster $NAME"
  # Some components may still run: stop them all, so start brings up one full set.
  kwokctl stop cluster >&2 2>/dev/null || true
  kwokctl start cluster --timeout 3m >&2 && wait_ready 120 || return 1
  # The node Leases still name the previous kwok-controller, which no longer
  # runs; until they expire the new one would not play the nodes' pods.
  kubectl delete leases -n kube-node-lease --all --wait=false >/dev/null
}

apply_nodes() {
  kubectl apply -f "$HERE/kwok/nodes/" >/dev/null
  # Nodes are Ready once kwok has initialised them (Stage node-initialize).
  kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s >/dev/null
}

show() {
  kubectl get nodes \
    -o custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,POOL:.metadata.labels.kubeforge\.io/pool,INSTANCE:.metadata.labels.node\.kubernetes\.io/instance-type,ZONE:.metadata.labels.topology\.kubernetes\.io/zone,GPU:.status.allocatable.nvidia\.com/gpu,CPU:.status.allocatable.cpu,TAINTS:.spec.taints[*].key'
}

up() {
  local start=$SECONDS real=0
  [[ "${1:-}" == --real ]] && real=1
  ensure_binaries
  # One `up` at a time: parallel test sessions share this cluster.
  exec 9>"$CACHE/cluster-$NAME.lock"  # not in the clusters dir: kwokctl lists it
  flock -w 900 9 || die "timed out waiting for another 'cluster.sh up'"
  if [[ -f "$WORKDIR/kwok.yaml" && "$(cat "$STAMP" 2>/dev/null)" != "$(config_stamp)" ]]; then
    log "kwok config or binaries changed since the cluster was made: recreating it"
    delete
  fi
  if [[ -f "$WORKDIR/kwok.yaml" ]]; then
    if ready && components_alive; then
      log "cluster $NAME already running"
    elif ! start_existing; then
      log "stale cluster state could not be started: recreating"
      delete
    fi
  fi
  if [[ ! -f "$WORKDIR/kwok.yaml" ]]; then
    create
    wait_ready 120 || die "API server not ready; logs: $WORKDIR/logs/"
  fi
  apply_nodes
  # A cluster that has the real node gets it checked (and dead daemons restarted) by a plain `up` too.
  if [[ $real == 1 || "$(cut -d' ' -f1 "$REALNODE_JOINED" 2>/dev/null)" == "$NAME" ]]; then
    "$HERE/realnode/node.sh" up "$KUBECONFIG_PATH" "$NAME"
  fi
  log "ready in $((SECONDS - start))s; kubeconfig: $KUBECONFIG_PATH"
  show >&2
  echo "$KUBECONFIG_PATH"
}

status() {
  if ready; then
    echo "cluster $NAME: running ($(kubectl config view -o jsonpath='{.clusters[0].cluster.server}'))"
    echo "kubeconfig: $KUBECONFIG_PATH"
    show
  elif [[ -d "$WORKDIR" ]]; then
    echo "cluster $NAME: created but not running (hack/cluster.sh up starts it)"; return 1
  else
    echo "cluster $NAME: absent (hack/cluster.sh up creates it)"; return 1
  fi
}

check() {  # the cluster's own tests: scheduling by GPU pools and taints, Jobs, CEL, garbage collection
  # Their `cluster` fixture runs `cluster.sh up` itself (not from here: this shell would hold the up lock).
  local py="${KUBEFORGE_VENV:-$CACHE/venv}/bin/python"
  cd "$HERE/.." && KUBEFORGE_REQUIRE_CLUSTER=1 KUBEFORGE_CLUSTER_NAME="$NAME" "$py" -m pytest -q -p no:cacheprovider "$HERE/cluster-check"
}

case "${1:-}" in
  up) up "${2:-}" ;;
  down) if [[ -x "$HERE/realnode/node.sh" && $(id -u) == 0 ]]; then "$HERE/realnode/node.sh" down "$NAME"; fi
        delete; log "cluster $NAME deleted" ;;
  status) status
          if [[ -f "$REALNODE_JOINED" ]]; then "$HERE/realnode/node.sh" status; fi ;;
  kubeconfig) echo "$KUBECONFIG_PATH" ;;
  check) check ;;
  *) echo "usage: $0 up [--real]|down|status|kubeconfig|check" >&2; exit 2 ;;
esac
