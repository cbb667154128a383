"""Pods for the fake nodes: the annotations that drive their lifecycle, and
manifests that pass the namespaces' restricted Pod Security level.

The annotations are read by the kwok Stages in hack/kwok/stages/pods.yaml;
hack/kwok/README.md is the contract. Set them on a pod, on a pod template,
or patch them onto a live pod.
"""
from __future__ import annotations

from typing import Any

# Exit code the pod's containers end with; "0" -> Succeeded, else Failed.
EXIT_CODE = "kubeforge.io/fake-exit-code"
# How long the pod runs, from status.startTime: "500ms", "5s", "2m", "1h".
DURATION = "kubeforge.io/fake-duration"
# containerStatuses[].state.terminated.message (e.g. rank 0's JSON summary).
TERMINATION_MESSAGE = "kubeforge.io/fake-termination-message"
# containerStatuses[].state.terminated.reason (default Completed / Error).
REASON = "kubeforge.io/fake-reason"
# "false": Running but not Ready (a server still loading); patch to "true" to flip.
READY = "kubeforge.io/fake-ready"

# containerStatuses[].state.waiting.reason / .message: a container the kubelet cannot start or keeps
# restarting (CrashLoopBackOff, ImagePullBackOff, CreateContainerConfigError, ...).
WAITING_REASON = "kubeforge.io/fake-waiting-reason"
WAITING_MESSAGE = "kubeforge.io/fake-waiting-message"
# With a waiting reason: lastState.terminated.exitCode (its reason and message from REASON and TERMINATION_MESSAGE).
LAST_EXIT_CODE = "kubeforge.io/fake-last-exit-code"

IMAGE = "registry.invalid/kubeforge/fake:0"  # never pulled: kwok runs nothing


def fake_exit(code: int = 0, after: str | None = None, message: str | None = None,
              reason: str | None = None) -> dict[str, str]:
    """Annotations making a fake pod exit with `code`, `after` it started (default at once)."""
    annotations = {EXIT_CODE: str(code)}
    if after is not None:
        annotations[DURATION] = after
    if message is not None:
        annotations[TERMINATION_MESSAGE] = message
    if reason is not None:
        annotations[REASON] = reason
    return annotations


def fake_waiting(reason: str, message: str = "", last_exit_code: int | None = None,
                 termination_message: str | None = None, last_reason: str | None = None) -> dict[str, str]:
    """Annotations making a fake pod's containers wait with `reason` (a crash loop: with their last exit)."""
    annotations = {WAITING_REASON: reason, WAITING_MESSAGE: message}
    if last_exit_code is not None:
        annotations[LAST_EXIT_CODE] = str(last_exit_code)
    if termination_message is not None:
        annotations[TERMINATION_MESSAGE] = termination_message
    if last_reason is not None:
        annotations[REASON] = last_reason
    return annotations


def restricted_container(name: str = "main", gpus: int = 0, cpu: str = "100m",
                         memory: str = "128Mi") -> dict[str, Any]:
    """A container that the restricted Pod Security level admits."""
    limits: dict[str, str] = {"cpu": cpu, "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    return {
        "name": name,
        "image": IMAGE,
        "resources": {"requests": dict(limits), "limits": limits},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def pod_template(gpus: int = 0, pool: str | None = None, annotations: dict[str, str] | None = None,
                 labels: dict[str, str] | None = None, tolerate_gpu_taint: bool = False,
                 restart_policy: str = "Always") -> dict[str, Any]:
    """A pod template on the given pool (kubeforge.io/pool label) asking for `gpus`."""
    spec: dict[str, Any] = {
        "containers": [restricted_container(gpus=gpus)],
        "restartPolicy": restart_policy,
        "automountServiceAccountToken": False,
    }
    if pool:
        spec["nodeSelector"] = {"kubeforge.io/pool": pool}
    if tolerate_gpu_taint:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {"metadata": {"labels": labels or {}, "annotations": annotations or {}}, "spec": spec}


def pod(name: str, **template: Any) -> dict[str, Any]:
    """A bare pod (restartPolicy Never unless given) from the same parts as pod_template."""
    template.setdefault("restart_policy", "Never")
    manifest = pod_template(**template)
    manifest["metadata"]["name"] = name
    return {"apiVersion": "v1", "kind": "Pod", **manifest}
