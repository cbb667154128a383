"""Turns a pydantic model's JSON schema into a Kubernetes structural OpenAPI v3 schema.

Kubernetes refuses what pydantic emits by default: `$ref`/`$defs`, `anyOf` with
`type: null`, `title`, numeric `exclusiveMinimum` (OpenAPI 3.0 wants a boolean),
`additionalProperties: false` next to `properties`. Every node must carry a type.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

_DROP = {"title", "discriminator"}
_K8S_EXTENSIONS = (
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource",
)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema with every $ref inlined and pydantic-isms rewritten for the API server."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target = copy.deepcopy(defs[ref.rsplit("/", 1)[-1]])
    # Keys next to $ref (description, default, validations) override the target's.
    extra = {k: v for k, v in node.items() if k != "$ref"}
    target.update(extra)
    return _resolve(target, defs)


def _strip_null(node: dict[str, Any]) -> dict[str, Any]:
    """Optional[X] arrives as anyOf [X, null]; Kubernetes expresses optional by omission."""
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if not options:
            continue
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            merged = dict(kept[0])
            merged.update({k: v for k, v in node.items() if k != key})
            return merged
        node = dict(node, **{key: kept})
    return node


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _strip_null(_resolve(dict(node), defs))
    node = _strip_null(_resolve(node, defs))
    if node.get("x-kubernetes-preserve-unknown-fields"):
        out = {k: v for k, v in node.items() if k in _K8S_EXTENSIONS or k in ("description", "type")}
        out.setdefault("type", "object")
        if out["type"] == "array":
            # The marker belongs on the items: an array itself has no fields to preserve.
            out.pop("x-kubernetes-preserve-unknown-fields")
            out["items"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return out
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        return _convert_union(node, options, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key in ("anyOf", "oneOf"):
            continue
        if key == "properties":
            out["properties"] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _convert(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = _convert(value, defs)
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "default" and value is None:
            continue
        elif key == "const":
            # A one-value Literal: OpenAPI 3.0 has no const, and dropping it let the API server
            # accept any string the operator then could not parse (found by tests/integration/test_fuzz_api.py).
            out["enum"] = [value]
        else:
            out[key] = value
    if "type" not in out:
        out["type"] = "object" if "properties" in out or "additionalProperties" in out else "string"
    if "enum" in out:
        out["enum"] = [e for e in out["enum"] if e is not None]
    return out


def _convert_union(node: dict[str, Any], options: list[dict[str, Any]], defs: dict[str, Any]) -> dict[str, Any]:
    types = {o.get("type") for o in options}
    base = {k: v for k, v in node.items() if k in ("description", "default") or k.startswith("x-kubernetes")}
    if types <= {"integer", "string"}:
        return {**base, "x-kubernetes-int-or-string": True}
    if types <= {"integer", "number"}:
        return {**base, "type": "number"}
    # Unions of objects: keep it open; CEL rules on the parent pin down the shape.
    return {**base, "type": "object", "x-kubernetes-preserve-unknown-fields": True}
