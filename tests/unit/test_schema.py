"""pydantic models become structural schemas that Kubernetes accepts."""

import json
from typing import Any, Literal

from pydantic import Field

from kubeforge.api.base import ApiModel, cel, preserve_unknown
from kubeforge.api.schema import structural_schema


class Inner(ApiModel):
    max_nodes: int = Field(..., gt=0)


class Sample(ApiModel):
    model_config = {"json_schema_extra": {"x-kubernetes-validations": [cel("self.name != ''", "name must not be empty", ".name")]}}
    name: str
    mode: Literal["a", "b"] = "a"
    inner: Inner | None = None
    items: list[Inner] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    port: int | str = 80
    raw: dict[str, Any] | None = Field(None, json_schema_extra=preserve_unknown("opaque"))


def walk(node):
    """Every schema node (not the `properties` maps themselves)."""
    yield node
    for sub in node.get("properties", {}).values():
        yield from walk(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk(node[key])


def test_no_refs_titles_or_null_types_remain():
    text = json.dumps(structural_schema(Sample))
    assert "$ref" not in text and "$defs" not in text and '"title"' not in text and '"null"' not in text


def test_every_node_has_a_type_or_is_int_or_string():
    for node in walk(structural_schema(Sample)):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), node


def test_optional_nested_model_is_inlined_and_camel_cased():
    schema = structural_schema(Sample)
    assert schema["properties"]["inner"]["properties"]["maxNodes"]["type"] == "integer"
    assert schema["properties"]["items"]["items"]["required"] == ["maxNodes"]


def test_exclusive_minimum_becomes_openapi3_boolean():
    inner = structural_schema(Sample)["properties"]["inner"]["properties"]["maxNodes"]
    assert inner["minimum"] == 0 and inner["exclusiveMinimum"] is True


def test_int_or_string_and_preserved_objects():
    props = structural_schema(Sample)["properties"]
    assert props["port"]["x-kubernetes-int-or-string"] is True
    assert props["raw"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "description": "opaque"}


def test_cel_rules_and_enums_survive():
    schema = structural_schema(Sample)
    assert schema["x-kubernetes-validations"][0]["fieldPath"] == ".name"
    assert schema["properties"]["mode"]["enum"] == ["a", "b"]
