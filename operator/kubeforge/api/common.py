"""API types shared by TrainingJob and ModelEndpoint: compute resources, GPU node pools, status conditions."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from kubeforge.api.base import ApiModel, preserve_unknown

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"


class Resources(ApiModel):
    """Per-pod compute: GPUs map to the operator's GPU resource name (nvidia.com/gpu by default)."""

    gpus: int = Field(0, ge=0, le=64, description="GPUs per pod (extended resource, requests = limits).")
    cpu: str | None = Field(None, pattern=QUANTITY_PATTERN, description="CPU request and limit per pod, e.g. '8' or '500m'.")
    memory: str | None = Field(None, pattern=QUANTITY_PATTERN, description="Memory request and limit per pod, e.g. '32Gi'.")


class NodePool(ApiModel):
    """Where pods land: a node selector, tolerations and affinity, passed to the pod as given."""

    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels the pods require, e.g. kubeforge.io/pool: a100.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, json_schema_extra=preserve_unknown("Pod tolerations (core/v1 Toleration), as given.")
    )
    affinity: dict[str, Any] | None = Field(None, json_schema_extra=preserve_unknown("Pod affinity (core/v1 Affinity), as given."))


class EventType(StrEnum):
    """core/v1 Event.type: the Events the operator posts on its resources."""

    NORMAL = "Normal"
    WARNING = "Warning"


class ConditionStatus(StrEnum):
    """metav1.ConditionStatus."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """metav1.Condition, the shape kstatus, Argo CD, Flux and `kubectl wait --for=condition=` read."""

    type: str = Field(..., description="The condition type, CamelCase (e.g. Ready, Succeeded).")
    status: ConditionStatus
    reason: str = Field(..., description="Why, in one CamelCase word.")
    message: str = ""
    last_transition_time: str = Field(..., json_schema_extra={"format": "date-time"})
    observed_generation: int | None = Field(None, json_schema_extra={"format": "int64"})


# False while the API server refuses one of the resource's children, or a child's name is taken
# (kubeforge.applystatus); True again once every child applied. Both kinds carry it.
CHILDREN_APPLIED = "ChildrenApplied"


class ChildrenAppliedReason(StrEnum):
    APPLIED = "Applied"
    NAME_CONFLICT = "NameConflict"  # a child's name is taken by an object this resource does not control
    REFUSED_BY_API_SERVER = "RefusedByAPIServer"  # any other 4xx: a quota, an admission policy, an invalid object


def conditions_field(description: str) -> Any:
    """status.conditions: a list keyed by type, so a server-side apply or merge never duplicates one."""
    return Field(
        default_factory=list,
        description=description,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
