"""Hypothesis strategies read from a CRD's structural schema, and mutations that break one field.

`valid(schema)` draws objects the OpenAPI part of the schema admits (types, bounds, enums,
patterns, required keys); CEL rules are left to the API server, so some draws are still
refused. `mutated(schema)` draws a valid object and breaks one field it contains (a wrong type,
a bound crossed, a value outside the enum or the pattern, an unknown key), returning the object
and the dotted path of the field the API server's refusal must name.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

TEXT = st.text(alphabet=string.ascii_lowercase + string.digits + "-./_ ", max_size=12)
OPAQUE = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | TEXT,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(TEXT, inner, max_size=2),
    max_leaves=4,
)


def valid(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if node.get("x-kubernetes-int-or-string"):
        return st.integers(0, 100) | TEXT
    kind = node.get("type")
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return st.dictionaries(TEXT.filter(bool), OPAQUE, max_size=2)
    if kind == "object":
        return _object(node)
    if kind == "array":
        return st.lists(valid(node.get("items", {"type": "string"})), min_size=node.get("minItems", 0),
                        max_size=max(node.get("minItems", 0), 3))
    if kind == "integer":
        low, high = _bounds(node, -(2**40), 2**40)
        return st.integers(int(low), int(high))
    if kind == "number":
        low, high = _bounds(node, -1e6, 1e6)
        return st.floats(low, high, exclude_min=bool(node.get("exclusiveMinimum")),
                         exclude_max=bool(node.get("exclusiveMaximum")), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if "pattern" in node:
        return st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: len(s) <= 253)
    return st.text(min_size=node.get("minLength", 0), max_size=node.get("maxLength", 20))


def _bounds(node: dict[str, Any], low: float, high: float) -> tuple[float, float]:
    return node.get("minimum", low), node.get("maximum", high)


def _object(node: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = node.get("properties")
    if props is None:
        values = node.get("additionalProperties") or {"type": "string"}
        return st.dictionaries(TEXT.filter(bool), valid(values), max_size=2)
    required = set(node.get("required", []))
    fields = {name: valid(sub) for name, sub in props.items()}

    @st.composite
    def draw(draw_) -> dict[str, Any]:
        present = [n for n in fields if n in required or draw_(st.booleans())]
        return {n: draw_(fields[n]) for n in present}

    return draw()


def breakable(obj: Any, node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, schema node) of every field in `obj` whose schema gives a way to break it."""
    found = []
    if path and any(k in node for k in ("enum", "minimum", "maximum", "pattern", "minLength", "type")) \
            and not node.get("x-kubernetes-preserve-unknown-fields") and not node.get("x-kubernetes-int-or-string"):
        found.append((path, node))
    if isinstance(obj, dict) and "properties" in node:
        for key, value in obj.items():
            if key in node["properties"]:
                found += breakable(value, node["properties"][key], f"{path}.{key}")
    return found


def broken(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value `node` refuses."""
    options: list[st.SearchStrategy[Any]] = []
    kind = node.get("type")
    options.append(st.just([1, 2]) if kind != "array" else st.just("not-a-list"))
    if kind in ("integer", "number"):
        if "minimum" in node:
            options.append(st.just(node["minimum"] - 1))
        if "maximum" in node:
            options.append(st.just(node["maximum"] + 1))
        options.append(st.just("seven"))
    if "enum" in node:
        options.append(st.just("not-one-of-them"))
    if "pattern" in node:
        options.append(st.just("Not A Valid Value!"))
    if node.get("minLength"):
        options.append(st.just(""))
    if kind == "object":
        options.append(st.just("not-an-object"))
    if kind in ("string", "boolean"):
        options.append(st.just({"nested": 1}))
    return st.one_of(options)


@st.composite
def mutated(draw, node: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A valid object with one field broken, and the field's dotted path (e.g. '.runPolicy.backoffLimit')."""
    obj = draw(valid(node))
    targets = breakable(obj, node)
    if not targets:
        return {**obj, "notAField": 1}, ".notAField"
    path, sub = draw(st.sampled_from(targets))
    value = draw(broken(sub))
    parent = obj
    *parents, leaf = path.strip(".").split(".")
    for key in parents:
        parent = parent[key]
    parent[leaf] = value
    return obj, path
