"""The TrainingJob reconciler: reads the CR and its children, decides with status.decide, applies the Plan.

Level-triggered: events on the CR, its Jobs and its pods only enqueue the key
(setup, kubeforge.watches); each pass rebuilds everything from the API server, so an
operator killed at any moment converges on restart with no duplicate children.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import kopf

from kubeforge import API_VERSION, kube, metrics, podspec, watches
from kubeforge.api.trainingjob import KIND, PLURAL, TERMINAL_PHASES, TrainingJob
from kubeforge.settings import SETTINGS
from kubeforge.trainingjob import builders, names, observe
from kubeforge.trainingjob.status import Plan, decide
from kubeforge.workqueue import WorkQueue

log = logging.getLogger(__name__)


def reconcile(namespace: str, name: str) -> float | None:
    obj = kube.get(API_VERSION, KIND, namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None  # garbage collection removes the children through their ownerReferences
    job = TrainingJob.from_manifest(obj)
    jobs, pods = _owned_children(obj)
    attempt = max(job.status.attempt or 1, observe.newest_attempt(jobs))
    plan = decide(job, observe.observe(name, attempt, jobs, pods), datetime.now(timezone.utc))
    _write_status(obj, job, plan)
    _apply_children(obj, job, plan)
    for type_, reason, message in plan.events:
        kube.emit_event(obj, type_, reason, message)
    if plan.delete_self:
        log.info("deleting TrainingJob %s/%s: ttlSecondsAfterFinished passed", namespace, name)
        kube.delete(API_VERSION, KIND, namespace, name)
        return None
    return plan.requeue_after


def _owned_children(obj: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """This incarnation's Jobs (by owner uid: a deleted and re-created job of the same name adopts nothing) and their pods."""
    meta = obj["metadata"]
    selector = names.selector(meta["name"])
    jobs = [j for j in kube.list_("batch/v1", "Job", meta["namespace"], selector) if _owned_by(j, meta["uid"])]
    job_uids = {j["metadata"]["uid"] for j in jobs}
    pods = [p for p in kube.list_("v1", "Pod", meta["namespace"], selector) if any(_owned_by(p, uid) for uid in job_uids)]
    return jobs, pods


def _owned_by(child: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or [])


def _write_status(obj: dict[str, Any], job: TrainingJob, plan: Plan) -> None:
    """Patch status only when it changed; a merge patch keeps absent keys, so null out the dropped ones."""
    previous = job.status.to_wire()
    if plan.status == previous:
        return
    patch = {**{k: None for k in previous if k not in plan.status}, **plan.status}
    meta = obj["metadata"]
    kube.patch_status(API_VERSION, KIND, meta["namespace"], meta["name"], patch)
    if previous.get("phase") != plan.status.get("phase"):
        metrics.TRANSITIONS.labels(kind=KIND, phase=plan.status.get("phase")).inc()
        log.info("TrainingJob %s/%s: %s -> %s: %s", meta["namespace"], meta["name"], previous.get("phase"),
                 plan.status.get("phase"), plan.status.get("message"))


def _apply_children(obj: dict[str, Any], job: TrainingJob, plan: Plan) -> None:
    namespace = job.namespace
    if plan.status.get("phase") not in TERMINAL_PHASES:
        owner = podspec.owner_reference(obj)
        for child in builders.build_shared_children(job, owner, SETTINGS):
            kube.apply(child)
        if plan.create_job is not None:
            kube.apply(builders.build_worker_job(job, owner, plan.create_job, SETTINGS, plan.create_suspended))
    if plan.job_suspend is not None:
        current = names.worker_job(job.name, plan.status["attempt"])
        kube.patch_merge("batch/v1", "Job", namespace, current, {"spec": {"suspend": plan.job_suspend}})
    for stale in plan.delete_jobs:
        kube.delete("batch/v1", "Job", namespace, stale, propagation="Background")


def setup(registry: kopf.OperatorRegistry, queue: WorkQueue) -> None:
    """Wire the reconciler: events on a TrainingJob, its Jobs and its pods enqueue the TrainingJob."""
    queue.register(KIND, reconcile)
    watches.enqueue_on_event(registry, queue, KIND, PLURAL)
    watches.enqueue_owner_on_child_event(registry, queue, "batch", "v1", "jobs", names.JOB_LABEL, KIND)
    # Pods carry rank 0's progress annotation and the exit codes.
    watches.enqueue_owner_on_child_event(registry, queue, "", "v1", "pods", names.JOB_LABEL, KIND)
