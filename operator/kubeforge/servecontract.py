"""The serving contract: env the ModelEndpoint builder sets and kubeforge-serve reads, and the model directory layout.

Defined once; the server's config loader and the Deployment builder both use these names.
"""

from kubeforge import contract

MODEL_DIR = "KUBEFORGE_MODEL_DIR"  # local path of the model directory (see layout below)
MODEL_URI = "KUBEFORGE_MODEL_URI"  # the resolved URI; for s3:// the download step fetches it into MODEL_DIR
MODEL_DIGEST = "KUBEFORGE_MODEL_DIGEST"  # sha256:... of the files manifest to insist on (from the TrainingJob), optional
MODEL_REVISION = "KUBEFORGE_MODEL_REVISION"  # the X-Kubeforge-Model response header: "revision=N; digest=..." (or uri=)
MODEL_HEADER = "x-kubeforge-model"
MODEL_NAME = "KUBEFORGE_MODEL_NAME"  # name in /v1/models/{name} and /v2/models/{name}
MODEL_FORMAT = "KUBEFORGE_MODEL_FORMAT"  # onnx | huggingface
TASK = "KUBEFORGE_TASK"  # text-classification
RUNTIME = "KUBEFORGE_RUNTIME"  # auto | tensorrt | onnxruntime | torch
MAX_BATCH_SIZE = "KUBEFORGE_MAX_BATCH_SIZE"
MAX_DELAY_MS = "KUBEFORGE_MAX_DELAY_MS"
MAX_QUEUE = "KUBEFORGE_MAX_QUEUE"
MAX_BODY_BYTES = "KUBEFORGE_MAX_BODY_BYTES"
QUANTIZE = "KUBEFORGE_QUANTIZE"  # none | int8 (ONNX Runtime on CPU)
ENGINE_CACHE_DIR = "KUBEFORGE_ENGINE_CACHE_DIR"  # TensorRT engines, keyed by GPU, TRT version, model hash
HOST = "KUBEFORGE_HOST"
PORT = "KUBEFORGE_PORT"
GRPC_PORT = "KUBEFORGE_GRPC_PORT"  # Open Inference Protocol v2 over gRPC; 0 or unset: no gRPC listener
# The held-out evaluation (spec.rollout.promotion.evaluation), run by the init container model-eval before the
# server starts: the file, how to read it, and the gate (JSON list of {"metric", "op", "value", "why"}).
EVAL_URI = "KUBEFORGE_EVAL_URI"
EVAL_FORMAT = "KUBEFORGE_EVAL_FORMAT"  # auto | jsonl | csv
EVAL_TEXT_COLUMN = "KUBEFORGE_EVAL_TEXT_COLUMN"
EVAL_LABEL_COLUMN = "KUBEFORGE_EVAL_LABEL_COLUMN"
EVAL_GATE = "KUBEFORGE_EVAL_GATE"
EVAL_METRICS = ("accuracy", "f1", "loss")  # what the evaluation reports (and "samples"), as training does
# A canary's server reports its traffic (requests, 5xx, p95) into one key (its pod name) of this ConfigMap,
# which its ServiceAccount alone may patch; set on canary pods only (stable pods keep no token).
REPORT_CONFIGMAP = "KUBEFORGE_REPORT_CONFIGMAP"
REPORT_EVERY_S = "KUBEFORGE_REPORT_EVERY_S"
DEFAULT_REPORT_EVERY_S = 5.0
# Downward API metadata.name / metadata.namespace: the report's key and where the ConfigMap is; the trainer's names.
POD_NAME, POD_NAMESPACE = contract.POD_NAME, contract.POD_NAMESPACE

DEFAULT_PORT = 8080
DEFAULT_GRPC_PORT = 8081  # KServe's and Triton's conventional gRPC port
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_DELAY_MS = 5

# A server pod's shutdown, which the builder sizes the pod's grace period from: the preStop sleep (the
# endpoints controller and kube-proxies drop the pod meanwhile), SIGTERM, then readiness 503 while still
# serving for the drain delay (load balancers that probe readiness catch up), then the listener closes and
# in-flight requests get the drain timeout to finish.
PRESTOP_SLEEP_S = 5
DEFAULT_DRAIN_DELAY_S = 5.0
DEFAULT_DRAIN_TIMEOUT_S = 25.0

# Routes the Deployment's probes and the Prometheus annotations point at.
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
# The gauge the inflight autoscaling metric reads (requests in flight per replica).
INFLIGHT_METRIC = "kubeforge_requests_in_flight"

# Model directory layout written by kubeforge-train and read by kubeforge-serve:
#   <dir>/kubeforge.json   manifest: {"task", "labels", "maxSeqLength", "onnx": "onnx/model.onnx", "huggingface": "hf"}
#   <dir>/hf/              Hugging Face model + tokenizer (config.json carries id2label)
#   <dir>/onnx/model.onnx  ONNX export, dynamic batch and sequence axes, tokenizer files beside it
MODEL_MANIFEST = "kubeforge.json"
# In an object store, a model directory is complete once this files manifest (every file's size and
# sha256, written last by kubeforge_workloads.objectstore.commit_tree) exists; its sha256 is the model's digest.
MODEL_FILES_MANIFEST = "kubeforge-manifest.json"
