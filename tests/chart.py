"""Renders the Helm chart for tests (helm template) and judges RBAC rules: wildcards and secrets are forbidden.

Shared by tests/unit/test_chart_*.py and tests/integration/test_chart_*.py. Tests that
need helm skip with the reason when it is absent, and fail when KUBEFORGE_REQUIRE_CLUSTER=1
(CI builds it with hack/build-binaries.sh helm).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "kubeforge"
CACHE_BIN = Path(os.environ.get("KUBEFORGE_CACHE", Path.home() / ".cache" / "kubeforge")) / "k8s-v1.34.4" / "bin"


def helm_binary() -> str:
    """The pinned helm from the cache, else one on PATH; skip (or fail in CI) when there is none."""
    cached = CACHE_BIN / "helm"
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    found = shutil.which("helm")
    if found:
        return found
    reason = f"helm not built: run hack/build-binaries.sh helm (looked in {CACHE_BIN} and PATH)"
    if os.environ.get("KUBEFORGE_REQUIRE_CLUSTER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def helm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """helm with `env` added to ours; without a KUBECONFIG in it, only offline commands make sense."""
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def render_text(values: dict[str, Any] | None = None, release: str = "kubeforge", namespace: str = "kubeforge-system") -> str:
    """`helm template` with `values` given as a values file, so lists and maps pass unmangled."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    values_file = None
    if values:
        values_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"kubeforge-values-{os.getpid()}-{release}.yaml"
        values_file.write_text(yaml.safe_dump(values))
        args += ["--values", str(values_file)]
    try:
        result = helm(*args)
    finally:
        if values_file:
            values_file.unlink(missing_ok=True)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return result.stdout


def render(values: dict[str, Any] | None = None, **kwargs: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render_text(values, **kwargs)) if doc]


def objects(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = objects(docs, kind)
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


def release_for(namespace: str) -> str:
    """A short release name, unique per test namespace (its random suffix): names derived from it stay well under 63."""
    return f"kf-{namespace.rsplit('-', 1)[-1]}"


def forbidden_grants(rules: list[dict[str, Any]]) -> list[str]:
    """Why each rule is too broad: a wildcard anywhere, or any access to secrets. Empty when all are fine."""
    problems = []
    for i, rule in enumerate(rules):
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            if any("*" in value for value in rule.get(key) or []):
                problems.append(f"rule {i}: wildcard in {key}: {rule[key]}")
        resources = {r.split("/")[0] for r in rule.get("resources") or []}
        if "secrets" in resources:
            problems.append(f"rule {i}: grants {rule.get('verbs')} on secrets")
    return problems


def rbac_rules(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """`Kind/namespace/name` -> rules, for every Role and ClusterRole the chart renders."""
    return {
        f"{d['kind']}/{d['metadata'].get('namespace', '')}/{d['metadata']['name']}": d.get("rules") or []
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
