#!/usr/bin/env bash
# Builds the pinned Kubernetes, etcd, kwok, helm, Kueue, SeaweedFS and metrics-server binaries from their Go modules
# into a cache outside the repo; a second run finds them and returns at once.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}"
BIN="$CACHE/k8s-$K8S_VERSION/bin"
WORK="$CACHE/build"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0
mkdir -p "$BIN" "$WORK"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# go build prints nothing while it compiles; a heartbeat shows it is alive.
with_progress() {
  local what="$1"; shift
  local start=$SECONDS
  "$@" &
  local pid=$!
  local next=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS >= next )) && kill -0 "$pid" 2>/dev/null; then
      log "$what: still compiling ($((SECONDS - start))s)"
      next=$((SECONDS + 15))
    fi
  done
  wait "$pid"
  log "$what: done in $((SECONDS - start))s"
}

build_kubernetes() {  # [binary...] (default: the control plane and kubectl)
  local want=("$@")
  [[ ${#want[@]} == 0 ]] && want=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0
  for b in "${want[@]}"; do [[ -x "$BIN/$b" ]] || missing=1; done
  [[ $missing == 0 ]] && { log "kubernetes $K8S_VERSION ${want[*]}: cached"; return; }
  local mod="$WORK/kubernetes-$K8S_VERSION"
  mkdir -p "$mod" && cd "$mod"
  # k8s.io/kubernetes replaces its staging modules with local paths, so a
  # wrapper module points each one at its published version instead.
  if [[ ! -f go.mod ]]; then
    log "kubernetes: resolving staging modules"
    go mod init kubeforge.local/k8sbuild >/dev/null 2>&1
    local gomod
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | while read -r m; do
      go mod edit -replace="$m=$m@$K8S_STAGING_VERSION"
    done
    printf 'package main\n' > placeholder.go
  fi
  local vpkg=k8s.io/component-base/version
  local ldflags="-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X $vpkg.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  log "kubernetes $K8S_VERSION: downloading modules"
  go mod download k8s.io/kubernetes
  log "kubernetes $K8S_VERSION: compiling ${want[*]} (cold: ~15-30 min on 2 cores)"
  local pkgs=()
  for b in "${want[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  with_progress kubernetes go build -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}"
}

build_etcd() {
  [[ -x "$BIN/etcd" ]] && { log "etcd $ETCD_VERSION: cached"; return; }
  local mod="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$mod" && cd "$mod"
  if [[ ! -f go.mod ]]; then
    go mod init kubeforge.local/etcdbuild >/dev/null 2>&1
    cat > main.go <<'GO'
// Command etcd runs the etcd server from the published server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
  fi
  log "etcd $ETCD_VERSION: compiling"
  with_progress etcd go build -ldflags "-s -w" -o "$BIN/etcd" .
}

build_go_install() {  # name module/pkg version
  local name="$1" pkg="$2" version="$3"
  [[ -x "$BIN/$name" ]] && { log "$name $version: cached"; return; }
  log "$name $version: compiling"
  with_progress "$name" env GOBIN="$BIN" go install -ldflags "-s -w" "$pkg@$version"
}

build_kwok() {
  local vpkg=sigs.k8s.io/kwok/pkg/consts
  for name in kwok kwokctl; do
    [[ -x "$BIN/$name" ]] && { log "$name $KWOK_VERSION: cached"; continue; }
    log "$name $KWOK_VERSION: compiling"
    with_progress "$name" env GOBIN="$BIN" go install \
      -ldflags "-s -w -X $vpkg.Version=$KWOK_VERSION -X $vpkg.KubeVersion=$K8S_VERSION" \
      "sigs.k8s.io/kwok/cmd/$name@$KWOK_VERSION"
  done
}

# helm's Makefile stamps its version and the Kubernetes version it assumes for `helm template`
# and `helm lint` (Capabilities.KubeVersion); a plain `go install` would claim v3.19 and Kubernetes
# v1.20, which fails charts with kubeVersion >=1.29. The same -X flags, with our cluster's version.
build_helm() {
  local want minor
  if [[ -x "$BIN/helm" ]] && want="$("$BIN/helm" version --template '{{.Version}}' 2>/dev/null)" && [[ "$want" == "$HELM_VERSION" ]]; then
    log "helm $HELM_VERSION: cached"
    return
  fi
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  log "helm $HELM_VERSION: compiling"
  with_progress helm env GOBIN="$BIN" go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# Kueue's controller manager, from cmd/kueue of its module. Its main reads the metrics server's
# certificate from a fixed /etc/kueue/metrics/certs when internal cert management is off (the only
# mode where its webhooks can serve a 127.0.0.1 certificate the API server trusts, hack/kueue.sh);
# a copy of that main reads the directory from $KUEUE_METRICS_CERT_DIR instead, so running it needs
# no write under /etc. Nothing else changes: every package comes from the published module.
build_kueue() {
  [[ -x "$BIN/kueue" ]] && { log "kueue $KUEUE_VERSION: cached"; return; }
  local mod="$WORK/kueue-$KUEUE_VERSION"
  mkdir -p "$mod" && cd "$mod"
  if [[ ! -f go.mod ]]; then
    go mod init kubeforge.local/kueuebuild >/dev/null 2>&1
    go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" >/dev/null
    go get "sigs.k8s.io/kueue@$KUEUE_VERSION" >/dev/null 2>&1 || true
  fi
  local src
  src="$(go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  sed 's|metricsCertPath := "/etc/kueue/metrics/certs"|metricsCertPath := os.Getenv("KUEUE_METRICS_CERT_DIR")|' \
    "$src/cmd/kueue/main.go" > main.go
  grep -q 'os.Getenv("KUEUE_METRICS_CERT_DIR")' main.go || { log "kueue: main.go no longer has the metrics cert path"; return 1; }
  go mod tidy >/dev/null
  log "kueue $KUEUE_VERSION: compiling (cold: ~10-20 min on 2 cores)"
  with_progress kueue go build -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" -o "$BIN/kueue" .
  # Its CRDs and webhook manifests travel with the binary: hack/kueue.sh applies them.
  rm -rf "$BIN/kueue-config" && mkdir -p "$BIN/kueue-config"
  cp "$src"/config/components/crd/bases/*.yaml "$src/config/components/webhook/manifests.yaml" "$BIN/kueue-config/"
  chmod -R u+w "$BIN/kueue-config"
}

# SeaweedFS (`weed`, whose `server -s3` is the S3-compatible store the tests use). Its go.mod has a
# replace directive, which `go install pkg@version` refuses, so a wrapper module requires it and
# repeats that replace; `go build` then compiles the dependency's main package.
build_seaweedfs() {
  [[ -x "$BIN/weed" ]] && { log "seaweedfs $SEAWEEDFS_VERSION: cached"; return; }
  local mod="$WORK/seaweedfs-$SEAWEEDFS_VERSION"
  mkdir -p "$mod" && cd "$mod"
  if [[ ! -f go.mod ]]; then
    go mod init kubeforge.local/seaweedfsbuild >/dev/null 2>&1
    go mod edit -require="github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" \
      -replace=github.com/tyler-smith/go-bip39=github.com/cosmos/go-bip39@v1.0.0
    printf 'package main\n' > placeholder.go
  fi
  log "seaweedfs $SEAWEEDFS_VERSION: downloading modules"
  go mod download github.com/seaweedfs/seaweedfs
  log "seaweedfs $SEAWEEDFS_VERSION: compiling weed (cold: ~20-40 min on 2 cores)"
  with_progress seaweedfs go build -ldflags "-s -w" -o "$BIN/weed" github.com/seaweedfs/seaweedfs/weed
}

# The Kubeflow Training Operator (v1: PyTorchJob and its siblings), the Go peer the scale bench runs
# side by side (bench/scale_bench.py --peer). From cmd/training-operator.v1 of its module; a copy of
# that main binds the webhook server to 127.0.0.1 (upstream listens on every interface). Its CRDs
# travel with the binary.
build_training_operator() {
  [[ -x "$BIN/training-operator" ]] && { log "training-operator $TRAINING_OPERATOR_VERSION: cached"; return; }
  local mod="$WORK/training-operator-$TRAINING_OPERATOR_VERSION"
  mkdir -p "$mod" && cd "$mod"
  local src
  src="$(go mod download -json "github.com/kubeflow/training-operator@$TRAINING_OPERATOR_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  if [[ ! -f go.mod ]]; then
    go mod init kubeforge.local/trainingoperatorbuild >/dev/null 2>&1
    # The wrapper requires exactly the peer's own dependency versions (its go.mod has no replaces).
    sed -n '/^require (/,/^)/p' "$src/go.mod" > deps.txt
    go mod edit -require="github.com/kubeflow/training-operator@$TRAINING_OPERATOR_VERSION"
    grep -E '^\s+[a-z]' deps.txt | awk '{print $1"@"$2}' | while read -r m; do go mod edit -require="$m"; done
    rm deps.txt
  fi
  sed 's|Port: webhookServerPort,|Host: "127.0.0.1", Port: webhookServerPort,|' "$src/cmd/training-operator.v1/main.go" > main.go
  grep -q 'Host: "127.0.0.1"' main.go || { log "training-operator: main.go no longer sets the webhook port"; return 1; }
  go mod tidy >/dev/null
  log "training-operator $TRAINING_OPERATOR_VERSION: compiling (cold: ~10 min on 2 cores)"
  with_progress training-operator go build -ldflags "-s -w" -o "$BIN/training-operator" .
  rm -rf "$BIN/training-operator-crds" && mkdir -p "$BIN/training-operator-crds"
  cp "$src"/manifests/base/crds/kubeflow.org_pytorchjobs.yaml "$BIN/training-operator-crds/"
  chmod -R u+w "$BIN/training-operator-crds"
}

# metrics-server, for the real node's HorizontalPodAutoscalers (hack/realnode/node.sh runs it on
# 127.0.0.1). Its go.mod has no replace directive, so `go install pkg@version` builds it; the -X
# flags are its Makefile's (it stamps client-go's version package).
build_metrics_server() {
  [[ -x "$BIN/metrics-server" ]] && { log "metrics-server $METRICS_SERVER_VERSION: cached"; return; }
  log "metrics-server $METRICS_SERVER_VERSION: compiling"
  with_progress metrics-server env GOBIN="$BIN" nice go install -trimpath \
    -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
}

main() {
  local what="${1:-all}"
  local start=$SECONDS
  # Two builds at once would share the module cache and halve both on 2 cores:
  # a second caller waits for the first, then finds the binaries cached.
  exec 8>"$CACHE/build.lock"
  flock 8
  case "$what" in
    all) build_etcd; build_kwok; build_kubernetes ;;
    helm) build_helm ;;
    kueue) build_kueue ;;
    seaweedfs) build_seaweedfs ;;
    # The real node (hack/cluster.sh up --real): kubelet and kube-proxy from the same wrapper module.
    realnode) build_kubernetes kubelet kube-proxy; build_metrics_server ;;
    metrics-server) build_metrics_server ;;
    training-operator) build_training_operator ;;
    *) echo "usage: $0 [all|helm|kueue|seaweedfs|realnode|metrics-server|training-operator]" >&2; exit 2 ;;
  esac
  log "binaries in $BIN ($((SECONDS - start))s)"
}
main "$@"
