"""Base model for the API types (camelCase on the wire, snake_case in Python) and what a CRD needs beyond them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Every spec/status type derives from this so field names match Kubernetes conventions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",  # the API server already pruned unknown fields
        frozen=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase dict as the API server stores it, without unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def preserve_unknown(description: str) -> dict[str, Any]:
    """json_schema_extra for a field holding a raw Kubernetes object (tolerations, affinity, volumes...).

    The API server validates those objects itself when they reach a Pod, so the CRD keeps them opaque.
    """
    return {"x-kubernetes-preserve-unknown-fields": True, "description": description}


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """One x-kubernetes-validations entry; fieldPath makes the API server's error name the field."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


@dataclass(frozen=True)
class ResourceDefinition:
    """What a CRD needs beyond the schema: names, printer columns, subresources."""

    kind: str
    plural: str
    singular: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, Any], ...] = ()
    scale: dict[str, str] | None = None  # specReplicasPath / statusReplicasPath / labelSelectorPath
    categories: tuple[str, ...] = ("kubeforge", "all")
    spec_validations: tuple[dict[str, Any], ...] = field(default=())
    # Rules on the whole object, for those that must see status (e.g. "immutable while running").
    root_validations: tuple[dict[str, Any], ...] = field(default=())
