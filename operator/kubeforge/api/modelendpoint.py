"""The ModelEndpoint API (kubeforge.io/v1alpha1, short name mep): spec, status and the CRD definition."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from kubeforge.api.base import ApiModel, cel, preserve_unknown
from kubeforge.api.common import NodePool, Resources
from kubeforge.crds import ResourceDefinition

KIND = "ModelEndpoint"
PLURAL = "modelendpoints"

Runtime = Literal["auto", "tensorrt", "onnxruntime", "torch"]

# s3:// and friends are reserved: refused by the API server until kubeforge can fetch from them.
_URI_RULE = (
    "self.startsWith('pvc://') || self.startsWith('file:///') || self.startsWith('/')"
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
        description="pvc://claim/path or an absolute path in the image; s3:// is reserved and refused until supported.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    _URI_RULE,
                    "spec.model.uri must be pvc://claim/path, file:///path or an absolute path "
                    "(s3:// and other object stores are not supported yet)",
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


class Batching(ApiModel):
    """Dynamic batching in the server: requests wait up to maxDelayMs to fill a batch of maxBatchSize."""

    max_batch_size: int = Field(32, ge=1, le=4096, description="Largest batch the server runs at once.")
    max_delay_ms: int = Field(5, ge=0, le=60000, description="Longest a request waits for a batch to fill, in ms.")


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
    batching: Batching = Field(default_factory=Batching)
    resources: Resources = Field(default_factory=Resources)
    node_pool: NodePool | None = None
    env: list[dict[str, Any]] = Field(
        default_factory=list,
        json_schema_extra=preserve_unknown("Extra container env (core/v1 EnvVar); wins over the operator's."),
    )
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="Annotations added to the server pods.")


class ModelEndpointStatus(ApiModel):
    """What the operator observed; written through the status subresource only."""

    phase: Literal["Pending", "WaitingForModel", "Deploying", "Ready", "Degraded", "Failed"] | None = None
    conditions: list[dict[str, Any]] = Field(
        default_factory=list,
        json_schema_extra={
            "description": "metav1.Condition: ModelResolved, Ready, Progressing; Reconciling and Stalled for kstatus.",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {
                "type": "object",
                "required": ["type", "status"],
                "properties": {
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                    "observedGeneration": {"type": "integer", "format": "int64"},
                },
            },
        },
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


PRINTER_COLUMNS = (
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
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
    scale={
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    },
)
