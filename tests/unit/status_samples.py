"""ModelEndpoint statuses as the ModelEndpoint controller builds them: samples for the GitOps health tests."""

from __future__ import annotations

from typing import Any

from kubeforge.api.modelendpoint import ModelEndpointReason as Reason
from kubeforge.modelendpoint import status as endpoint_status
from kubeforge.modelendpoint.modelsource import ModelResolution
from kubeforge.modelendpoint.status import Rollout

NOW = "2026-01-01T00:10:00Z"
URI = "pvc://models/minilm"


def endpoint(status: dict[str, Any] | None = None, generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubeforge.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "minilm", "namespace": "ml", "generation": generation},
        "spec": {"model": {"uri": URI}, "replicas": 2, **spec},
        "status": status,
    }


def endpoint_status_for(resolution: ModelResolution, rollout: Rollout, previous: dict | None = None) -> dict[str, Any]:
    """The status the ModelEndpoint controller writes for this resolution and rollout."""
    built, _ = endpoint_status.build_status(
        name="minilm", namespace="ml", generation=1, resolution=resolution, runtime="onnxruntime",
        rollout=rollout, previous=previous or {}, now=NOW, degraded_after=60.0,
    )
    return built


RESOLVED = ModelResolution(URI, Reason.RESOLVED, f"serving {URI}")
WAITING = ModelResolution(None, Reason.WAITING_FOR_TRAINING_JOB, "waiting for TrainingJob minilm to succeed (phase Running)")
TRAINING_FAILED = ModelResolution(None, Reason.TRAINING_JOB_FAILED, "TrainingJob minilm failed: OOMKilled")
READY_FALSE_SINCE_LONG_AGO = {
    "conditions": [{"type": "Ready", "status": "False", "reason": "RollingOut", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
}


def blocked_status() -> dict[str, Any]:
    """Serving revision 1, all replicas ready, while a new model failed the promotion gate."""
    from kubeforge.modelendpoint import revisions

    r1 = {"revision": 1, "uri": URI, "metrics": {"accuracy": 0.92}}
    message = "new model pvc://models/v2 not promoted: accuracy 0.8 fails the threshold accuracy >= 0.9"
    kept = ModelResolution(URI, Reason.SERVING_PREVIOUS, f"{message}; serving revision 1 ({URI})")
    decision = revisions.RolloutDecision(kept, r1, (Reason.PROMOTION_GATE_FAILED, message))
    return revisions.with_revisions(endpoint_status_for(kept, Rollout("Complete", 2, 2, 2, 2, True)), decision, {}, 1, NOW)
