"""The ModelEndpoint's decisions as pure functions: what the API server showed in, what to apply and what status to write out.

The same observe → decide → apply shape as the TrainingJob's (trainingjob/status.decide),
decided in two steps because the status reports the rollout that the apply itself starts:
a spec change bumps the Deployment's generation, and only the object the apply returns
shows it. So the controller runs decide_children, applies, then decide_status on the
Deployment the apply returned, and writes status and the Plan's events last.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from kubeforge import conditions, podreasons, storage
from kubeforge.api.common import EventType, ObjectStorage
from kubeforge.api.modelendpoint import KSTATUS_TYPES, ModelEndpointPhase, ModelEndpointSpec
from kubeforge.api.modelendpoint import ModelEndpointReason as Reason
from kubeforge.modelendpoint import builders, canary, canaryreport, download, gate, handover, modelsource, revisions
from kubeforge.modelendpoint import status as endpoint_status
from kubeforge.modelendpoint.modelsource import ModelResolution, resolve_model, with_download_failure
from kubeforge.modelendpoint.runtime import resolve_runtime
from kubeforge.settings import Settings

NORMAL, WARNING = EventType.NORMAL, EventType.WARNING


@dataclass(frozen=True)
class Observed:
    """One endpoint as the API server shows it; pure data for the decisions."""

    endpoint: dict[str, Any]  # the ModelEndpoint as read
    spec: ModelEndpointSpec
    training_job: dict[str, Any] | None = None  # the referenced TrainingJob; None without a ref or when absent
    deployment: dict[str, Any] | None = None  # the live Deployment, or the one the apply returned
    model_claim_missing: bool = False  # the resolved model's pvc:// claim does not exist
    pods: tuple[dict[str, Any], ...] = ()  # the server pods, read while not all are Ready
    probe_events: tuple[dict[str, Any], ...] = ()  # the kubelet's Unhealthy events, read while a pod fails its probe
    canary_pods: tuple[dict[str, Any], ...] = ()  # strategy Canary: the canary pods, whose status judges the bake
    canary_report: dict[str, Any] | None = None  # the ConfigMap the canary's servers report their traffic into
    now: str = ""  # when observed (RFC 3339): the canary's bake is timed against it

    @property
    def name(self) -> str:
        return self.endpoint["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.endpoint["metadata"]["namespace"]

    @property
    def generation(self) -> int:
        return self.endpoint["metadata"].get("generation", 1)

    @property
    def previous(self) -> dict[str, Any]:
        """The status as last written."""
        return self.endpoint.get("status") or {}

    @functools.cached_property  # asked many times a pass; a frozen dataclass still has a __dict__ to cache in
    def rollout(self) -> revisions.RolloutDecision:
        """Which revision to serve: the spec's model if it passes the promotion gate, a pinned one, or the one served."""
        resolved = resolve_model(self.spec.model, self.training_job, self.previous.get("modelUri"))
        decision = revisions.decide(self.spec, resolved, self.training_job, self.previous)
        if decision.canary is None:
            return decision
        verdict = canary.judge(decision.canary, self.previous.get("canary"), self.canary_pods, self.bake, self.now, self.canary_report)
        return revisions.baked(decision, verdict, resolved)

    @property
    def evaluated(self) -> bool:
        """spec.rollout.promotion.evaluation: every new model's candidate pods score the held-out file first."""
        return self.spec.rollout.promotion is not None and self.spec.rollout.promotion.evaluation is not None

    @property
    def bake(self) -> canary.Bake:
        """Strategy Canary's bake; Replace under evaluation: one candidate pod, promoted once it passed and is Ready.
        A first model (nothing served to compare with) is promoted without a bake, as it was served directly before."""
        spec = self.spec.rollout.canary
        if self.spec.rollout.strategy == "Canary":
            if revisions.serving(self.previous) is None:
                return canary.Bake(spec.replicas, 0, self.evaluated, gate=revisions.gate_key(self.spec))
            return canary.Bake(spec.replicas, spec.bake_seconds, self.evaluated, limits=spec, gate=revisions.gate_key(self.spec))
        return canary.Bake(1, 0, self.evaluated, gate=revisions.gate_key(self.spec))

    @property
    def reports_traffic(self) -> bool:
        """The canary's servers report their traffic (a bake judges it): strategy Canary with a model to compare."""
        return self.bake.limits is not None

    @property
    def stable_spec(self) -> ModelEndpointSpec:
        """The spec the stable Deployment is built from: a running canary's pods count toward spec.replicas."""
        running = self.rollout.canary is not None and self.rollout.canary_record is not None
        if not running or self.spec.autoscaling or self.spec.rollout.strategy != "Canary":
            return self.spec
        return self.spec.model_copy(update={"replicas": max(1, self.spec.replicas - self.spec.rollout.canary.replicas)})

    @property
    def resolution(self) -> ModelResolution:
        return modelsource.require_claim(self.rollout.resolution, claim_exists=not self.model_claim_missing)

    def blocker(self, gpu_resource: str) -> podreasons.Blocker | None:
        """The server pods' first blocking reason; a failing readiness probe with the kubelet's words."""
        blocker = podreasons.first_blocker(self.pods, gpu_resource)
        return podreasons.with_probe_message(blocker, self.probe_events) if blocker else None

    @property
    def downloads_model(self) -> bool:
        """The model comes (or came) from an object store, so the pods' download step has something to say."""
        result = ((self.training_job or {}).get("status") or {}).get("result") or {}
        candidates = (self.spec.model.uri, result.get("modelUri"), self.previous.get("modelUri"))
        return any(uri and storage.is_object_uri(uri) for uri in candidates)

    @property
    def storage(self) -> ObjectStorage | None:
        """spec.storage, else the referenced TrainingJob's: where its s3:// export lives."""
        raw = ((self.training_job or {}).get("spec") or {}).get("storage")
        return self.spec.storage or (ObjectStorage.model_validate(raw) if raw else None)

    def with_deployment(self, deployment: dict[str, Any]) -> "Observed":
        return dataclasses.replace(self, deployment=deployment)


@dataclass(frozen=True)
class ChildPlan:
    """What to write before status: every child to apply, in order, and what else goes with it."""

    apply: list[dict[str, Any]]
    delete: list[tuple[str, str, str]] = field(default_factory=list)  # (apiVersion, kind, name)
    claim_replicas: dict[str, Any] | None = None  # applied as handover.HANDOVER_MANAGER before the children
    hand_over_created: bool = False  # a new Deployment starts at minReplicas: claim them right after the apply


@dataclass(frozen=True)
class StatusPlan:
    """The status to write, the Events announcing its condition transitions, and when to look again."""

    status: dict[str, Any]
    events: list[tuple[str, str, str]]  # (type, reason, message)
    requeue_after: float | None


def decide_children(obs: Observed, config: Settings) -> ChildPlan | None:
    """None when there is nothing (new) to deploy: a Deployment serving an earlier model stays, and is counted.

    Deletes and the replicas handover cost API calls on every pass, so they are planned only
    when the spec changed since the last status write or nothing was deployed yet (status
    is written after them, so a pass that died half-way plans them again).
    """
    resolution = obs.resolution
    decision = obs.rollout
    if not resolution.uri or resolution.failed:
        if decision.canary is not None and resolution.uri is None:
            return _candidate_only(obs, decision, config)  # a first model under evaluation: nothing else until it passes
        if (obs.previous.get("canary") or {}).get("failed") is None and obs.previous.get("canary"):
            return ChildPlan([], [("apps/v1", "Deployment", canary.name(obs.name))])  # the first model's candidate failed
        return None
    revisit = obs.previous.get("observedGeneration") != obs.generation or "url" not in obs.previous
    autoscaling = obs.spec.autoscaling if revisit else None
    initial = autoscaling.min_replicas if autoscaling and obs.deployment is None else None
    claim = None
    if autoscaling and obs.deployment is not None and handover.owns_replicas(obs.deployment):
        claim = handover.claim(obs.deployment)
    image = obs.spec.image or config.server_image
    ep = builders.Endpoint(obs.endpoint, obs.stable_spec, resolution.uri, resolve_runtime(obs.spec), image, config.gpu_resource,
                           initial, model_revision=decision.header, storage=obs.storage, model_digest=resolution.digest)
    children = builders.build_children(ep)
    apply, absent = children.apply, children.absent if revisit else []
    if decision.canary is not None and decision.canary_record is not None and not decision.canary_record.get("failed"):
        reporting = canaryreport.build_children(obs.endpoint, builders.labels(obs.name)) if obs.reports_traffic else []
        apply = apply + reporting + [_canary_deployment(obs, decision, ep)]
    elif revisit or (obs.previous.get("canary") and not obs.previous["canary"].get("failed")):
        # Promoted, failed, or strategy changed: the canary goes, and the token its pods had with it.
        absent = absent + [("apps/v1", "Deployment", canary.name(obs.name)), *canaryreport.absent(obs.name)]
    return ChildPlan(apply, absent, claim, initial is not None)


def _canary_deployment(obs: Observed, decision: revisions.RolloutDecision, ep: builders.Endpoint) -> dict[str, Any]:
    """The candidate revision's Deployment; under evaluation its pods score the held-out file against the gate
    (the thresholds, and notWorseThanServing's floor from the serving revision's held-out metrics) before Ready."""
    rev = decision.canary
    assert rev is not None
    promotion = obs.spec.rollout.promotion
    pod_gate = gate.pod_thresholds(promotion, (decision.serve or {}).get("evaluation")) if promotion and obs.evaluated else None
    built = builders.build_deployment(dataclasses.replace(ep, model_uri=rev["uri"], model_revision=revisions.model_header(rev),
                                                          model_digest=rev.get("digest"), evaluation_gate=pod_gate))
    deployment = canary.as_canary(built, obs.name, rev["revision"], obs.bake.replicas)
    if obs.reports_traffic:
        template = canaryreport.reporting_pod_template(deployment["spec"]["template"], obs.name)
        deployment = {**deployment, "spec": {**deployment["spec"], "template": template}}
    return deployment


def _candidate_only(obs: Observed, decision: revisions.RolloutDecision, config: Settings) -> ChildPlan | None:
    rev = decision.canary
    assert rev is not None
    ep = builders.Endpoint(obs.endpoint, obs.spec, rev["uri"], resolve_runtime(obs.spec), obs.spec.image or config.server_image,
                           config.gpu_resource, storage=obs.storage)
    return ChildPlan([_canary_deployment(obs, decision, ep)])


# What a waiting endpoint waits on that a watch of ours reports: the referenced TrainingJob's events wake it.
WOKEN_BY_WATCHES = frozenset({Reason.WAITING_FOR_TRAINING_JOB, Reason.TRAINING_JOB_NOT_FOUND})


def decide_status(obs: Observed, now: str, config: Settings) -> StatusPlan:
    desired = endpoint_status.desired_replicas(obs.stable_spec, obs.deployment)
    # A server pod that cannot fetch the model turns ModelResolved False (DownloadFailed); Ready pods tell the digest.
    report = download.download_report(list(obs.pods)) if obs.downloads_model else download.DownloadReport()
    status, recheck = endpoint_status.build_status(
        name=obs.name,
        namespace=obs.namespace,
        generation=obs.generation,
        resolution=with_download_failure(obs.resolution, report.failure),
        runtime=resolve_runtime(obs.spec),
        rollout=endpoint_status.observe_rollout(obs.deployment, desired),
        previous=obs.previous,
        now=now,
        degraded_after=config.endpoint_degraded_after_seconds,
        blocker=obs.blocker(config.gpu_resource),
        start_deadline=float(obs.spec.start_deadline_seconds or config.endpoint_start_deadline_seconds),
        model_digest=report.digest,
    )
    status = revisions.with_revisions(status, obs.rollout, obs.previous, obs.generation, now)
    # A recheck that falls due (the degraded or start deadline, a rollout step); and while the model
    # waits on something no watch reports (a claim not yet made), a look every resync period. A
    # served endpoint has no timer: the periodic pass over all of them is kubeforge.resync's relist.
    # Nor does one waiting on its TrainingJob: that job's events wake it (refindex); 2,500 such endpoints
    # on the timer were 40 passes a second with nothing changing.
    waiting = status.get("phase") == ModelEndpointPhase.WAITING_FOR_MODEL and obs.resolution.reason not in WOKEN_BY_WATCHES
    due = [t for t in (recheck, obs.rollout.recheck_after, config.resync_seconds if waiting else None) if t is not None]
    requeue = min(due) if due else None
    return StatusPlan(status, transition_events(obs.previous, status), requeue)


def transition_events(previous: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One Event per condition whose status or reason changed."""
    events = []
    for changed in conditions.transitions(previous.get("conditions"), new["conditions"]):
        if changed["type"] in KSTATUS_TYPES:
            continue  # they mirror Ready; one event per transition is enough
        type_ = WARNING if endpoint_status.is_warning(changed) else NORMAL
        events.append((type_, changed["reason"], f"{changed['type']} is {changed['status']}: {changed['message']}"))
    return events
