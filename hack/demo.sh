#!/usr/bin/env bash
# The quick-start demo (`make demo`):
#   1. the local cluster: a real control plane with fake GPU node pools (kwok)
#   2. the CRDs and the operator
#   3. samples/trainingjob.yaml on the a100 pool: workers Running, a group restart,
#      success (the fake pods are driven by kwok annotations: they run no code)
#   4. samples/modelendpoint.yaml: waits for the job, deploys its model, goes Ready; kubectl scale
#   5. the same TrainingJob trained for real on this CPU (2 local "nodes", DeepSpeed ZeRO-2)
#   6. kubeforge-serve on the model it produced, and a prediction through /v2 infer
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
source hack/versions.env
VENV="${KUBEFORGE_VENV:-$HOME/.cache/kubeforge/venv}"
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
KUBECTL_BIN="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}/k8s-$K8S_VERSION/bin/kubectl"
NS="${KUBEFORGE_DEMO_NAMESPACE:-kubeforge-demo}"
OUT="$REPO/out/demo"
STEPS="${KUBEFORGE_DEMO_STEPS:-60}"
JOB=sentiment-minilm
mkdir -p "$OUT"

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
say() { printf '\033[2m$ %s\033[0m\n' "$*"; }
k() { "$KUBECTL_BIN" -n "$NS" "$@"; }
show() { say "kubectl $*"; k "$@"; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # url seconds
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    (( SECONDS < deadline )) || { echo "timed out waiting for $1" >&2; return 1; }
    sleep 0.5
  done
}

step "1/6 Local cluster (real kube-apiserver, controller-manager, scheduler, etcd; kwok nodes)"
hack/cluster.sh up
export KUBECONFIG="$(hack/cluster.sh kubeconfig)"
say "kubectl get nodes -L kubeforge.io/pool,node.kubernetes.io/instance-type,nvidia.com/gpu.product"
"$KUBECTL_BIN" get nodes -L kubeforge.io/pool,node.kubernetes.io/instance-type,nvidia.com/gpu.product \
  -o custom-columns='NODE:.metadata.name,POOL:.metadata.labels.kubeforge\.io/pool,TYPE:.metadata.labels.node\.kubernetes\.io/instance-type,GPUS:.status.allocatable.nvidia\.com/gpu,TAINTS:.spec.taints[*].key'

step "2/6 CRDs and the operator"
"$KUBECTL_BIN" apply --server-side --force-conflicts -f crds/ >/dev/null
"$KUBECTL_BIN" wait --for=condition=Established -f crds/ --timeout=60s
HEALTH_PORT="$(free_port)"; METRICS_PORT="$(free_port)"
KUBEFORGE_HEALTH_ADDR="127.0.0.1:$HEALTH_PORT" KUBEFORGE_METRICS_ADDR="127.0.0.1:$METRICS_PORT" \
  KUBEFORGE_WATCH_NAMESPACES="$NS" "$PY" -m kubeforge > "$OUT/operator.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$HEALTH_PORT/healthz" 60
echo "operator healthy: http://127.0.0.1:$HEALTH_PORT/healthz, metrics on :$METRICS_PORT, log $OUT/operator.log"

step "3/6 TrainingJob: 4 nodes x 8 A100 GPUs, DeepSpeed ZeRO-2 (samples/trainingjob.yaml)"
"$KUBECTL_BIN" delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
"$KUBECTL_BIN" delete pv "$NS-models" --ignore-not-found >/dev/null
"$KUBECTL_BIN" create namespace "$NS" >/dev/null
"$KUBECTL_BIN" label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
# No storage provisioner in the local cluster: bind the sample's claim to a static volume.
"$KUBECTL_BIN" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: $NS-models}
spec: {capacity: {storage: 50Gi}, accessModes: [ReadWriteMany], storageClassName: "", claimRef: {namespace: $NS, name: models}, hostPath: {path: /tmp/kubeforge-demo-models}}
YAML
show apply -f samples/trainingjob.yaml
show apply -f samples/modelendpoint.yaml
k wait "tj/$JOB" --for=jsonpath='{.status.phase}'=Running --timeout=120s >/dev/null
show get tj,mep
show get pods -l "kubeforge.io/trainingjob=$JOB" -o wide
J="kubeforge.io/trainingjob=$JOB"; R0="batch.kubernetes.io/job-completion-index=0"
echo "# rank 0 reports progress in the job's ConfigMap $JOB-progress, the one object its token may write"
k patch configmap "$JOB-progress" --type merge \
  -p '{"data":{"progress":"{\"step\":120,\"totalSteps\":400,\"loss\":0.41,\"attempt\":1}"}}' >/dev/null
k wait "tj/$JOB" --for=jsonpath='{.status.progress.step}'=120 --timeout=60s >/dev/null
show get tj "$JOB" -o wide
echo "# worker 2 is OOM-killed (exit 137, retryable): the whole group restarts as attempt 2"
k annotate pod -l "$J,kubeforge.io/attempt=1,batch.kubernetes.io/job-completion-index=2" kubeforge.io/fake-exit-code=137 >/dev/null
k wait "tj/$JOB" --for=jsonpath='{.status.restarts}'=1 --timeout=60s >/dev/null
k wait "tj/$JOB" --for=jsonpath='{.status.phase}'=Running --timeout=60s >/dev/null
show get tj,mep
echo "# the workers finish: rank 0 leaves its JSON summary as the termination message"
k annotate pod -l "$J,$R0,kubeforge.io/attempt=2" --overwrite \
  kubeforge.io/fake-termination-message='{"metrics":{"accuracy":0.912,"f1":0.908},"modelUri":"pvc://models/sentiment-minilm","steps":400}' >/dev/null
k patch configmap "$JOB-progress" --type merge \
  -p '{"data":{"progress":"{\"step\":400,\"totalSteps\":400,\"loss\":0.18,\"attempt\":2}"}}' >/dev/null
k annotate pod -l "$J,kubeforge.io/attempt=2" kubeforge.io/fake-exit-code=0 --overwrite >/dev/null
k wait "tj/$JOB" --for=jsonpath='{.status.phase}'=Succeeded --timeout=60s >/dev/null
show get tj "$JOB"
say "kubectl get tj $JOB -o jsonpath={.status.result}"; k get tj "$JOB" -o jsonpath='{.status.result}'; echo

step "4/6 ModelEndpoint: serves the job's model with no human step (samples/modelendpoint.yaml)"
k wait "mep/$JOB" --for=condition=Ready --timeout=120s >/dev/null
show get mep,deploy,hpa,pdb
echo "# kubectl scale works through the scale subresource once the HPA no longer owns the count"
show patch mep "$JOB" --type=json -p '[{"op":"remove","path":"/spec/autoscaling"}]'
show scale mep "$JOB" --replicas=5
k wait "mep/$JOB" --for=jsonpath='{.status.readyReplicas}'=5 --timeout=120s >/dev/null
show get mep "$JOB"

step "5/6 The same TrainingJob, trained for real on this CPU: 2 local nodes x 1 process, $STEPS steps"
rm -rf "$OUT/local"
say "kubeforge run samples/trainingjob.yaml --local --nodes 2 --procs-per-node 1 --max-steps $STEPS"
"$VENV/bin/kubeforge" run samples/trainingjob.yaml --local --nodes 2 --procs-per-node 1 --max-steps "$STEPS" \
  --workdir "$OUT/local" --output "$OUT/local/model"

step "6/6 Serve the model it produced and ask it"
PORT="$(free_port)"
"$VENV/bin/kubeforge-serve" --model-dir "$OUT/local/model" --model-name "$JOB" --host 127.0.0.1 --port "$PORT" \
  > "$OUT/serve.log" 2>&1 &
pids+=($!)
say "POST http://127.0.0.1:$PORT/v2/models/$JOB/infer"
"$PY" -m kubeforge_workloads.serve.client --url "http://127.0.0.1:$PORT" --model "$JOB" --wait 180 \
  "This movie was a delight from start to finish." "A dull, tedious mess; I want my money back."

step "Done"
cat <<EOF
The cluster keeps running:   export KUBECONFIG=$KUBECONFIG
                             $KUBECTL_BIN -n $NS get tj,mep
The model (HF + ONNX):       $OUT/local/model
Stop the cluster:            make cluster-down
EOF
