"""The ModelEndpoint API (kubeforge.io/v1alpha1, short name mep): spec, status and the CRD definition."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field

from kubeforge.api.base import ApiModel, ResourceDefinition, cel, preserve_unknown
from kubeforge.api.common import Condition, NodePool, ObjectStorage, Resources, conditions_field
from kubeforge.api.objectname import DNS_LABEL_MAX, name_rules

KIND = "ModelEndpoint"
PLURAL = "modelendpoints"

Runtime = Literal["auto", "tensorrt", "onnxruntime", "torch"]
Protocol = Literal["http", "grpc"]

# gs://, az:// and others are refused by the API server until kubeforge can fetch from them
# (GCS works today through its S3 API: s3:// with spec.storage.endpoint).
_URI_RULE = (
    "self.startsWith('pvc://') || self.startsWith('s3://') || self.startsWith('file:///') || self.startsWith('/')"
)


class TrainingJobRef(ApiModel):
    """A TrainingJob in the same namespace whose exported model this endpoint serves."""

    name: str = Field(..., min_length=1, max_length=253, description="Name of the TrainingJob.")


class ModelSource(ApiModel):
    """Where the model comes from: a URI, or the output of a TrainingJob once it succeeds."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.uri) != has(self.trainingJobRef)",
                    "spec.model: set exactly one of uri or trainingJobRef",
                ),
            ]
        }
    )

    uri: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description=(
            "pvc://claim/path, s3://bucket/prefix (downloaded into the pod and checked against its files manifest "
            "before the server starts; see spec.storage) or an absolute path in the image."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    _URI_RULE,
                    "spec.model.uri must be pvc://claim/path, s3://bucket/prefix, file:///path or an absolute path "
                    "(other object stores: through their S3 API)",
                )
            ]
        },
    )
    training_job_ref: TrainingJobRef | None = Field(
        None, description="Serve what this TrainingJob exports (status.result.modelUri); the endpoint waits for it."
    )
    format: Literal["onnx", "huggingface"] = Field("onnx", description="Which export in the model directory to serve.")
    task: Literal["text-classification"] = Field(
        # A one-value Literal becomes `const`, which structural schemas lack: spell the enum out.
        "text-classification", description="The inference task.", json_schema_extra={"enum": ["text-classification"]}
    )
    revision: int | None = Field(
        None, ge=1,
        description="Pin a revision from status.revisions: the endpoint serves it, with no promotion gate (it was"
        " served before). Setting an earlier one rolls back; removing the field follows uri/trainingJobRef again.",
    )


class Autoscaling(ApiModel):
    """A HorizontalPodAutoscaler (autoscaling/v2) on the endpoint's Deployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.minReplicas <= self.maxReplicas",
                    "spec.autoscaling.minReplicas must not exceed spec.autoscaling.maxReplicas",
                    ".minReplicas",
                )
            ]
        }
    )

    min_replicas: int = Field(1, ge=1, le=1000, description="Fewest replicas the autoscaler keeps.")
    max_replicas: int = Field(..., ge=1, le=1000, description="Most replicas the autoscaler creates.")
    metric: Literal["cpu", "inflight"] = Field(
        "cpu",
        description=(
            "cpu: average CPU utilization (needs metrics-server). inflight: requests in flight per replica, "
            "the server's kubeforge_requests_in_flight gauge as a Pods metric (needs a custom-metrics adapter, "
            "e.g. prometheus-adapter, serving that name)."
        ),
    )
    target: int | None = Field(
        None,
        ge=1,
        description="cpu: utilization percent (default 70). inflight: average requests in flight per replica (default 8).",
    )
    scale_down_stabilization_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description=(
            "How long the autoscaler waits, after load drops, before removing replicas (the HPA's "
            "behavior.scaleDown.stabilizationWindowSeconds). Unset: the cluster's default, 300 s."
        ),
    )


class Batching(ApiModel):
    """Dynamic batching in the server: requests wait up to maxDelayMs to fill a batch of maxBatchSize."""

    max_batch_size: int = Field(32, ge=1, le=4096, description="Largest batch the server runs at once.")
    max_delay_ms: int = Field(5, ge=0, le=60000, description="Longest a request waits for a batch to fill, in ms.")


class Threshold(ApiModel):
    """One promotion threshold on a candidate model's metrics, e.g. accuracy >= 0.9."""

    metric: str = Field(..., min_length=1, max_length=63, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
                        description="A key of the TrainingJob's status.result.metrics, e.g. accuracy, f1, loss.")
    op: Literal[">=", ">", "<=", "<"] = Field(..., description="How the candidate's value compares to value.")
    value: float = Field(..., description="The threshold.")


class Evaluation(ApiModel):
    """A held-out file the server scores a new model on before it turns Ready: accuracy, f1 and loss, as training reports."""

    uri: str = Field(
        ..., min_length=1, max_length=4096,
        description="JSONL or CSV of text and label: s3://bucket/key (fetched with the model's spec.storage),"
        " file:///path or an absolute path in the image or a mounted volume.",
        json_schema_extra={"x-kubernetes-validations": [cel(
            "self.startsWith('s3://') || self.startsWith('file:///') || self.startsWith('/')",
            "spec.rollout.promotion.evaluation.uri must be s3://bucket/key, file:///path or an absolute path")]},
    )
    format: Literal["auto", "jsonl", "csv"] = Field("auto", description="auto: from the file's suffix (.csv, else JSONL).")
    text_column: str = Field("text", min_length=1, max_length=253, description="The field (JSONL) or column (CSV) of the text.")
    label_column: str = Field(
        "label", min_length=1, max_length=253,
        description="The field or column of the label: one of the model's label names, or its index.")


class Promotion(ApiModel):
    """The gate a new model passes before it is served; a model failing it is never served."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("(has(self.thresholds) && size(self.thresholds) > 0) || self.notWorseThanServing",
                    "spec.rollout.promotion: set thresholds or notWorseThanServing"),
            ]
        }
    )

    thresholds: list[Threshold] = Field(
        default_factory=list, max_length=16,
        description="Every threshold must hold on the new model's training metrics (a missing metric fails).",
        json_schema_extra={"x-kubernetes-validations": [
            cel("self.all(t, self.exists_one(u, u.metric == t.metric && u.op == t.op))",
                "spec.rollout.promotion.thresholds: one entry per metric and op")]},
    )
    not_worse_than_serving: bool = Field(
        False,
        description="Each threshold's metric (accuracy when there are none) must not be worse than the serving"
        " revision's by more than tolerance; the direction is the threshold's op (higher is better for >=, >).",
    )
    tolerance: float = Field(0.0, ge=0, description="How much worse than serving still passes (absolute).")
    evaluation: Evaluation | None = Field(
        None,
        description="Judge the held-out metrics instead of the training metrics, so a model from a plain URI is gated"
        " too: every new model first runs as a canary (strategy Replace: one pod, no bake) whose server scores this"
        " file before it turns Ready and reports through its init container's termination message; a model that"
        " fails never turns Ready (RolloutBlocked, EvaluationFailed).",
    )


class Canary(ApiModel):
    """The canary step of strategy Canary."""

    replicas: int = Field(1, ge=1, le=100, description="Canary pods; traffic splits by replica ratio behind the one Service.")
    bake_seconds: int = Field(
        60, ge=0, le=86400,
        description="How long every canary pod must stay Ready with no restart (read from pod status through the"
        " API server) before the stable Deployment rolls to the new model.",
    )
    max_error_rate: float = Field(
        0.05, ge=0, le=1,
        description="The canary fails when more than this fraction of its requests answered 5xx during the bake"
        " (from what its pods report into the ConfigMap <name>-canary-report).",
    )
    max_p95_ms: int = Field(
        1000, ge=1, le=600000,
        description="The canary fails when its pods' p95 request latency during the bake exceeds this (ms).",
    )


class Rollout(ApiModel):
    """How a new model reaches the endpoint."""

    strategy: Literal["Replace", "Canary"] = Field(
        "Replace",
        description="Replace: the Deployment rolls to the new model (maxUnavailable 0). Canary: the new model first runs"
        " as canary.replicas pods of a second Deployment (<name>-canary) behind the same Service, taken from the"
        " stable replicas; after canary.bakeSeconds Ready without restarts, and with an error rate and p95 latency"
        " (reported by its own servers) within canary.maxErrorRate and maxP95Ms, the stable Deployment rolls to it"
        " (maxUnavailable 0) and the canary goes; otherwise the canary is removed and the model blocked"
        " (RolloutBlocked, CanaryFailed). The first model of an endpoint is served directly.",
    )
    canary: Canary = Field(default_factory=Canary)
    promotion: Promotion | None = Field(None, description="Serve a new model only when it passes this gate.")


class ModelEndpointSpec(ApiModel):
    """What to serve, on what, and how many: the user's half of a ModelEndpoint."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.runtime != 'tensorrt' || (has(self.resources) && has(self.resources.gpus) && self.resources.gpus > 0)",
                    "spec.runtime tensorrt needs spec.resources.gpus > 0",
                    ".runtime",
                ),
                # The HPA computes CPU utilization relative to the request: without one it never scales.
                cel(
                    "!has(self.autoscaling) || self.autoscaling.metric != 'cpu' || (has(self.resources) && has(self.resources.cpu))",
                    "spec.autoscaling.metric cpu needs spec.resources.cpu (utilization is measured against the request)",
                    ".autoscaling.metric",
                ),
            ]
        }
    )

    model: ModelSource
    storage: ObjectStorage | None = Field(
        None, description="The object store behind an s3:// model; unset with trainingJobRef: the TrainingJob's spec.storage."
    )
    runtime: Runtime = Field(
        "auto",
        description="auto: tensorrt when the pods get GPUs, onnxruntime otherwise (torch for format huggingface).",
    )
    image: str | None = Field(None, min_length=1, description="Server image; defaults to the operator's server image.")
    replicas: int = Field(
        1,
        ge=0,
        le=1000,
        description="Server pods (the scale subresource). Ignored while spec.autoscaling is set: the HPA owns the count.",
    )
    autoscaling: Autoscaling | None = None
    rollout: Rollout = Field(default_factory=Rollout)
    batching: Batching = Field(default_factory=Batching)
    protocols: list[Protocol] = Field(
        ["http"],
        min_length=1,
        max_length=2,
        description=(
            "Wire protocols the endpoint serves. http: /predict, KServe v1 and Open Inference Protocol v2 "
            "over HTTP on Service port 80 (always on: the probes and metrics use it). grpc: the Open "
            "Inference Protocol v2 gRPC service (inference.GRPCInferenceService) on Service port 8081."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "x-kubernetes-validations": [cel("'http' in self", "spec.protocols must include http (probes and metrics use it)")],
        },
    )
    resources: Resources = Field(default_factory=Resources)
    node_pool: NodePool | None = None
    env: list[dict[str, Any]] = Field(
        default_factory=list,
        json_schema_extra=preserve_unknown("Extra container env (core/v1 EnvVar); wins over the operator's."),
    )
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="Annotations added to the server pods.")
    start_deadline_seconds: int | None = Field(
        None, ge=1, le=86400,
        description="Degraded (reason StartDeadlineExceeded, naming the pods' reason) when server pods are held back"
        " this long: crash loop, image pull, missing Secret or ConfigMap, unschedulable, failing readiness probe."
        " Unset: the operator's default (KUBEFORGE_ENDPOINT_START_DEADLINE_SECONDS, 300).",
    )


class ModelEndpointPhase(StrEnum):
    """status.phase, the one word `kubectl get mep` shows."""

    PENDING = "Pending"  # the Deployment was applied; its controller has not reported yet
    WAITING_FOR_MODEL = "WaitingForModel"
    DEPLOYING = "Deploying"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class ModelEndpointConditionType(StrEnum):
    """status.conditions[].type. Ready is what Argo CD / Flux kstatus and `kubectl wait --for=condition=Ready` read."""

    MODEL_RESOLVED = "ModelResolved"
    READY = "Ready"
    PROGRESSING = "Progressing"
    # kstatus' standard "abnormal-true" pair (sigs.k8s.io/cli-utils/pkg/kstatus), which Flux and
    # `kubectl`-side waiters read on custom resources: without them kstatus calls a resource
    # Current as soon as observedGeneration matches, even while it waits for its model.
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    # A new model was not served: it failed spec.rollout.promotion, or spec.model.revision names no revision.
    ROLLOUT_BLOCKED = "RolloutBlocked"


KSTATUS_TYPES = frozenset({ModelEndpointConditionType.RECONCILING, ModelEndpointConditionType.STALLED})


class ModelEndpointReason(StrEnum):
    """status.conditions[].reason, also the reason of the Events the operator posts."""

    # ModelResolved reasons.
    RESOLVED = "ModelResolved"
    """The model URI is known; the endpoint serves it."""
    SERVING_PREVIOUS = "ServingPreviousModel"
    """The referenced TrainingJob is (re)running; the endpoint keeps serving the model it already had."""
    WAITING_FOR_TRAINING_JOB = "WaitingForTrainingJob"
    """The referenced TrainingJob has not succeeded yet."""
    TRAINING_JOB_NOT_FOUND = "TrainingJobNotFound"
    """The referenced TrainingJob does not exist (yet): GitOps tools may apply the endpoint first."""
    TRAINING_JOB_FAILED = "TrainingJobFailed"
    """The referenced TrainingJob failed: nothing to serve until it is re-run."""
    INVALID_MODEL_URI = "InvalidModelUri"
    """The URI (given, or reported by the TrainingJob) is one kubeforge cannot serve."""
    MODEL_CLAIM_NOT_FOUND = "ModelClaimNotFound"
    """The model's pvc:// claim does not exist in the endpoint's namespace: nothing could mount it."""
    EVALUATING = "EvaluatingModel"
    """The endpoint's first model runs alone as a canary until its held-out evaluation passes; nothing serves yet."""
    DOWNLOAD_FAILED = "DownloadFailed"
    """A server pod's model-fetch step failed: a missing object or manifest, refused credentials, a digest mismatch,
    an unreachable endpoint; the message names the object and the error."""
    # Ready / Progressing reasons.
    ALL_REPLICAS_READY = "AllReplicasReady"
    """Every desired replica runs the current pod template and is Ready."""
    WAITING_FOR_MODEL = "WaitingForModel"
    """No model to serve yet, so no Deployment either."""
    DEPLOYMENT_PENDING = "DeploymentPending"
    """The Deployment was applied but its controller has not reported on it yet."""
    ROLLING_OUT = "RollingOut"
    """The Deployment is replacing or adding pods."""
    REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
    """The rollout had completed, but fewer replicas than desired have been Ready for longer than the grace period."""
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    """The Deployment controller gave up waiting for the rollout (progressDeadlineSeconds)."""
    ROLLOUT_COMPLETE = "RolloutComplete"
    """Nothing left to roll out."""
    PROMOTION_GATE_FAILED = "PromotionGateFailed"
    """RolloutBlocked: the new model failed spec.rollout.promotion; the message names metric, value and threshold."""
    REVISION_NOT_FOUND = "RevisionNotFound"
    """RolloutBlocked: spec.model.revision names no revision in status.revisions."""
    CANARY_FAILED = "CanaryFailed"
    """RolloutBlocked: a canary pod of the new model restarted or could not start, or the canary's error rate or p95
    latency exceeded spec.rollout.canary's limits; the canary was removed."""
    EVALUATION_FAILED = "EvaluationFailed"
    """RolloutBlocked: the new model failed spec.rollout.promotion on the held-out evaluation its server ran (or the
    evaluation could not run); the message names metric, value and threshold. The model never turned Ready."""
    ROLLOUT_ALLOWED = "RolloutAllowed"
    """RolloutBlocked is False: the model the spec asks for is served (it passed the gate, or was pinned)."""
    START_DEADLINE_EXCEEDED = "StartDeadlineExceeded"
    """Server pods have been held back (crash loop, image pull, missing Secret, unschedulable, ...) longer than the
    start deadline (KUBEFORGE_ENDPOINT_START_DEADLINE_SECONDS); the message names the pods' reason."""


class ModelEndpointStatus(ApiModel):
    """What the operator observed; written through the status subresource only."""

    phase: ModelEndpointPhase | None = None
    conditions: list[Condition] = conditions_field(
        "metav1.Condition: ModelResolved, Ready, Progressing; Reconciling and Stalled for kstatus."
    )
    observed_generation: int | None = None
    url: str | None = Field(None, description="In-cluster HTTP URL of the endpoint's Service.")
    replicas: int | None = Field(None, description="Server pods that exist (the scale subresource's status).")
    ready_replicas: int | None = None
    desired_replicas: int | None = None
    ready: str | None = Field(None, description="ready/desired replicas, for kubectl get.")
    selector: str | None = Field(None, description="Label selector of the server pods, for the scale subresource.")
    runtime: str | None = Field(None, description="The runtime resolved from spec.runtime.")
    model_uri: str | None = Field(None, description="The model URI being served (resolved from trainingJobRef).")
    reason: str | None = Field(None, description="Why the endpoint is not ready, in one word (the REASON column); unset when ready.")
    model: dict[str, Any] | None = Field(None, json_schema_extra=preserve_unknown(
        "The revision serving now (see revisions)."))
    canary: dict[str, Any] | None = Field(None, json_schema_extra=preserve_unknown(
        "The canary of strategy Canary: revision, uri, startedAt, readySince, ready (pods), or failed with its reason."))
    model_short: str | None = Field(None, description="The serving revision in a few characters, for kubectl get.")
    revisions: list[dict[str, Any]] | None = Field(None, json_schema_extra=preserve_unknown(
        "Every model served, newest first (at most 10): revision, uri, digest, trainingJob, attempt,"
        " metrics, servedAt, stoppedAt, stoppedReason."))
    model_digest: str | None = Field(
        None, description="sha256 of the files manifest of the model the Ready pods downloaded (s3:// models)."
    )


PRINTER_COLUMNS = (
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1, "description": "why it is not ready"},
    {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
    {"name": "Model", "type": "string", "jsonPath": ".status.modelShort", "description": "the serving revision"},
    {"name": "Model-URI", "type": "string", "jsonPath": ".status.model.uri", "priority": 1},
    {"name": "Digest", "type": "string", "jsonPath": ".status.model.digest", "priority": 1},
    {"name": "Runtime", "type": "string", "jsonPath": ".status.runtime"},
    {"name": "URL", "type": "string", "jsonPath": ".status.url"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)

DEFINITION = ResourceDefinition(
    kind=KIND,
    plural=PLURAL,
    singular="modelendpoint",
    spec_model=ModelEndpointSpec,
    status_model=ModelEndpointStatus,
    short_names=("mep",),
    printer_columns=PRINTER_COLUMNS,
    # The Deployment, Service, HPA and PDB all take the endpoint's name; the Service needs a DNS-1035 label.
    root_validations=name_rules(DNS_LABEL_MAX, "the Service <name>"),
    scale={
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    },
)
