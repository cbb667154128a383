"""`kubectl explain` documents every spec field of both kinds: none shows <no description>."""

from __future__ import annotations

import pytest

from kubeforge.crds import build_crd, definitions


def undocumented(schema: dict, path: str) -> list[str]:
    missing = []
    for name, sub in (schema.get("properties") or {}).items():
        where = f"{path}.{name}"
        if not sub.get("description"):
            missing.append(where)
        missing += undocumented(sub, where)
        if sub.get("items"):
            missing += undocumented(sub["items"], where + "[]")
    return missing


@pytest.mark.parametrize("definition", definitions(), ids=lambda d: d.kind)
def test_every_spec_field_has_a_description(definition):
    schema = build_crd(definition)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert undocumented(schema["properties"]["spec"], "spec") == []
