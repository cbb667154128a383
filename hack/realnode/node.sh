#!/usr/bin/env bash
# One real node in the local cluster: kubelet + containerd (runc) + CNI bridge + kube-proxy + a
# cluster DNS + metrics-server, joined to the control plane that hack/cluster.sh runs, as the pool `real`.
#
#   hack/realnode/node.sh up KUBECONFIG CLUSTER   join (or re-check and restart) the node; idempotent
#   hack/realnode/node.sh down [CLUSTER]          stop its daemons and remove its pods' sandboxes
#   hack/realnode/node.sh status                  which daemons run, for which cluster
#   hack/realnode/node.sh load-images IMAGE...    copy images from Docker into the node's containerd
#
# Needs root (cgroups, network namespaces, iptables) and Debian's packages
# (install-packages.sh). One real node per machine: joining another cluster moves it there.
# Network (hack/kwok/README.md): pods 10.213.0.0/24 on the bridge kfbr0 (gateway 10.213.0.1),
# Services 10.96.0.0/16; every daemon listens on 127.0.0.1 or the gateway; pods cannot leave the
# machine (a FORWARD reject), and the API server and DNS reach them through the gateway.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/common.sh"
source "$REPO_ROOT/hack/versions.env"
CACHE="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}"
BIN="$CACHE/k8s-$K8S_VERSION/bin"
NODE_NAME="${KUBEFORGE_REAL_NODE_NAME:-real-0}"
POD_CIDR=10.213.0.0/24
GATEWAY=10.213.0.1
# The cluster DNS's own address on the bridge (a /32 beside the gateway; pods reach it through their
# default route, the host delivers it locally). Not the gateway: once a DNS left running by an earlier
# join held the gateway's port 53 and answered for the wrong cluster (see 'up' below).
CLUSTER_DNS=10.213.1.1
SERVICE_CIDR=10.96.0.0/16
BRIDGE=kfbr0
CLUSTER_DOMAIN=cluster.local
TAINT=kubeforge.io/real-node
# metrics-server's port on 127.0.0.1 (one real node per machine, so a fixed one).
METRICS_SERVER_PORT=10262
ETC="$REALNODE_STATE/etc"
KUBELET_DIR="$REALNODE_STATE/kubelet"
JOINED="$REALNODE_STATE/joined"   # "CLUSTER KUBECONFIG SHA256" of the cluster the node is in

# name -> pid-file match (the daemon's command line contains it)
declare -A MATCH=(
  [containerd]="$ETC/containerd.toml"
  [kubelet]="$ETC/kubelet.yaml"
  [kube-proxy]="$ETC/kube-proxy.yaml"
  [clusterdns]="clusterdns.py"
  [apiserver-proxy]="bind=$GATEWAY"
  [metrics-server]="--secure-port=$METRICS_SERVER_PORT"
)
pidfile() { echo "$REALNODE_RUN/$1.pid"; }

require_root() {
  [[ $(id -u) == 0 ]] || rn_die "the real node needs root (cgroups, network namespaces, iptables)" 3
  [[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] || rn_die "no cgroups on this machine" 3
}

ensure_binaries() {
  [[ -x "$BIN/kubelet" && -x "$BIN/kube-proxy" && -x "$BIN/metrics-server" ]] && return 0
  [[ "${KUBEFORGE_NO_BUILD:-0}" == 1 ]] && rn_die "kubelet/kube-proxy/metrics-server not built in $BIN (hack/build-binaries.sh realnode)" 3
  "$REPO_ROOT/hack/build-binaries.sh" realnode >&2
}

network() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  # (no `| grep -q` under pipefail: grep quitting early fails the pipeline with SIGPIPE)
  [[ "$(ip -4 addr show dev "$BRIDGE")" == *"inet $GATEWAY/"* ]] || ip addr add "$GATEWAY/24" dev "$BRIDGE"
  [[ "$(ip -4 addr show dev "$BRIDGE")" == *"inet $CLUSTER_DNS/"* ]] || ip addr add "$CLUSTER_DNS/32" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Service IPs are virtual (kube-proxy DNATs them); route them to the bridge so nothing on the
  # host ever sends them out of the machine's own interface.
  [[ -n "$(ip route show "$SERVICE_CIDR")" ]] || ip route add "$SERVICE_CIDR" dev "$BRIDGE" src "$GATEWAY"
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  # Pods talk to each other, to Services and to the gateway; never past this machine.
  iptables -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j REJECT 2>/dev/null \
    || iptables -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j REJECT
}

config_file() {  # path daemon < content: write it; a changed file stops its running daemon (up restarts it)
  local path="$1" daemon="$2" new
  new="$(cat)"
  [[ -f "$path" && "$(cat "$path")" == "$new" ]] && return 0
  printf '%s\n' "$new" >"$path"
  [[ -n "$daemon" ]] && stop_daemon "$daemon" "$(pidfile "$daemon")" "${MATCH[$daemon]}"
  return 0
}

write_configs() {  # kubeconfig
  local kubeconfig="$1"
  mkdir -p "$ETC/cni" "$KUBELET_DIR" "$REALNODE_STATE/containerd" "$REALNODE_RUN"
  config_file "$ETC/containerd.toml" containerd <<TOML
version = 2
root = "$REALNODE_STATE/containerd"
state = "$REALNODE_RUN/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "kubeforge.local/pause:3.10"
  # This VM lacks CAP_SYS_RESOURCE: without it runc fails every sandbox with
  # "can't get final child's PID from pipe: EOF" (it cannot lower oom_score_adj).
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni"
TOML
  config_file "$ETC/cni/10-kubeforge.conflist" "" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "kubeforge",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$REALNODE_STATE/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  config_file "$ETC/kubelet.yaml" kubelet <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The API server dials the node's InternalIP for logs and exec. The kubelet refuses a loopback node
# IP, and the machine's own interface must not be used: the bridge gateway is the node's address.
address: $GATEWAY
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# This machine has cgroup v1 and no systemd as init.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# The API server reaches the kubelet (logs, exec) on the gateway only, without a client certificate.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}, x509: {}}
authorization: {mode: AlwaysAllow}
clusterDNS: [$CLUSTER_DNS]
clusterDomain: $CLUSTER_DOMAIN
# Pods get only the cluster DNS; the host's resolvers (off the machine) are never handed to them.
resolvConf: ""
registerWithTaints: [{key: $TAINT, value: "true", effect: NoSchedule}]
# Images are imported locally and cannot be pulled again: never garbage-collect them. Disk-pressure
# eviction reclaims by deleting unused images whatever the GC thresholds say (it removed the trainer
# image on the first runs here, at 1% of a thin-provisioned disk): absolute floors, near empty only.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 300Mi, imagefs.available: 300Mi, nodefs.inodesFree: 1%}
serializeImagePulls: false
maxPods: 50
YAML
  config_file "$ETC/kube-proxy.yaml" kube-proxy <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $kubeconfig}
nodePortAddresses: [127.0.0.1/32]
# Leave the machine's conntrack sysctls alone (a shared VM).
conntrack: {maxPerCore: 0}
YAML
}

start_containerd() {
  start_daemon containerd "$(pidfile containerd)" "${MATCH[containerd]}" /usr/bin/containerd --config "$ETC/containerd.toml"
  wait_for 60 containerd "${CTR[@]}" version
}

load_images() {  # image...: docker save | ctr import, skipped when the same image ID is there
  local image id stamp
  mkdir -p "$REALNODE_STATE/imported"
  for image in "$@"; do
    id="$("${DOCKER[@]}" image inspect -f '{{.Id}}' "$image")" || rn_die "image $image is not built (make images)"
    stamp="$REALNODE_STATE/imported/$(echo "$image" | tr '/:' '__')"
    if [[ "$(cat "$stamp" 2>/dev/null)" == "$id" && -n "$("${CTR[@]}" images ls -q "name==$image")" ]]; then
      continue
    fi
    rn_log "loading $image into the node's containerd"
    # Only the layers containerd lacks (import_image.py): after a code change, the trainer's ~2 MB top
    # layer instead of all 6 GB. Exit 2: its layers did not add up, so the plain import below.
    local rc=0
    nice python3 "$HERE/import_image.py" "unix://$DOCKER_SOCK" "$CONTAINERD_SOCK" \
      "$REALNODE_STATE/containerd/io.containerd.content.v1.content" k8s.io "$image" || rc=$?
    if (( rc == 2 )); then
      # ctr import writes every layer of a Docker archive to its ingest area before it can tell that
      # the content is already there: the image's full size. Refuse early rather than fill the disk
      # (the kubelet would evict pods and delete images it cannot pull back).
      local need free
      need=$(( $("${DOCKER[@]}" image inspect -f '{{.Size}}' "$image") / 1048576 + 2048 ))
      free=$(df -Pm "$REALNODE_STATE" | awk 'NR == 2 {print $4}')
      (( free > need )) || rn_die "loading $image needs ~${need} MiB free on $REALNODE_STATE, ${free} MiB left"
      "${DOCKER[@]}" save "$image" | nice "${CTR[@]}" images import --no-unpack=false - >/dev/null
    elif (( rc != 0 )); then
      rn_die "could not load $image into the node's containerd"
    fi
    # The CRI plugin keeps a second record per image, named by its ID: drop the previous version's,
    # or its content (6 GB for the trainer) stays referenced and the disk fills on every rebuild.
    local previous; previous="$(cat "$stamp" 2>/dev/null || true)"
    if [[ -n "$previous" && "$previous" != "$id" ]]; then "${CTR[@]}" images rm --sync "$previous" >/dev/null 2>&1 || true; fi
    echo "$id" >"$stamp"
  done
}

api_port() { awk '/server:/ {print $2}' "$1" | head -1 | sed -E 's#.*:([0-9]+)/?$#\1#'; }

start_kubelet() {  # kubeconfig (a no-op while it runs)
  start_daemon kubelet "$(pidfile kubelet)" "${MATCH[kubelet]}" "$BIN/kubelet" \
    --config "$ETC/kubelet.yaml" --kubeconfig "$1" --root-dir "$KUBELET_DIR" \
    --hostname-override "$NODE_NAME" --node-ip "$GATEWAY" \
    --node-labels "kubeforge.io/pool=real,type=real" --v=1
}

# The kubelet exits at once ("server is not initialized yet") when containerd's socket answers but
# its CRI plugin is still recovering its state (seconds with a large image store): `ctr version`
# cannot tell. While waiting for the node to register, a kubelet that exited is started again.
kubelet_registered() {  # kubeconfig
  start_kubelet "$1"
  "$BIN/kubectl" --kubeconfig "$1" get node "$NODE_NAME"
}

dns_answers() {  # kubernetes.default resolves to its ClusterIP through the cluster DNS
  pid_alive "$(pidfile clusterdns)" "${MATCH[clusterdns]}" && python3 - "$CLUSTER_DNS" "kubernetes.default.svc.$CLUSTER_DOMAIN" <<'PY'
import socket, struct, sys
name = b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[2].split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1), (sys.argv[1], 53))
reply = s.recv(512)
sys.exit(0 if reply[3] & 15 == 0 and struct.unpack(">H", reply[6:8])[0] > 0 else 1)
PY
}

start_node_daemons() {  # kubeconfig
  local kubeconfig="$1" port
  port="$(api_port "$kubeconfig")"
  [[ "$port" =~ ^[0-9]+$ ]] || rn_die "no API server port in $kubeconfig"
  start_kubelet "$kubeconfig"
  start_daemon kube-proxy "$(pidfile kube-proxy)" "${MATCH[kube-proxy]}" "$BIN/kube-proxy" \
    --config "$ETC/kube-proxy.yaml" --v=1
  # Pods reach the API server at the gateway (the `kubernetes` Service's endpoint, written below);
  # it listens on 127.0.0.1 only, so a TCP relay on the gateway forwards (TLS passes through).
  start_daemon apiserver-proxy "$(pidfile apiserver-proxy)" "${MATCH[apiserver-proxy]}" /usr/bin/socat \
    "TCP-LISTEN:$port,bind=$GATEWAY,fork,reuseaddr" "TCP:127.0.0.1:$port"
  start_daemon clusterdns "$(pidfile clusterdns)" "${MATCH[clusterdns]}" /usr/bin/python3 "$HERE/clusterdns.py" \
    --kubeconfig "$kubeconfig" --listen "$CLUSTER_DNS" --domain "$CLUSTER_DOMAIN"
  # The resource metrics API for HorizontalPodAutoscalers, on 127.0.0.1. It scrapes only the real
  # node's kubelet, at its InternalIP (the gateway): kwok's fake nodes have no InternalIP and are not
  # selected. The kubelet's serving certificate is self-signed, hence --kubelet-insecure-tls.
  start_daemon metrics-server "$(pidfile metrics-server)" "${MATCH[metrics-server]}" "$BIN/metrics-server" \
    --secure-port="$METRICS_SERVER_PORT" --bind-address=127.0.0.1 --cert-dir "$REALNODE_STATE/metrics-server" \
    --kubeconfig "$kubeconfig" --authentication-kubeconfig "$kubeconfig" --authorization-kubeconfig "$kubeconfig" \
    --node-selector kubeforge.io/pool=real --kubelet-preferred-address-types=InternalIP \
    --kubelet-use-node-status-port --kubelet-insecure-tls --metric-resolution=15s
}

metrics_api() {  # kubeconfig: register metrics-server as the metrics.k8s.io API (the aggregation layer)
  # The API server resolves an APIService's Service to its ClusterIP, or for an ExternalName Service
  # to that name: 127.0.0.1 here, so the aggregator dials metrics-server on loopback and nothing
  # listens beyond it. insecureSkipTLSVerify as in metrics-server's own manifest (self-signed cert).
  "$BIN/kubectl" --kubeconfig "$1" apply -f - >/dev/null 2>"$REALNODE_LOGS/metrics-api.err" <<YAML \
    || rn_die "could not register the metrics API: $(cat "$REALNODE_LOGS/metrics-api.err")"
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system, labels: {app.kubernetes.io/managed-by: kubeforge-realnode}}
spec: {type: ExternalName, externalName: 127.0.0.1, ports: [{name: https, port: $METRICS_SERVER_PORT, protocol: TCP}]}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io, labels: {app.kubernetes.io/managed-by: kubeforge-realnode}}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {namespace: kube-system, name: metrics-server, port: $METRICS_SERVER_PORT}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
}

kubernetes_endpoints() {  # kubeconfig: default/kubernetes -> the gateway (the API server's reconciler is off)
  local kubeconfig="$1" port
  port="$(api_port "$kubeconfig")"
  # Both objects, as the API server's own reconciler writes them (stderr: v1 Endpoints' deprecation warning).
  "$BIN/kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null 2>"$REALNODE_LOGS/endpoints.err" <<YAML \
    || rn_die "could not write default/kubernetes: $(cat "$REALNODE_LOGS/endpoints.err")"
apiVersion: v1
kind: Endpoints
metadata:
  name: kubernetes
  namespace: default
  labels: {endpointslice.kubernetes.io/skip-mirror: "true"}
subsets: [{addresses: [{ip: $GATEWAY}], ports: [{name: https, port: $port, protocol: TCP}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes
  namespace: default
  labels: {kubernetes.io/service-name: kubernetes, endpointslice.kubernetes.io/managed-by: kubeforge-realnode}
addressType: IPv4
endpoints: [{addresses: [$GATEWAY], conditions: {ready: true}}]
ports: [{name: https, port: $port, protocol: TCP}]
YAML
}

remove_pods() {  # the runtime's sandboxes of a previous cluster (their pods are gone with it)
  "${CTR[@]}" version >/dev/null 2>&1 || return 0
  local c
  for c in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
  sleep 1
  for c in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks rm -f "$c" >/dev/null 2>&1 || true; done
  for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do "${CTR[@]}" containers rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$REALNODE_STATE/cni-ipam"
  # The kubelet's pod dirs hold mounts (service account tokens, volumes).
  if [[ -d "$KUBELET_DIR/pods" ]]; then
    grep -o " $KUBELET_DIR/pods/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$KUBELET_DIR/pods"
  fi
}

stop_node_daemons() {
  local d
  for d in metrics-server clusterdns apiserver-proxy kube-proxy kubelet; do stop_daemon "$d" "$(pidfile "$d")" "${MATCH[$d]}"; done
}

up() {  # kubeconfig cluster
  local kubeconfig="$1" cluster="$2" start=$SECONDS
  require_root
  # Two `up`s at once (two clusters) raced here: each started its own DNS and API relay, one pid file
  # kept the other's pid, and the loser's daemons ran on untracked. One at a time (fd 6, closed for
  # every daemon start_daemon starts). Who *uses* the node between ups: realnode_kit's in-use lock.
  mkdir -p "$REALNODE_RUN"
  exec 6>"$REALNODE_RUN/up.lock"
  flock -w 900 6 || rn_die "another 'node.sh up' holds $REALNODE_RUN/up.lock"
  "$HERE/install-packages.sh"
  ensure_binaries
  "$HERE/dockerd.sh" up
  "$HERE/base-images.sh"
  network
  # A recreated cluster (same name, new certificates and port) counts as another cluster.
  local joined; joined="$cluster $kubeconfig $(sha256sum <"$kubeconfig" | cut -c1-16)"
  if [[ -f "$JOINED" && "$(cat "$JOINED")" != "$joined" ]]; then
    rn_log "the node was in cluster '$(cut -d' ' -f1 "$JOINED")' (or an earlier one of that name): moving it to '$cluster'"
    stop_node_daemons
    remove_pods
  fi
  write_configs "$kubeconfig"
  start_containerd
  load_images kubeforge.local/pause:3.10
  echo "$joined" >"$JOINED"
  kubernetes_endpoints "$kubeconfig"
  metrics_api "$kubeconfig"
  start_node_daemons "$kubeconfig"
  # The DNS answers for this cluster (a DNS that could not bind its port exits, and pods would fail
  # name lookups with no other sign).
  wait_for 60 "the cluster DNS on $CLUSTER_DNS" dns_answers \
    || rn_die "the cluster DNS does not answer on $CLUSTER_DNS; logs: $REALNODE_LOGS/clusterdns.log"
  wait_for 120 "node $NODE_NAME to register" kubelet_registered "$kubeconfig" \
    || rn_die "node $NODE_NAME did not register; logs: $REALNODE_LOGS/kubelet.log"
  "$BIN/kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null \
    || rn_die "node $NODE_NAME not Ready; logs: $REALNODE_LOGS/kubelet.log"
  rn_log "node $NODE_NAME Ready in cluster $cluster ($((SECONDS - start))s)"
}

down() {  # [cluster]: only when the node is in that cluster (or always without one)
  if [[ -n "${1:-}" && "$(cut -d' ' -f1 "$JOINED" 2>/dev/null)" != "$1" ]]; then return 0; fi
  stop_node_daemons
  remove_pods
  stop_daemon containerd "$(pidfile containerd)" "${MATCH[containerd]}"
  rm -f "$JOINED"
}

status() {
  local d
  echo "real node $NODE_NAME: cluster $(cut -d' ' -f1 "$JOINED" 2>/dev/null || echo none)"
  for d in containerd kubelet kube-proxy clusterdns apiserver-proxy metrics-server; do
    if pid_alive "$(pidfile "$d")" "${MATCH[$d]}"; then echo "  $d: running ($(cat "$(pidfile "$d")"))"; else echo "  $d: stopped"; fi
  done
}

case "${1:-}" in
  up) up "$2" "$3" ;;
  down) down "${2:-}" ;;
  status) status ;;
  load-images) shift; start_containerd; load_images "$@" ;;
  *) echo "usage: $0 up KUBECONFIG CLUSTER | down [CLUSTER] | status | load-images IMAGE..." >&2; exit 2 ;;
esac
