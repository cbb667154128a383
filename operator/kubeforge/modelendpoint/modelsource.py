"""Resolves spec.model to the URI the server pods load: a URI as given, or a TrainingJob's exported model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeforge import storage
from kubeforge.api.modelendpoint import ModelSource

# ModelResolved condition reasons.
RESOLVED = "ModelResolved"
"""The model URI is known; the endpoint serves it."""
SERVING_PREVIOUS = "ServingPreviousModel"
"""The referenced TrainingJob is (re)running; the endpoint keeps serving the model it already had."""
WAITING = "WaitingForTrainingJob"
"""The referenced TrainingJob has not succeeded yet."""
NOT_FOUND = "TrainingJobNotFound"
"""The referenced TrainingJob does not exist (yet): GitOps tools may apply the endpoint first."""
TRAINING_FAILED = "TrainingJobFailed"
"""The referenced TrainingJob failed: nothing to serve until it is re-run."""
INVALID_URI = "InvalidModelUri"
"""The URI (given, or reported by the TrainingJob) is one kubeforge cannot serve."""

FAILURES = frozenset({TRAINING_FAILED, INVALID_URI})


@dataclass(frozen=True)
class ModelResolution:
    """What to deploy (uri, None when nothing yet) and why, for the ModelResolved condition."""

    uri: str | None
    reason: str
    message: str

    @property
    def resolved(self) -> bool:
        return self.reason in (RESOLVED, SERVING_PREVIOUS)

    @property
    def failed(self) -> bool:
        return self.reason in FAILURES


def resolve_model(source: ModelSource, training_job: dict[str, Any] | None, previous_uri: str | None) -> ModelResolution:
    """`training_job` is the referenced TrainingJob as read from the API server (None when absent)."""
    if source.uri:
        return _checked(source.uri, f"serving {source.uri}")
    name = source.training_job_ref.name if source.training_job_ref else ""
    if training_job is None:
        return _waiting(NOT_FOUND, f"TrainingJob {name} does not exist yet", previous_uri)
    status = training_job.get("status") or {}
    phase = status.get("phase") or "Pending"
    model_uri = (status.get("result") or {}).get("modelUri")
    if phase == "Succeeded" and model_uri:
        return _checked(model_uri, f"serving the model TrainingJob {name} exported: {model_uri}")
    if phase == "Failed":
        message = f"TrainingJob {name} failed: {_failure_message(status)}"
        if previous_uri:  # the Deployment keeps the model it had; status keeps saying which
            message += f"; still serving the previous model {previous_uri}"
        return ModelResolution(previous_uri, TRAINING_FAILED, message)
    if phase == "Succeeded":
        return _waiting(WAITING, f"TrainingJob {name} succeeded but reports no status.result.modelUri yet", previous_uri)
    return _waiting(WAITING, f"waiting for TrainingJob {name} to succeed (phase {phase})", previous_uri)


def _checked(uri: str, message: str) -> ModelResolution:
    try:
        storage.parse_uri(uri)
    except storage.UnsupportedURI as e:
        return ModelResolution(None, INVALID_URI, str(e))
    return ModelResolution(uri, RESOLVED, message)


def _waiting(reason: str, message: str, previous_uri: str | None) -> ModelResolution:
    # A re-run must not take the endpoint down: keep serving what it served until the new model lands.
    if previous_uri:
        return ModelResolution(previous_uri, SERVING_PREVIOUS, f"{message}; serving the previous model {previous_uri}")
    return ModelResolution(None, reason, message)


def _failure_message(status: dict[str, Any]) -> str:
    """The TrainingJob's own explanation: its Failed (or Ready) condition's message."""
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Failed", "Succeeded", "Ready") and cond.get("message"):
            return cond["message"]
    return "see kubectl describe trainingjob"
