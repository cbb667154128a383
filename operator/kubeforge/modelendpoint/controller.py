"""The ModelEndpoint reconciler: read the endpoint and its TrainingJob, apply the children, write status.

Level-triggered (see kubeforge.workqueue): every pass rebuilds the whole picture
from the API server, so restarts and missed events converge on the next pass.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubeforge import API_VERSION, conditions, kube, metrics, watches
from kubeforge.api.modelendpoint import KIND, KSTATUS_TYPES, PLURAL, ModelEndpointSpec
from kubeforge.modelendpoint import builders, handover, refindex, status as endpoint_status
from kubeforge.modelendpoint.modelsource import resolve_model
from kubeforge.modelendpoint.runtime import resolve_runtime
from kubeforge.settings import SETTINGS
from kubeforge.workqueue import WorkQueue

log = logging.getLogger(__name__)

CHILD_KINDS = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
)


def reconcile(namespace: str, name: str) -> float | None:
    endpoint = kube.get(API_VERSION, KIND, namespace, name)
    if endpoint is None or endpoint["metadata"].get("deletionTimestamp"):
        return None  # garbage collection removes the children through their ownerReferences
    spec = ModelEndpointSpec.model_validate(endpoint["spec"])
    previous = endpoint.get("status") or {}
    ref = spec.model.training_job_ref
    training_job = kube.get(API_VERSION, "TrainingJob", namespace, ref.name) if ref else None
    resolution = resolve_model(spec.model, training_job, previous.get("modelUri"))
    runtime = resolve_runtime(spec)
    if resolution.uri and not resolution.failed:
        # Only a spec change, or a first deployment after waiting for the model, can make an
        # HPA or PDB unwanted or call for a replicas handover.
        spec_changed = previous.get("observedGeneration") != endpoint["metadata"].get("generation", 1)
        deployment = apply_children(endpoint, spec, resolution.uri, runtime, spec_changed or "url" not in previous)
    else:
        # Nothing (new) to deploy; a Deployment serving an earlier model stays, and is counted.
        deployment = kube.get("apps/v1", "Deployment", namespace, name)
    desired = endpoint_status.desired_replicas(spec, deployment)
    new_status, recheck = endpoint_status.build_status(
        name=name,
        namespace=namespace,
        generation=endpoint["metadata"].get("generation", 1),
        resolution=resolution,
        runtime=runtime,
        rollout=endpoint_status.observe_rollout(deployment, desired),
        previous=previous,
        now=conditions.now_rfc3339(),
        degraded_after=SETTINGS.endpoint_degraded_after_seconds,
    )
    write_status(endpoint, previous, new_status)
    return min(recheck, SETTINGS.resync_seconds) if recheck is not None else SETTINGS.resync_seconds


def apply_children(
    endpoint: dict[str, Any], spec: ModelEndpointSpec, model_uri: str, runtime: str, revisit: bool = True
) -> dict[str, Any]:
    """Apply every child, delete the optional ones the spec no longer wants; returns the live Deployment.

    Deletes and the replicas handover cost API calls on every pass, so they run only
    when `revisit` (the spec changed since the last status write, or nothing was deployed
    yet; status is written after them, so a pass that died half-way repeats them).
    """
    meta = endpoint["metadata"]
    image = spec.image or SETTINGS.server_image
    initial = None
    if spec.autoscaling and revisit:
        initial = handover.prepare(meta["namespace"], meta["name"], spec.autoscaling.min_replicas)
    ep = builders.Endpoint(endpoint, spec, model_uri, runtime, image, SETTINGS.gpu_resource, initial)
    children = builders.build_children(ep)
    applied = {child["kind"]: kube.apply(child) for child in children.apply}
    if initial is not None:
        handover.hand_over(applied["Deployment"])
    for api_version, kind, child_name in children.absent if revisit else ():
        if kube.delete(api_version, kind, meta["namespace"], child_name):
            log.info("deleted %s %s/%s: no longer wanted by the spec", kind, meta["namespace"], child_name)
    return applied["Deployment"]


def write_status(endpoint: dict[str, Any], previous: dict[str, Any], new: dict[str, Any]) -> None:
    """Patch only what changed; announce every condition transition as an Event."""
    if all(previous.get(k) == v for k, v in new.items()) and set(previous) <= set(new):
        return
    meta = endpoint["metadata"]
    # A merge patch keeps keys it does not mention: null out the ones that no longer apply.
    patch = {**{k: None for k in previous if k not in new}, **new}
    kube.patch_status(API_VERSION, KIND, meta["namespace"], meta["name"], patch)
    if previous.get("phase") != new["phase"]:
        metrics.TRANSITIONS.labels(kind=KIND, phase=new["phase"]).inc()
    for changed in conditions.transitions(previous.get("conditions"), new["conditions"]):
        if changed["type"] in KSTATUS_TYPES:
            continue  # they mirror Ready; one event per transition is enough
        kind = "Warning" if endpoint_status.is_warning(changed) else "Normal"
        message = f"{changed['type']} is {changed['status']}: {changed['message']}"
        kube.emit_event(endpoint, kind, changed["reason"], message)


def setup(registry: kopf.OperatorRegistry, queue: WorkQueue) -> None:
    """Wire the reconciler: events on an endpoint, its children and the TrainingJob it serves enqueue it."""
    queue.register(KIND, reconcile)
    watches.enqueue_on_event(registry, queue, KIND, PLURAL)
    for group, version, plural in CHILD_KINDS:
        watches.enqueue_owner_on_child_event(registry, queue, group, version, plural, builders.LABEL, KIND)
    refindex.setup(registry, queue)
