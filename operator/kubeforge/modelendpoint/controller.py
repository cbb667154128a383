"""The ModelEndpoint reconciler shell: observe (read), decide (modelendpoint.plan, pure), apply, write status.

Level-triggered (see kubeforge.workqueue): every pass rebuilds the whole picture
from the API server, so restarts and missed events converge on the next pass.
The client is injected (kubeforge.kube in production), so the shell is unit-tested too.
Children go through kubeforge.ownership: a name held by an object this endpoint does not control
is never adopted, and a child the API server refuses for good shows as ChildrenApplied=False
with its words, retried slowly (kubeforge.apierrors.RefusalGate).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from kubeforge import API_VERSION, applystatus, conditions, kube, podreasons, watches
from kubeforge.api.common import CHILDREN_APPLIED
from kubeforge.api.modelendpoint import KIND, PLURAL, ModelEndpointSpec
from kubeforge.api.objectname import DNS_1035_LABEL
from kubeforge.api.trainingjob import KIND as TRAININGJOB_KIND
from kubeforge.apierrors import Refusal, RefusalGate, Refused
from kubeforge.kube import KubeClient
from kubeforge.modelendpoint import builders, canary, canaryreport, handover, modelsource, refindex
from kubeforge.modelendpoint import status as endpoint_status
from kubeforge.modelendpoint.plan import ChildPlan, Observed, decide_children, decide_status
from kubeforge.ownership import OwnedApplier, controller_uid
from kubeforge.settings import SETTINGS, Settings
from kubeforge.statuswrite import patch_status_if_changed
from kubeforge.timestamps import now_rfc3339
from kubeforge.workqueue import WorkQueue

log = logging.getLogger(__name__)

CHILD_KINDS = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    # Server pods: an s3:// model's download step reports through them (modelendpoint/download.py).
    ("", "v1", "pods"),
)


# Endpoints whose children the API server refused (quota, admission, a taken name): retried slowly.
GATE = RefusalGate()


def reconcile(namespace: str, name: str, client: KubeClient = kube, config: Settings = SETTINGS,
              applier: OwnedApplier | None = None, gate: RefusalGate = GATE) -> float | None:
    obs = observe(client, namespace, name)
    if obs is None:
        gate.release((namespace, name))
        return None  # garbage collection removes the children through their ownerReferences
    children = decide_children(obs, config)
    if children is not None:
        wait = gate.held((namespace, name), obs.generation, time.monotonic())
        if wait is not None:
            return wait  # a refused apply is retried slowly; status already carries the refusal
        try:
            obs = obs.with_deployment(apply_children(client, obs, children, applier or OwnedApplier(client)))
        except Refused as refused:
            return _refused(client, gate, obs, refused.refusal, config)
        gate.release((namespace, name))
    now = now_rfc3339()
    plan = decide_status(obs, now, config)
    # Last, so a pass that fails half-way repeats the apply (decide_children keys on the status).
    patch_status_if_changed(client, obs.endpoint, obs.previous, applystatus.applied(plan.status, obs.generation, now))
    for type_, reason, message in plan.events:
        client.emit_event(obs.endpoint, type_, reason, message)
    return plan.requeue_after


def _refused(client: KubeClient, gate: RefusalGate, obs: Observed, refusal: Refusal, config: Settings) -> float:
    """Status says what was refused, in the API server's words, and the retry is slow."""
    now = now_rfc3339()
    status = applystatus.refused(decide_status(obs, now, config).status, refusal, obs.generation, now, summary="reason")
    patch_status_if_changed(client, obs.endpoint, obs.previous, status)
    for changed in conditions.transitions(obs.previous.get("conditions"), status["conditions"]):
        if changed["type"] == CHILDREN_APPLIED:
            client.emit_event(obs.endpoint, "Warning", changed["reason"], changed["message"])
    delay = gate.hold((obs.namespace, obs.name), obs.generation, refusal, time.monotonic())
    log.warning("ModelEndpoint %s/%s: %s; next try in %.0fs", obs.namespace, obs.name, applystatus.describe(refusal), delay)
    return delay


def observe(client: KubeClient, namespace: str, name: str) -> Observed | None:
    """The endpoint, the TrainingJob it references, its Deployment (and server pods for s3://); None when it is gone or going."""
    endpoint = client.get(API_VERSION, KIND, namespace, name)
    if endpoint is None or endpoint["metadata"].get("deletionTimestamp"):
        return None
    spec = ModelEndpointSpec.model_validate(endpoint["spec"])
    ref = spec.model.training_job_ref
    # A TrainingJob's name is a DNS-1035 label (CEL on its metadata.name); a ref that is not one names no job,
    # and a GET with it is a 400 from the API server that would fail every pass (found by test_fuzz_api).
    known = ref is not None and re.fullmatch(DNS_1035_LABEL, ref.name) is not None
    training_job = client.get(API_VERSION, TRAININGJOB_KIND, namespace, ref.name) if known else None
    deployment = client.get("apps/v1", "Deployment", namespace, name)
    if deployment is not None and controller_uid(deployment) != endpoint["metadata"]["uid"]:
        deployment = None  # someone else's of the same name: not ours to count (the apply reports the conflict)
    obs = Observed(endpoint, spec, training_job, deployment, now=now_rfc3339())
    evaluated = spec.rollout.promotion is not None and spec.rollout.promotion.evaluation is not None
    if spec.rollout.strategy == "Canary" or evaluated or (endpoint.get("status") or {}).get("canary"):
        obs = dataclasses.replace(obs, canary_pods=tuple(client.list_("v1", "Pod", namespace, canary.selector(name))))
        running = (endpoint.get("status") or {}).get("canary") or {}
        if obs.reports_traffic and running and not running.get("failed"):  # the bake's end reads its traffic
            obs = dataclasses.replace(obs, canary_report=client.get("v1", "ConfigMap", namespace, canaryreport.config_map(name)))
    claim = modelsource.model_claim(obs.resolution)
    if claim:  # ModelResolved claims only a model the pods can mount
        missing = kube.unless_refused(lambda: client.get("v1", "PersistentVolumeClaim", namespace, claim) is None, False)
        obs = dataclasses.replace(obs, model_claim_missing=missing)
    obs = dataclasses.replace(obs, **_held_back_pods(client, obs))
    if obs.downloads_model and not obs.pods:  # Ready pods tell which model digest they downloaded
        obs = dataclasses.replace(obs, pods=tuple(client.list_("v1", "Pod", namespace, builders.selector_string(name))))
    return obs


def _held_back_pods(client: KubeClient, obs: Observed) -> dict[str, Any]:
    """The server pods while not all are Ready (why they wait goes into status), and the kubelet's Unhealthy
    events when one runs but fails its readiness probe; nothing is read for a Ready endpoint."""
    deployment = obs.deployment
    desired = endpoint_status.desired_replicas(obs.spec, deployment)
    if deployment is None or ((deployment.get("status") or {}).get("readyReplicas") or 0) >= desired:
        return {}
    pods = client.list_("v1", "Pod", obs.namespace, builders.selector_string(obs.name))
    unready = {p["metadata"]["name"] for p in pods if (b := podreasons.pod_blocker(p)) and b.reason == podreasons.NOT_READY}
    events = client.list_("v1", "Event", obs.namespace, field_selector="reason=Unhealthy") if unready else []
    return {"pods": tuple(pods), "probe_events": tuple(e for e in events if (e.get("involvedObject") or {}).get("name") in unready)}


def apply_children(client: KubeClient, obs: Observed, plan: ChildPlan, applier: OwnedApplier) -> dict[str, Any]:
    """Apply the plan's children (and the replicas handover around them); returns the Deployment as applied.

    Every child's name is checked first: one held by an object this endpoint does not control
    stops the pass (Refused) before anything, the handover claim included, is written.
    """
    owner_uid = obs.endpoint["metadata"]["uid"]
    applier.ensure_free(plan.apply, owner_uid)
    if plan.claim_replicas is not None:
        client.apply(plan.claim_replicas, field_manager=handover.HANDOVER_MANAGER)
    # Unchanged children are not sent again (kubeforge.applymemo) while the Deployment is there to
    # read the rollout from; without one, everything is applied and the apply's answer is read.
    results = applier.apply_all(plan.apply, owner_uid, checked=True, if_changed=obs.deployment is not None)
    applied = {(child["kind"], child["metadata"]["name"]): result for child, result in zip(plan.apply, results)}
    deployment = applied.get(("Deployment", obs.name)) or obs.deployment
    if plan.hand_over_created:
        client.apply(handover.claim(deployment), field_manager=handover.HANDOVER_MANAGER)
    for api_version, kind, child_name in plan.delete:
        if applier.delete_if_owned(api_version, kind, obs.namespace, child_name, owner_uid):
            log.info("deleted %s %s/%s: no longer wanted by the spec", kind, obs.namespace, child_name)
    return deployment


def setup(registry: kopf.OperatorRegistry, queue: WorkQueue, client: KubeClient = kube, config: Settings = SETTINGS) -> None:
    """Wire the reconciler: events on an endpoint, its children and the TrainingJob it serves enqueue it."""
    applier = OwnedApplier(client, pool=ThreadPoolExecutor(config.workers, thread_name_prefix="kubeforge-modelendpoint-apply"))
    queue.register(KIND, functools.partial(reconcile, client=client, config=config, applier=applier, gate=RefusalGate()))
    watches.enqueue_on_event(registry, queue, KIND, PLURAL)
    for group, version, plural in CHILD_KINDS:
        watches.enqueue_owner_on_child_event(registry, queue, group, version, plural, builders.LABEL, KIND)
    # Server pods: why they wait (crash loop, image pull, failing probe) changes nothing on the Deployment.
    watches.enqueue_owner_on_child_event(registry, queue, "", "v1", "pods", builders.LABEL, KIND)
    refindex.setup(registry, queue)
