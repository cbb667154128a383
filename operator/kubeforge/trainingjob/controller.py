"""The TrainingJob reconciler shell: read the CR and its children, decide with status.decide, apply the Plan.

Level-triggered: events on the CR, its Jobs, its pods and its progress ConfigMap only enqueue
the key (setup, kubeforge.watches); each pass rebuilds everything from the API server, so an
operator killed at any moment converges on restart with no duplicate children.
The client is injected (kubeforge.kube in production), so the shell is unit-tested too.
Children are applied through kubeforge.ownership (never adopting a name someone else holds);
a child the API server refuses for good shows as ChildrenApplied=False and is retried slowly
(kubeforge.apierrors.RefusalGate).
"""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import kopf
from pydantic import ValidationError

from kubeforge import API_VERSION, applystatus, conditions, kube, podspec, watches
from kubeforge.api.trainingjob import KIND, PLURAL, TERMINAL_PHASES, TrainingJob
from kubeforge.api.trainingjob import TrainingJobConditionType as Type
from kubeforge.api.trainingjob import TrainingJobReason as Reason
from kubeforge.apierrors import Refusal, RefusalGate, Refused
from kubeforge.childcache import ChildIndex
from kubeforge.contract import PROGRESS_KEY
from kubeforge.crcache import CR_CACHE, ResourceCache
from kubeforge.kube import KubeClient
from kubeforge.ownership import OwnedApplier
from kubeforge.projection import project
from kubeforge.settings import SETTINGS, Settings
from kubeforge.statuswrite import patch_status_if_changed
from kubeforge.timestamps import rfc3339
from kubeforge.statuswrite import OWN_WRITES
from kubeforge.trainingjob import admission, builders, names, observe, pod
from kubeforge.trainingjob.poolnodes import PoolNodes
from kubeforge.trainingjob.progresspace import ProgressPace
from kubeforge.trainingjob.status import Plan, decide, progress_hold, starting_hold
from kubeforge.trainingjob.waiting import Policy, queue_of
from kubeforge.workqueue import WorkQueue

log = logging.getLogger(__name__)
# A thousand jobs each reporting every 10 s would be a hundred reconciles a second: a
# ConfigMap event wakes its job after this delay, and the events of that window share one pass.
PROGRESS_COALESCE_S = 2.0
# A Job's pods are created, bound, started and turn Ready within moments of each other, each an
# event: the events of this window share one pass (and one status write) instead of one each.
CHILD_COALESCE_S = 0.2
# Jobs whose children the API server refused (quota, admission, a taken name): retried slowly.
GATE = RefusalGate()
# The children kinds our watches see: the event of our own apply of one wakes nothing (OWN_WRITES).
WATCHED_CHILDREN = frozenset({"Job", "ConfigMap"})


@dataclass(frozen=True)
class Children:
    """Where a pass reads the Jobs and pods: the watches' indexes (kubeforge.childcache) once complete, else a list per pass."""

    jobs: ChildIndex | None = None
    pods: ChildIndex | None = None
    configmaps: ChildIndex | None = None
    pool: PoolNodes | None = None  # the pool's nodes, shared by the jobs waiting on it; None: a list per pass

    def read(self, client: KubeClient, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
        index = self.jobs if kind == "Job" else self.pods
        if index is not None and index.complete:
            return index.get(namespace, name)
        api_version = "batch/v1" if kind == "Job" else "v1"
        return client.list_(api_version, kind, namespace, names.selector(name))

    def progress_map(self, client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
        wanted = names.progress_config_map(name)
        if self.configmaps is not None and self.configmaps.complete:
            return next((c for c in self.configmaps.get(namespace, name) if c["metadata"]["name"] == wanted), None)
        return client.get("v1", "ConfigMap", namespace, wanted)

    def pool_nodes(self, client: KubeClient, selector: str) -> list[dict[str, Any]] | None:
        if self.pool is not None:
            return self.pool.read(client, selector)
        return kube.unless_refused(lambda: client.list_("v1", "Node", None, selector), None)


def reconcile(namespace: str, name: str, client: KubeClient = kube, config: Settings = SETTINGS,
              applier: OwnedApplier | None = None, gate: RefusalGate = GATE, children: Children = Children(),
              cache: ResourceCache | None = None, pace: ProgressPace | None = None) -> float | None:
    obj = _read(client, cache, namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        gate.release((namespace, name))
        if pace is not None:
            pace.forget((namespace, name))
        return None  # garbage collection removes the children through their ownerReferences
    try:
        job = TrainingJob.from_manifest(obj)
        _build_all(obj, job, config)
    except (ValidationError, ValueError, KeyError, TypeError) as invalid:
        return _unreadable(client, obj, invalid)
    wait = gate.held((namespace, name), job.generation, time.monotonic())
    if wait is not None:
        return wait  # a refused apply is retried slowly; status already carries the refusal
    jobs, pods = _owned_children(client, obj, children)
    # Why workers wait (the pool's nodes, the claims they mount) is read only while they do.
    waiting = job.status.phase not in (*TERMINAL_PHASES, "Running")
    nodes, missing = (_pool_nodes(client, job, config, children), _missing_claims(client, job)) if waiting else (None, ())
    progress_map = _owned(children.progress_map(client, namespace, name), obj)
    observed = observe.observe(name, job.status.attempt, jobs, pods, _workloads(client, job, jobs), nodes, missing, progress_map)
    now = datetime.now(timezone.utc)
    plan = decide(job, observed, now, Policy(config.schedule_deadline_seconds, config.gpu_resource))
    previous = job.status.to_wire()
    # Children first, status after: a pass that dies in between leaves a Job that the next
    # pass adopts (observe), never a status that claims an attempt with no Job.
    try:
        _apply_children(client, applier or OwnedApplier(client), obj, job, plan, config)
    except Refused as refused:
        return _refused(client, gate, obj, job, plan, refused.refusal, now)
    gate.release((namespace, name))
    status = applystatus.applied(plan.status, job.generation, rfc3339(now))
    hold = _progress_hold(pace, (namespace, name), previous, status, now, config)
    hold = hold if hold is not None else starting_hold(previous, status, now)
    if hold is not None:
        plan.requeue(hold)  # the held write goes out then, or with the next other change
    else:
        patch_status_if_changed(client, obj, previous, status)
        if pace is not None:
            pace.written((namespace, name))
    for type_, reason, message in plan.events:
        client.emit_event(obj, type_, reason, message)
    if plan.delete_self:
        log.info("deleting TrainingJob %s/%s: ttlSecondsAfterFinished passed", namespace, name)
        client.delete(API_VERSION, KIND, namespace, name)
        return None
    return plan.requeue_after


def _read(client: KubeClient, cache: ResourceCache | None, namespace: str, name: str) -> dict[str, Any] | None:
    """The TrainingJob as the watch last reported it (kubeforge.crcache), else from the API server."""
    obj = cache.get(KIND, namespace, name) if cache is not None else None
    if obj is None:
        obj = client.get(API_VERSION, KIND, namespace, name)
        if obj is not None and cache is not None:
            cache.remember(obj)
    return obj


def _refused(client: KubeClient, gate: RefusalGate, obj: dict[str, Any], job: TrainingJob, plan: Plan,
             refusal: Refusal, now: datetime) -> float:
    """Status says what was refused, in the API server's words (claiming no Job it refused), and the retry is slow."""
    previous = job.status.to_wire()
    unconfirmed = tuple(t for t in (Type.CREATED,) if not conditions.find(previous.get("conditions"), t))
    status = applystatus.refused(plan.status, refusal, job.generation, rfc3339(now), unconfirmed)
    patch_status_if_changed(client, obj, previous, status)
    for changed in conditions.transitions(previous.get("conditions"), status["conditions"]):
        if changed["type"] == Type.CHILDREN_APPLIED:
            client.emit_event(obj, "Warning", changed["reason"], changed["message"])
    meta = obj["metadata"]
    delay = gate.hold((meta["namespace"], meta["name"]), job.generation, refusal, time.monotonic())
    log.warning("TrainingJob %s/%s: %s; next try in %.0fs", meta["namespace"], meta["name"], status["message"], delay)
    return delay


def _build_all(obj: dict[str, Any], job: TrainingJob, config: Settings) -> None:
    """The pure builders, once: a spec they cannot turn into children fails here, before anything is written."""
    owner = podspec.owner_reference(obj)
    builders.build_shared_children(job, owner, config)
    builders.build_worker_job(job, owner, 1, config, suspend=False)


def _unreadable(client: KubeClient, obj: dict[str, Any], invalid: Exception) -> None:
    """A spec the CRD admitted but the models or builders refuse can never run: Failed, saying why, not a retry loop."""
    meta, previous = obj["metadata"], obj.get("status") or {}
    message = f"the operator cannot read this spec: {invalid}"[:2000]
    failed = conditions.set_condition(previous.get("conditions") or [], Type.FAILED, conditions.TRUE, Reason.INVALID_SPEC,
                                      message, meta.get("generation"), rfc3339(datetime.now(timezone.utc)))
    status = {**previous, "phase": "Failed", "message": message, "observedGeneration": meta.get("generation"), "conditions": failed}
    if patch_status_if_changed(client, obj, previous, status):
        client.emit_event(obj, "Warning", Reason.INVALID_SPEC, message)
    log.error("TrainingJob %s/%s: %s", meta["namespace"], meta["name"], message)
    return None


def _owned_children(client: KubeClient, obj: dict[str, Any], children: Children) -> tuple[list[dict], list[dict]]:
    """This incarnation's Jobs (by owner uid: a deleted and re-created job of the same name adopts nothing) and their pods."""
    meta = obj["metadata"]
    jobs = [j for j in children.read(client, "Job", meta["namespace"], meta["name"]) if _owned_by(j, meta["uid"])]
    job_uids = {j["metadata"]["uid"] for j in jobs}
    pods = [p for p in children.read(client, "Pod", meta["namespace"], meta["name"]) if any(_owned_by(p, uid) for uid in job_uids)]
    return jobs, pods


def _workloads(client: KubeClient, job: TrainingJob, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kueue's Workloads for these Jobs; none without a queue, before Kueue made one, or without Kueue installed."""
    uids = sorted(j["metadata"]["uid"] for j in jobs)
    if not queue_of(job) or not uids:
        return []
    selector = f"{admission.JOB_UID_LABEL} in ({','.join(uids)})"
    return kube.unless_refused(lambda: client.list_(admission.WORKLOAD_API, "Workload", job.namespace, selector), [])


def _pool_nodes(client: KubeClient, job: TrainingJob, config: Settings, children: Children) -> list[dict[str, Any]] | None:
    """The nodes the workers may land on; None when not readable: Nodes are cluster-scoped, and the Roles of a
    namespaced install (watchNamespaces) cannot grant them, so that mode does not ask."""
    if config.watch_namespaces:
        return None
    pool = job.spec.node_pool.node_selector if job.spec.node_pool else {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(pool.items()))
    return children.pool_nodes(client, selector)


def _missing_claims(client: KubeClient, job: TrainingJob) -> tuple[str, ...]:
    """The claims the workers mount that do not exist: the scheduler says so per pod, but only once it tried."""
    def missing(claim: str) -> bool:
        return kube.unless_refused(lambda: client.get("v1", "PersistentVolumeClaim", job.namespace, claim) is None, False)

    return tuple(claim for claim in pod.claims(job) if missing(claim))


def _owned(child: dict[str, Any] | None, obj: dict[str, Any]) -> dict[str, Any] | None:
    return child if child is not None and _owned_by(child, obj["metadata"]["uid"]) else None


def _owned_by(child: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or [])


def _apply_children(client: KubeClient, applier: OwnedApplier, obj: dict[str, Any], job: TrainingJob, plan: Plan,
                    config: Settings) -> None:
    namespace = job.namespace
    if plan.status.get("phase") not in TERMINAL_PHASES:
        owner = podspec.owner_reference(obj)
        children = builders.build_shared_children(job, owner, config)
        if plan.create_job is not None:
            children.append(builders.build_worker_job(job, owner, plan.create_job, config, plan.create_suspended))
        # A taken name stops it all before the Job (kubeforge.ownership). A job no pass has written a status
        # for yet expects none of its children to exist: they are created without a read each first. (Not
        # "no Job yet": a suspended job has its other children, and after a restart each create-only apply
        # of one would be a 409, a read and an apply.)
        fresh = not (obj.get("status") or {}).get("observedGeneration")
        for written in applier.apply_all(children, owner["uid"], expect_absent=fresh):
            if written is not None and written["kind"] in WATCHED_CHILDREN:
                meta = written["metadata"]
                OWN_WRITES.record(written["kind"], meta["namespace"], meta["name"], meta.get("resourceVersion"))
    if plan.job_suspend is not None:
        current = names.worker_job(job.name, plan.status["attempt"])
        client.patch_merge("batch/v1", "Job", namespace, current, {"spec": {"suspend": plan.job_suspend}})
    for stale in plan.delete_jobs:
        client.delete("batch/v1", "Job", namespace, stale, propagation="Background")


def progress_projection(body: dict[str, Any]) -> dict[str, Any] | None:
    """The progress ConfigMap as the index keeps it, rank 0's record only; None for the others (the DeepSpeed config)."""
    meta = body["metadata"]
    if meta["name"] != names.progress_config_map((meta.get("labels") or {}).get(names.JOB_LABEL, "")):
        return None
    return project(body, data_keys=(PROGRESS_KEY,))


def _progress_hold(pace: ProgressPace | None, key: tuple[str, str], previous: dict[str, Any], status: dict[str, Any],
                   now: datetime, config: Settings) -> float | None:
    """Seconds to hold a progress-only status write (kubeforge.trainingjob.progresspace), or None."""
    if pace is None:
        return progress_hold(previous, status, now, config.progress_write_seconds)
    pace.reporting(key, running=status.get("phase") == "Running" and "progress" in status)
    hold = progress_hold(previous, status, now, pace.interval())
    if hold is not None:
        pace.held(key, hold)
    return hold


def setup(registry: kopf.OperatorRegistry, queue: WorkQueue, client: KubeClient = kube, config: Settings = SETTINGS) -> None:
    """Wire the reconciler: events on a TrainingJob, its Jobs, its pods and its progress ConfigMap enqueue the TrainingJob."""
    children = Children(ChildIndex(registry, "batch", "v1", "jobs", names.JOB_LABEL),
                        ChildIndex(registry, "", "v1", "pods", names.JOB_LABEL),
                        ChildIndex(registry, "", "v1", "configmaps", names.JOB_LABEL, keep=progress_projection), PoolNodes())
    applier = OwnedApplier(client, pool=ThreadPoolExecutor(config.workers, thread_name_prefix="kubeforge-trainingjob-apply"))
    pace = ProgressPace(config.progress_write_seconds, config.progress_writes_per_second)
    reconciler = functools.partial(reconcile, client=client, config=config, applier=applier, gate=RefusalGate(),
                                   children=children, cache=CR_CACHE, pace=pace)
    queue.register(KIND, reconciler)
    watches.enqueue_on_event(registry, queue, KIND, PLURAL, cache=CR_CACHE)
    watches.enqueue_owner_on_child_event(registry, queue, "batch", "v1", "jobs", names.JOB_LABEL, KIND, delay=CHILD_COALESCE_S)
    # Pods carry the exit codes and readiness; rank 0's progress lands in the progress ConfigMap.
    watches.enqueue_owner_on_child_event(registry, queue, "", "v1", "pods", names.JOB_LABEL, KIND, delay=CHILD_COALESCE_S)
    # A report while the job's progress is held wakes nothing before the hold ends (a pass is due then).
    watches.enqueue_owner_on_child_event(registry, queue, "", "v1", "configmaps", names.JOB_LABEL, KIND,
                                         delay=lambda namespace, owner: pace.delay((namespace, owner), PROGRESS_COALESCE_S))
