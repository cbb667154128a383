"""Hands the Deployment's spec.replicas over to the HorizontalPodAutoscaler without a dip.

Server-side apply removes a field its manager stops sending. An endpoint that
gains spec.autoscaling would thus drop the Deployment to 1 replica before the
HPA scales it back. Kubernetes' documented way out ("Transferring ownership",
server-side apply docs): a second manager first claims the field with the same
value, then the first manager stops sending it and the value stays.
Pure: modelendpoint.plan decides when, the controller shell applies the claim.
"""

from __future__ import annotations

from typing import Any

from kubeforge import FIELD_MANAGER

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
