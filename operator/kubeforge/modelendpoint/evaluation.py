"""The held-out evaluation step of a server pod (spec.rollout.promotion.evaluation): its init container, and what
the pods' statuses say about it. Pure.

The init container `model-eval` runs the server image (`python -m kubeforge_workloads.serve.evaluate`) with the
server container's env, mounts and resources, after the model download and before the server: it loads the model
as the server does, scores the held-out file and checks the gate (KUBEFORGE_EVAL_GATE, from gate.pod_thresholds).
A model that misses exits 1, so its pod never turns Ready and serves nothing; the kubelet retries it with backoff.
The verdict travels as the container's termination message, which the operator reads from the pod's status through
the API server: the same channel as the download step (download.py), so the pod needs no token and no port.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubeforge import contract, podspec, servecontract as sc, storage
from kubeforge.api.common import ObjectStorage
from kubeforge.api.modelendpoint import Evaluation
from kubeforge.modelendpoint import download

INIT_CONTAINER = "model-eval"
EVAL_COMMAND = ["python", "-m", "kubeforge_workloads.serve.evaluate"]


def add_evaluation_step(pod: dict[str, Any], server: dict[str, Any], evaluation: Evaluation, gate: list[dict[str, Any]],
                        store: ObjectStorage | None) -> None:
    """Append the init container: the server container as built, minus ports, probes and lifecycle, plus the eval env."""
    env = [
        *server.get("env", []),
        {"name": sc.EVAL_URI, "value": evaluation.uri},
        {"name": sc.EVAL_FORMAT, "value": evaluation.format},
        {"name": sc.EVAL_TEXT_COLUMN, "value": evaluation.text_column},
        {"name": sc.EVAL_LABEL_COLUMN, "value": evaluation.label_column},
        {"name": sc.EVAL_GATE, "value": json.dumps(gate, sort_keys=True, separators=(",", ":"))},
    ]
    mounts = list(server.get("volumeMounts", []))
    if storage.is_object_uri(evaluation.uri):  # fetched with the model's store settings and keys
        env += podspec.object_storage_env(store)
        volumes, store_mounts = podspec.object_storage_volumes(store, staging_read_only=True)
        known = {v["name"] for v in pod.get("volumes", [])}
        pod["volumes"] = [*pod.get("volumes", []), *(v for v in volumes if v["name"] not in known)]
        mounted = {m["name"] for m in mounts}
        mounts += [m for m in store_mounts if m["name"] not in mounted]
    container = {
        "name": INIT_CONTAINER,
        "image": server["image"],
        "command": list(EVAL_COMMAND),
        "env": env,
        "volumeMounts": mounts,
        "securityContext": server["securityContext"],
        "terminationMessagePath": contract.DEFAULT_TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if server.get("resources"):
        container["resources"] = server["resources"]
    pod["initContainers"] = [*pod.get("initContainers", []), container]


@dataclass(frozen=True)
class EvalReport:
    """What the pods' evaluation steps say: the first failure (None: none) and the metrics of a passed one."""

    failure: str | None = None
    metrics: dict[str, Any] | None = None


def evaluation_report(pods: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> EvalReport:
    """A failure in any pod wins (the model must not serve); else the metrics a passed step reported."""
    metrics = None
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        status = download.init_status(pod, INIT_CONTAINER)
        if status is None:
            continue
        done = (status.get("state") or {}).get("terminated")
        failed = done if done and done.get("exitCode") else (status.get("lastState") or {}).get("terminated")
        if failed and failed.get("exitCode"):
            return EvalReport(failure=describe_failure(pod["metadata"]["name"], failed))
        report = download.termination_report(done) if done else {}
        if metrics is None and report.get("passed") and isinstance(report.get("metrics"), dict):
            metrics = report["metrics"]
    return EvalReport(metrics=metrics)


def describe_failure(pod_name: str, terminated: dict[str, Any]) -> str:
    report = download.termination_report(terminated)
    if report.get("failed"):
        return f"held-out evaluation on {report.get('data', '?')}: {report['failed']} (pod {pod_name})"
    if report.get("error"):
        return f"held-out evaluation on {report.get('data', '?')} could not run: {report['error']} (pod {pod_name})"
    tail = (terminated.get("message") or terminated.get("reason") or "no message").strip()[-500:]
    return f"held-out evaluation exited with code {terminated.get('exitCode')}: {tail} (pod {pod_name})"
