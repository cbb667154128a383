"""The TrainingJob reconciler shell: read the CR and its children, decide with status.decide, apply the Plan.

Level-triggered: events on the CR, its Jobs and its pods only enqueue the key
(setup, kubeforge.watches); each pass rebuilds everything from the API server, so an
operator killed at any moment converges on restart with no duplicate children.
The client is injected (kubeforge.kube in production), so the shell is unit-tested too.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timezone
from typing import Any

import kopf

from kubeforge import API_VERSION, kube, podspec, watches
from kubeforge.api.trainingjob import KIND, PLURAL, TERMINAL_PHASES, TrainingJob
from kubeforge.kube import KubeClient
from kubeforge.settings import SETTINGS, Settings
from kubeforge.statuswrite import patch_status_if_changed
from kubeforge.trainingjob import admission, builders, names, observe, pod
from kubeforge.trainingjob.status import Plan, decide
from kubeforge.trainingjob.waiting import Policy, queue_of
from kubeforge.workqueue import WorkQueue

log = logging.getLogger(__name__)


def reconcile(namespace: str, name: str, client: KubeClient = kube, config: Settings = SETTINGS) -> float | None:
    obj = client.get(API_VERSION, KIND, namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None  # garbage collection removes the children through their ownerReferences
    job = TrainingJob.from_manifest(obj)
    jobs, pods = _owned_children(client, obj)
    # Why workers wait (the pool's nodes, the claims they mount) is read only while they do.
    waiting = job.status.phase not in (*TERMINAL_PHASES, "Running")
    nodes, missing = (_pool_nodes(client, job, config), _missing_claims(client, job)) if waiting else (None, ())
    observed = observe.observe(name, job.status.attempt, jobs, pods, _workloads(client, job, jobs), nodes, missing)
    plan = decide(job, observed, datetime.now(timezone.utc), Policy(config.schedule_deadline_seconds, config.gpu_resource))
    # Children first, status after: a pass that dies in between leaves a Job that the next
    # pass adopts (observe), never a status that claims an attempt with no Job.
    _apply_children(client, obj, job, plan, config)
    patch_status_if_changed(client, obj, job.status.to_wire(), plan.status)
    for type_, reason, message in plan.events:
        client.emit_event(obj, type_, reason, message)
    if plan.delete_self:
        log.info("deleting TrainingJob %s/%s: ttlSecondsAfterFinished passed", namespace, name)
        client.delete(API_VERSION, KIND, namespace, name)
        return None
    return plan.requeue_after


def _owned_children(client: KubeClient, obj: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """This incarnation's Jobs (by owner uid: a deleted and re-created job of the same name adopts nothing) and their pods."""
    meta = obj["metadata"]
    selector = names.selector(meta["name"])
    jobs = [j for j in client.list_("batch/v1", "Job", meta["namespace"], selector) if _owned_by(j, meta["uid"])]
    job_uids = {j["metadata"]["uid"] for j in jobs}
    pods = [p for p in client.list_("v1", "Pod", meta["namespace"], selector) if any(_owned_by(p, uid) for uid in job_uids)]
    return jobs, pods


def _workloads(client: KubeClient, job: TrainingJob, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kueue's Workloads for these Jobs; none without a queue, before Kueue made one, or without Kueue installed."""
    uids = sorted(j["metadata"]["uid"] for j in jobs)
    if not queue_of(job) or not uids:
        return []
    selector = f"{admission.JOB_UID_LABEL} in ({','.join(uids)})"
    return kube.unless_refused(lambda: client.list_(admission.WORKLOAD_API, "Workload", job.namespace, selector), [])


def _pool_nodes(client: KubeClient, job: TrainingJob, config: Settings) -> list[dict[str, Any]] | None:
    """The nodes the workers may land on; None when not readable: Nodes are cluster-scoped, and the Roles of a
    namespaced install (watchNamespaces) cannot grant them, so that mode does not ask."""
    if config.watch_namespaces:
        return None
    pool = job.spec.node_pool.node_selector if job.spec.node_pool else {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(pool.items()))
    return kube.unless_refused(lambda: client.list_("v1", "Node", None, selector), None)


def _missing_claims(client: KubeClient, job: TrainingJob) -> tuple[str, ...]:
    """The claims the workers mount that do not exist: the scheduler says so per pod, but only once it tried."""
    def missing(claim: str) -> bool:
        return kube.unless_refused(lambda: client.get("v1", "PersistentVolumeClaim", job.namespace, claim) is None, False)

    return tuple(claim for claim in pod.claims(job) if missing(claim))


def _owned_by(child: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or [])


def _apply_children(client: KubeClient, obj: dict[str, Any], job: TrainingJob, plan: Plan, config: Settings) -> None:
    namespace = job.namespace
    if plan.status.get("phase") not in TERMINAL_PHASES:
        owner = podspec.owner_reference(obj)
        for child in builders.build_shared_children(job, owner, config):
            client.apply(child)
        if plan.create_job is not None:
            client.apply(builders.build_worker_job(job, owner, plan.create_job, config, plan.create_suspended))
    if plan.job_suspend is not None:
        current = names.worker_job(job.name, plan.status["attempt"])
        client.patch_merge("batch/v1", "Job", namespace, current, {"spec": {"suspend": plan.job_suspend}})
    for stale in plan.delete_jobs:
        client.delete("batch/v1", "Job", namespace, stale, propagation="Background")


def setup(registry: kopf.OperatorRegistry, queue: WorkQueue, client: KubeClient = kube, config: Settings = SETTINGS) -> None:
    """Wire the reconciler: events on a TrainingJob, its Jobs and its pods enqueue the TrainingJob."""
    queue.register(KIND, functools.partial(reconcile, client=client, config=config))
    watches.enqueue_on_event(registry, queue, KIND, PLURAL)
    watches.enqueue_owner_on_child_event(registry, queue, "batch", "v1", "jobs", names.JOB_LABEL, KIND)
    # Pods carry rank 0's progress annotation and the exit codes.
    watches.enqueue_owner_on_child_event(registry, queue, "", "v1", "pods", names.JOB_LABEL, KIND)
