"""Resolves spec.model to the URI the server pods load: a URI as given, or a TrainingJob's exported model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kubeforge import conditions, storage
from kubeforge.api.modelendpoint import ModelEndpointReason as Reason
from kubeforge.api.modelendpoint import ModelSource
from kubeforge.api.trainingjob import TrainingJobConditionType, TrainingJobPhase

FAILURES = frozenset({Reason.TRAINING_JOB_FAILED, Reason.INVALID_MODEL_URI, Reason.DOWNLOAD_FAILED})


@dataclass(frozen=True)
class ModelResolution:
    """What to deploy (uri, None when nothing yet) and why, for the ModelResolved condition."""

    uri: str | None
    reason: str
    message: str
    digest: str | None = None  # the files-manifest digest the TrainingJob reported (s3:// exports)

    @property
    def resolved(self) -> bool:
        return self.reason in (Reason.RESOLVED, Reason.SERVING_PREVIOUS)

    @property
    def failed(self) -> bool:
        return self.reason in FAILURES


def resolve_model(source: ModelSource, training_job: dict[str, Any] | None, previous_uri: str | None) -> ModelResolution:
    """`training_job` is the referenced TrainingJob as read from the API server (None when absent)."""
    if source.uri:
        return _checked(source.uri, f"serving {source.uri}")
    name = source.training_job_ref.name if source.training_job_ref else ""
    if training_job is None:
        return _waiting(Reason.TRAINING_JOB_NOT_FOUND, f"TrainingJob {name} does not exist yet", previous_uri)
    status = training_job.get("status") or {}
    phase = status.get("phase") or TrainingJobPhase.PENDING
    model_uri = (status.get("result") or {}).get("modelUri")
    if phase == TrainingJobPhase.SUCCEEDED and model_uri:
        resolution = _checked(model_uri, f"serving the model TrainingJob {name} exported: {model_uri}")
        return replace(resolution, digest=(status.get("result") or {}).get("modelDigest"))
    if phase == TrainingJobPhase.FAILED:
        message = f"TrainingJob {name} failed: {_failure_message(status)}"
        if previous_uri:  # the Deployment keeps the model it had; status keeps saying which
            message += f"; still serving the previous model {previous_uri}"
        return ModelResolution(previous_uri, Reason.TRAINING_JOB_FAILED, message)
    if phase == TrainingJobPhase.SUCCEEDED:
        return _waiting(Reason.WAITING_FOR_TRAINING_JOB, f"TrainingJob {name} succeeded but reports no status.result.modelUri yet", previous_uri)
    return _waiting(Reason.WAITING_FOR_TRAINING_JOB, f"waiting for TrainingJob {name} to succeed (phase {phase})", previous_uri)


def model_claim(resolution: ModelResolution) -> str | None:
    """The PersistentVolumeClaim the server pods would mount for the resolved model, if any."""
    if not resolution.uri or resolution.failed:
        return None
    return storage.parse_uri(resolution.uri).claim


def require_claim(resolution: ModelResolution, claim_exists: bool) -> ModelResolution:
    """ModelResolved claims only a model the pods can mount: a pvc:// claim that does not exist is not resolved
    (the endpoint waits for it, as GitOps may apply the claim after the endpoint)."""
    claim = model_claim(resolution)
    if claim is None or claim_exists:
        return resolution
    message = f'persistentvolumeclaim "{claim}" not found: {resolution.uri} cannot be mounted'
    return ModelResolution(None, Reason.MODEL_CLAIM_NOT_FOUND, message)


def with_download_failure(resolution: ModelResolution, failure: str | None) -> ModelResolution:
    """A server pod could not fetch the model (see modelendpoint.download): ModelResolved turns False, reason DownloadFailed."""
    if not failure or resolution.uri is None:
        return resolution
    return ModelResolution(resolution.uri, Reason.DOWNLOAD_FAILED, f"cannot download {resolution.uri}: {failure}", resolution.digest)


def _checked(uri: str, message: str) -> ModelResolution:
    try:
        storage.parse_uri(uri)
    except storage.UnsupportedURI as e:
        return ModelResolution(None, Reason.INVALID_MODEL_URI, str(e))
    return ModelResolution(uri, Reason.RESOLVED, message)


def _waiting(reason: str, message: str, previous_uri: str | None) -> ModelResolution:
    # A re-run must not take the endpoint down: keep serving what it served until the new model lands.
    if previous_uri:
        return ModelResolution(previous_uri, Reason.SERVING_PREVIOUS, f"{message}; serving the previous model {previous_uri}")
    return ModelResolution(None, reason, message)


def _failure_message(status: dict[str, Any]) -> str:
    """The TrainingJob's own explanation: its Failed condition's message (the status message as a fallback)."""
    failed = conditions.find(status.get("conditions"), TrainingJobConditionType.FAILED) or {}
    return failed.get("message") or status.get("message") or "see kubectl describe trainingjob"
