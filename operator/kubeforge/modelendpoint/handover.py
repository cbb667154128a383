"""Hands the Deployment's spec.replicas over to the HorizontalPodAutoscaler without a dip.

Server-side apply removes a field its manager stops sending. An endpoint that
gains spec.autoscaling would thus drop the Deployment to 1 replica before the
HPA scales it back. Kubernetes' documented way out ("Transferring ownership",
server-side apply docs): a second manager first claims the field with the same
value, then the first manager stops sending it and the value stays.
"""

from __future__ import annotations

from typing import Any

from kubeforge import FIELD_MANAGER, kube

HANDOVER_MANAGER = "kubeforge-replicas-handover"


def owns_replicas(deployment: dict[str, Any], manager: str = FIELD_MANAGER) -> bool:
    """Whether `manager` applied spec.replicas (per managedFields)."""
    for entry in deployment["metadata"].get("managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {}):
            return True
    return False


def claim(deployment: dict[str, Any]) -> dict[str, Any]:
    """The apply body that makes HANDOVER_MANAGER co-own spec.replicas at its current value."""
    meta = deployment["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": deployment["spec"]["replicas"]},
    }


def prepare(namespace: str, name: str, min_replicas: int) -> int | None:
    """Before kubeforge applies a Deployment without replicas: hand them over if kubeforge holds them.

    Returns the replicas to create a missing Deployment with (minReplicas, so the HPA
    does not start from 1); the caller hands those over with `hand_over` right after.
    """
    deployment = kube.get("apps/v1", "Deployment", namespace, name)
    if deployment is None:
        return min_replicas
    if owns_replicas(deployment):
        hand_over(deployment)
    return None


def hand_over(deployment: dict[str, Any]) -> None:
    kube.apply(claim(deployment), field_manager=HANDOVER_MANAGER)
