"""An in-memory stand-in for kubeforge.kube, injected into the reconciler shells by their unit tests.

It keeps objects by (kind, namespace, name) and, like the API server, bumps an object's
resourceVersion only when a write changed it and its generation only when its spec changed,
so a test can ask "did this pass change anything?" the way a watcher would see it.
Integration tests run the shells against the real API server.
"""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client.exceptions import ApiException

from kubeforge import FIELD_MANAGER

Key = tuple[str, str, str]  # kind, namespace, name


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386): dicts merge, None removes, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeKube:
    def __init__(self, *objects: dict[str, Any], failing_kinds: tuple[str, ...] = ()) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.failing_kinds = set(failing_kinds)  # writes to these kinds fail with a 500
        self.status_patches: list[tuple[str, str, dict[str, Any]]] = []  # (kind, name, patch)
        self.events: list[tuple[str, str, str]] = []
        self.revision = 1  # as etcd's: the first write is revision 2 (kubeforge.ownership.ABSENT relies on it)
        for obj in objects:
            self.store(obj)

    # -- what tests use to set the scene and look at the outcome --------------------------------

    def store(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("namespace", "ml")
        meta.setdefault("uid", f"uid-{obj['kind'].lower()}-{meta['name']}")
        meta.setdefault("generation", 1)
        self.revision += 1
        meta["resourceVersion"] = str(self.revision)
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def versions(self) -> dict[Key, str]:
        """Every object's resourceVersion: equal before and after a pass that changed nothing."""
        return {key: obj["metadata"]["resourceVersion"] for key, obj in self.objects.items()}

    def kinds(self) -> list[str]:
        return sorted(kind for kind, _, _ in self.objects)

    # -- the KubeClient protocol -----------------------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(obj) if obj else None

    def list_(self, api_version: str, kind: str, namespace: str | None, selector: str = "",
              field_selector: str = "") -> list[dict[str, Any]]:
        wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
        fields = dict(term.split("=", 1) for term in field_selector.split(",") if "=" in term)  # top-level fields only
        return [copy.deepcopy(o) for (k, ns, _), o in sorted(self.objects.items())
                if k == kind and ns == (namespace or "") and wanted.items() <= (o["metadata"].get("labels") or {}).items()
                and all(str(o.get(f)) == v for f, v in fields.items())]

    def apply(self, obj: dict[str, Any], field_manager: str = FIELD_MANAGER, if_changed: bool = False) -> dict[str, Any]:
        """Always applies: skipping unchanged objects is kube.apply's (tests/unit/test_applymemo.py)."""
        self._fail_if_asked(obj["kind"])
        meta = obj["metadata"]
        current = self.get(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        wanted = meta.get("resourceVersion")  # a precondition, as the API server reads it: 409 when it fails
        if wanted and current is not None and current["metadata"]["resourceVersion"] != wanted:
            raise ApiException(status=409, reason="Conflict")
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
        if current is None:
            return self.store(obj)
        return self._write(current, merged(current, {k: v for k, v in obj.items() if k != "status"}))

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str, propagation: str = "Background") -> bool:
        self._fail_if_asked(kind)
        return self.objects.pop((kind, namespace or "", name), None) is not None

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self._fail_if_asked(kind)
        self.status_patches.append((kind, name, copy.deepcopy(status)))
        current = self.get(api_version, kind, namespace, name)
        return self._write(current, merged(current, {"status": status}))

    def patch_merge(self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._fail_if_asked(kind)
        current = self.get(api_version, kind, namespace, name)
        return self._write(current, merged(current, patch))

    def emit_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def _write(self, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if new == current:
            return current  # the API server does not bump resourceVersion for a no-op write
        if new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = current["metadata"]["generation"] + 1
        self.revision += 1
        new["metadata"]["resourceVersion"] = str(self.revision)
        self.objects[(new["kind"], new["metadata"]["namespace"], new["metadata"]["name"])] = new
        return copy.deepcopy(new)

    def _fail_if_asked(self, kind: str) -> None:
        if kind in self.failing_kinds:
            raise ApiException(status=500, reason=f"{kind} writes fail in this test")
