"""The model download step of an s3:// endpoint: the init container that fetches and verifies the model, and what its pods say about it.

Pure: the pod template pieces in, and the pods' init-container statuses in, a DownloadReport out.
The init container runs the server image (`python -m kubeforge_workloads.serve.modelfetch`),
writes the model into the staging emptyDir the server then reads (read-only), and ends with a
one-line JSON termination message: {"digest", ...} on success, {"reason", "object", "error"} on
failure. The kubelet restarts a failed init container with backoff, so a fixed Secret or a
model uploaded late heals without the operator; meanwhile the condition says what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubeforge import contract, podspec, servecontract as sc, storage
from kubeforge.api.common import ObjectStorage, Resources

INIT_CONTAINER = "model-fetch"
FETCH_COMMAND = ["python", "-m", "kubeforge_workloads.serve.modelfetch"]


def fetch_init_container(image: str, location: storage.Location, store: ObjectStorage | None, resources: Resources,
                         digest: str | None) -> dict[str, Any]:
    """The init container: the server image, the serving contract's model env, the store's env and keys."""
    env = [
        {"name": sc.MODEL_URI, "value": location.uri},
        {"name": sc.MODEL_DIR, "value": location.local_path},
        *([{"name": sc.MODEL_DIGEST, "value": digest}] if digest else []),
        *podspec.object_storage_env(store),
    ]
    container: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "image": image,
        "command": list(FETCH_COMMAND),
        "env": env,
        "volumeMounts": podspec.object_storage_volumes(store)[1],
        "securityContext": podspec.container_security_context(),
        "terminationMessagePath": contract.DEFAULT_TERMINATION_LOG,
        # A crash before the report is written (an import error, OOM) still explains itself.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    # CPU and memory as the server's (a download needs no GPU; init containers count towards the pod's max).
    cpu_memory = podspec.container_resources(Resources(cpu=resources.cpu, memory=resources.memory), "")
    if cpu_memory:
        container["resources"] = cpu_memory
    return container


def add_download_step(pod: dict[str, Any], server: dict[str, Any], image: str, location: storage.Location,
                      store: ObjectStorage | None, resources: Resources, digest: str | None) -> None:
    """Put the init container and the staging volume into a server pod spec; the server mounts the staging dir read-only."""
    volumes, _ = podspec.object_storage_volumes(store)
    _, server_mounts = podspec.object_storage_volumes(None, staging_read_only=True)
    pod["initContainers"] = [fetch_init_container(image, location, store, resources, digest)]
    pod["volumes"] = [*pod.get("volumes", []), *volumes]
    server["volumeMounts"] = [*server.get("volumeMounts", []), *server_mounts]


@dataclass(frozen=True)
class DownloadReport:
    """What the server pods' download steps say: a failure to show (None: none), and the digest Ready pods serve."""

    failure: str | None = None
    digest: str | None = None


def download_report(pods: list[dict[str, Any]]) -> DownloadReport:
    """Newest failure first; the served digest from the Ready pods' successful downloads."""
    failures, digests = [], []
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True):
        status = init_status(pod, INIT_CONTAINER)
        if status is None:
            continue
        current, last = status.get("state") or {}, status.get("lastState") or {}
        done = current.get("terminated")
        if done and done.get("exitCode") == 0:
            if _ready(pod) and (report := termination_report(done)).get("digest"):
                digests.append(report["digest"])
            continue
        # Failed now, or waiting/retrying after a failure (CrashLoopBackOff): the last failure is the story.
        failed = done if done else last.get("terminated")
        if failed and failed.get("exitCode"):
            failures.append(describe_failure(pod["metadata"]["name"], failed))
    return DownloadReport(failures[0] if failures else None, digests[0] if digests else None)


def describe_failure(pod_name: str, terminated: dict[str, Any]) -> str:
    report = termination_report(terminated)
    if "reason" in report:
        return f"{report['reason']}: {report.get('object', '?')}: {report.get('error', '')} (pod {pod_name})"
    tail = (terminated.get("message") or terminated.get("reason") or "no message").strip()[-500:]
    return f"model download exited with code {terminated.get('exitCode')}: {tail} (pod {pod_name})"


def init_status(pod: dict[str, Any], container: str) -> dict[str, Any] | None:
    """The status of the pod's init container `container`, as the kubelet reports it."""
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if status.get("name") == container:
            return status
    return None


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def termination_report(terminated: dict[str, Any]) -> dict[str, Any]:
    """A terminated container's JSON termination message ({} when it is none)."""
    try:
        parsed = json.loads(terminated.get("message") or "")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
