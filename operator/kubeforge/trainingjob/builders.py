"""Pure builders of a TrainingJob's children: the per-attempt Indexed Job, the headless Service,
the DeepSpeed ConfigMap, and the trainer's ServiceAccount, Role, RoleBinding and progress ConfigMap.

Spec and names in, manifests out; no I/O and no clock, so the reconciler can apply
them again and again and converge (server-side apply, field manager kubeforge).
"""

from __future__ import annotations

from typing import Any

from kubeforge import contract
from kubeforge.api.trainingjob import DEEPSPEED_CONFIG_KEY, TrainingJob
from kubeforge.settings import Settings
from kubeforge.trainingjob import names
from kubeforge.trainingjob.pod import deepspeed_config_json, worker_pod_template


def _meta(name: str, job: TrainingJob, owner: dict[str, Any], attempt: int | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": job.namespace, "labels": names.labels(job.name, attempt), "ownerReferences": [owner]}


def build_worker_job(job: TrainingJob, owner: dict[str, Any], attempt: int, settings: Settings, suspend: bool) -> dict[str, Any]:
    """One Indexed Job per attempt: N pods, index = NODE_RANK, hostname <job>-<index> under the Service."""
    nodes = job.spec.nodes
    meta = _meta(names.worker_job(job.name, attempt), job, owner, attempt)
    scheduling = job.spec.scheduling
    if scheduling and scheduling.queue_name:
        meta["labels"][names.KUEUE_QUEUE_LABEL] = scheduling.queue_name
    spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": nodes,
        "parallelism": nodes,
        # The first failed worker fails the attempt: the operator owns restarts,
        # and a lone replacement pod could never rejoin a running process group.
        "backoffLimit": 0,
        "suspend": suspend,
        "template": worker_pod_template(job, attempt, settings),
    }
    if job.spec.elastic:
        spec.update(_elastic_replacement(job))
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def _elastic_replacement(job: TrainingJob) -> dict[str, Any]:
    """Elastic workers rejoin a running rendezvous (torchrun --nnodes=min:max), so the Job controller may
    replace a lost one in place, up to backoffLimit times per attempt; a permanent exit code still fails it."""
    policy = job.spec.run_policy
    rules: list[dict[str, Any]] = [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    if policy.permanent_exit_codes:
        codes = sorted(set(policy.permanent_exit_codes) - {0})
        rules.insert(0, {"action": "FailJob", "onExitCodes": {"containerName": names.CONTAINER, "operator": "In", "values": codes}})
    # Replace a pod only once the old one is gone: two pods must never share a hostname.
    return {"backoffLimit": policy.backoff_limit, "podFailurePolicy": {"rules": rules}, "podReplacementPolicy": "Failed"}


def build_service(job: TrainingJob, owner: dict[str, Any]) -> dict[str, Any]:
    """Headless: gives each worker a DNS record; published before readiness, since rendezvous comes first."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(names.service(job.name), job, owner),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {names.JOB_LABEL: job.name},
            "ports": _service_ports(job),
        },
    }


def _service_ports(job: TrainingJob) -> list[dict[str, Any]]:
    """The head's GCS for launcher ray (workers join <job>-a<N>-0.<svc>:port), else the torch rendezvous."""
    name, port = ("ray-gcs", contract.DEFAULT_RAY_PORT) if job.spec.launcher == "ray" else ("rendezvous", contract.DEFAULT_MASTER_PORT)
    return [{"name": name, "port": port, "targetPort": port}]


def build_deepspeed_config_map(job: TrainingJob, owner: dict[str, Any]) -> dict[str, Any] | None:
    """None for torchrun and for a config the user keeps in their own ConfigMap."""
    config = deepspeed_config_json(job)
    if config is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(names.deepspeed_config_map(job.name), job, owner),
        "data": {DEEPSPEED_CONFIG_KEY: config},
    }


def build_service_account(job: TrainingJob, owner: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    if not settings.trainer_progress:
        return None
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(names.service_account(job.name), job, owner)}


def build_progress_config_map(job: TrainingJob, owner: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """Created empty: rank 0 merge-patches its `progress` key, which the operator never applies, so never resets."""
    if not settings.trainer_progress:
        return None
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(names.progress_config_map(job.name), job, owner)}


def build_role(job: TrainingJob, owner: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """The worker's token may patch this job's progress ConfigMap and nothing else.

    resourceNames pins the one object; no get/list/watch, no pods. User code runs with
    this token, so anything broader lets a worker relabel or re-image its neighbours.
    """
    if not settings.trainer_progress:
        return None
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"], "resourceNames": [names.progress_config_map(job.name)]}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(names.service_account(job.name), job, owner),
        "rules": [rule],
    }


def build_role_binding(job: TrainingJob, owner: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    if not settings.trainer_progress:
        return None
    account = names.service_account(job.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(account, job, owner),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": job.namespace}],
    }


def build_shared_children(job: TrainingJob, owner: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Everything but the Job, in the order pods need them: what a pod is admitted and started with first,
    the RoleBinding its token uses once it runs last (applied with the Job: kubeforge.ownership.waves)."""
    built = [
        build_service_account(job, owner, settings),
        build_progress_config_map(job, owner, settings),
        build_role(job, owner, settings),
        build_deepspeed_config_map(job, owner),
        build_service(job, owner),
        build_role_binding(job, owner, settings),
    ]
    return [obj for obj in built if obj is not None]
