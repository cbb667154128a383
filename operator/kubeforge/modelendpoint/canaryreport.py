"""A canary's traffic as its own server pods report it through the API server, and the verdict on it. Pure.

Strategy Canary judges the canary on its own error rate and p95 latency during the bake
(spec.rollout.canary.maxErrorRate, maxP95Ms), not only on pod health. Each canary server counts its
inference requests, 5xx answers and latencies (kubeforge_workloads.serve.traffic) and merge-patches key
<pod name> of the ConfigMap <endpoint>-canary-report every few seconds. The pod's token comes from the
ServiceAccount <endpoint>-canary, whose Role may patch that one ConfigMap and nothing else (resourceNames,
as the trainer's progress ConfigMap): the operator learns about pods only through the API server, needs no
Prometheus and dials no pod. These children exist only while a canary runs; the stable pods keep no token.

Why not Prometheus: a cluster need not have one, and the operator would need its address and a query per
endpoint. The server still exposes the same numbers on /metrics for dashboards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubeforge import podspec, servecontract as sc
from kubeforge.api.modelendpoint import Canary

DOWNWARD = {sc.POD_NAME: "metadata.name", sc.POD_NAMESPACE: "metadata.namespace"}


def account(endpoint: str) -> str:
    """The canary pods' ServiceAccount, and the name of its Role and RoleBinding."""
    return f"{endpoint}-canary"


def config_map(endpoint: str) -> str:
    return f"{endpoint}-canary-report"


def build_children(owner: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """ServiceAccount, the empty report ConfigMap, the Role allowing a patch of it alone, the RoleBinding; in the
    order the canary pods need them. The operator never applies the ConfigMap's data, so reports are never reset
    by a pass (they go with the ConfigMap when the canary does)."""
    name, namespace = owner["metadata"]["name"], owner["metadata"]["namespace"]

    def meta(child: str) -> dict[str, Any]:
        return {"name": child, "namespace": namespace, "labels": dict(labels), "ownerReferences": [podspec.owner_reference(owner)]}

    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"], "resourceNames": [config_map(name)]}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(account(name)), "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(config_map(name))},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(account(name)), "rules": [rule]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(account(name)),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account(name)},
         "subjects": [{"kind": "ServiceAccount", "name": account(name), "namespace": namespace}]},
    ]


def absent(endpoint: str) -> list[tuple[str, str, str]]:
    return [("rbac.authorization.k8s.io/v1", "RoleBinding", account(endpoint)), ("rbac.authorization.k8s.io/v1", "Role", account(endpoint)),
            ("v1", "ConfigMap", config_map(endpoint)), ("v1", "ServiceAccount", account(endpoint))]


def reporting_pod_template(template: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """The canary's pod template with the token of its ServiceAccount (mounted for this pod only: the account
    itself mounts none) and the report env on the server container."""
    pod = dict(template["spec"])
    env = [{"name": sc.REPORT_CONFIGMAP, "value": config_map(endpoint)}]
    env += [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": path}}} for k, path in DOWNWARD.items()]
    pod["containers"] = [{**c, "env": [*c.get("env", []), *env]} if i == 0 else c for i, c in enumerate(pod["containers"])]
    pod.update(serviceAccountName=account(endpoint), automountServiceAccountToken=True)
    return {**template, "spec": pod}


@dataclass(frozen=True)
class Traffic:
    requests: int = 0
    errors: int = 0
    p95_ms: float | None = None  # the worst pod's
    worst_pod: str | None = None
    pods: int = 0  # canary pods that reported

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def describe(self) -> str:
        if not self.requests:
            return f"no requests reported by {self.pods} pod(s)"
        p95 = f", p95 {self.p95_ms:g} ms" if self.p95_ms is not None else ""
        return f"{self.requests} requests, {self.errors} answered 5xx (error rate {self.error_rate:.3g}){p95}"


def traffic(report_map: dict[str, Any] | None, pod_names: list[str]) -> Traffic:
    """The reports of these pods summed; p95 is the worst pod's (a conservative bound, no histogram merge)."""
    data = (report_map or {}).get("data") or {}
    requests = errors = pods = 0
    worst: tuple[float, str] | None = None
    for pod_name in pod_names:
        try:
            record = json.loads(data.get(pod_name) or "")
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        pods += 1
        requests += int(record.get("requests") or 0)
        errors += int(record.get("errors") or 0)
        p95 = record.get("p95Ms")
        if isinstance(p95, (int, float)) and (worst is None or p95 > worst[0]):
            worst = (float(p95), pod_name)
    return Traffic(requests, errors, worst[0] if worst else None, worst[1] if worst else None, pods)


def failure(seen: Traffic, limits: Canary) -> str | None:
    """Why the canary's traffic fails spec.rollout.canary's limits, naming value and limit; None when it passes."""
    if seen.requests and seen.error_rate > limits.max_error_rate:
        return (f"error rate {seen.error_rate:.3g} ({seen.errors} of {seen.requests} requests answered 5xx) exceeds"
                f" maxErrorRate {limits.max_error_rate:g}")
    if seen.p95_ms is not None and seen.p95_ms > limits.max_p95_ms:
        return f"p95 latency {seen.p95_ms:g} ms (pod {seen.worst_pod}) exceeds maxP95Ms {limits.max_p95_ms}"
    return None
