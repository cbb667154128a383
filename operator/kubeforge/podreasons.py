"""Why pods do not run, in one line: the first blocking reason among a workload's pods, summarised.

Pure: pods as the API server returns them (dicts) in, a `Blocker` out. The kubelet and the
scheduler already said why, in places a user has to go and find (`kubectl describe pod`): the
PodScheduled condition's message, a container's waiting reason, its last termination. This module
reads them so that a TrainingJob's or ModelEndpoint's own status can say it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

# Reasons, CamelCase; the REASON printer column shows them. Ordered from the most to the least
# blocking: the first one found among the pods in this order is the one reported.
MISSING_VOLUME = "MissingVolume"
"""A PersistentVolumeClaim the pod mounts does not exist (the scheduler waits for it)."""
CONFIG_ERROR = "CreateContainerConfigError"
"""The kubelet cannot build the container: a Secret or ConfigMap it references is missing."""
IMAGE_PULL = "ImagePullError"
"""The image cannot be pulled (ErrImagePull, ImagePullBackOff, InvalidImageName)."""
OOM_KILLED = "OOMKilled"
"""A container was killed for exceeding its memory limit."""
CRASH_LOOP = "CrashLoopBackOff"
"""A container keeps exiting and the kubelet backs off restarting it."""
INSUFFICIENT = "Insufficient"
"""Prefix: no node has enough of a resource left (InsufficientGPU, InsufficientCPU, InsufficientMemory)."""
UNTOLERATED_TAINT = "UntoleratedTaint"
"""The nodes that would fit carry a taint the pod does not tolerate."""
NO_MATCHING_NODE = "NoMatchingNode"
"""The pod's node selector or affinity matches no node."""
UNSCHEDULABLE = "Unschedulable"
"""The scheduler cannot place the pod, for a reason not summarised above (its message is kept)."""
NOT_READY = "ReadinessProbeFailing"
"""The container runs but its readiness probe fails."""
CONTAINER_WAITING = "ContainerWaiting"
"""A container waits for another reason the kubelet named (e.g. ContainerCreating past a deadline)."""

_SHORT_RESOURCE = {"nvidia.com/gpu": "GPU", "cpu": "CPU", "memory": "Memory", "ephemeral-storage": "Storage", "pods": "PodSlots"}
_PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable")
_CONFIG_ERRORS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class Blocker:
    """The first blocking reason: a short CamelCase `reason`, a one-line `message`, how many pods share it."""

    reason: str
    message: str
    pods: int = 1
    pod: str = ""  # one of the pods it names

    def describe(self, total: int | None = None) -> str:
        """`message`, prefixed with how many pods it holds back (`2/6 pods: ...`)."""
        share = f"{self.pods}/{total} pods" if total else (f"{self.pods} pods" if self.pods > 1 else f"pod {self.pod}")
        return f"{share}: {self.message}"


def first_blocker(pods: Iterable[dict[str, Any]], gpu_resource: str = "nvidia.com/gpu") -> Blocker | None:
    """The most blocking reason among `pods` (live ones; terminating pods are skipped), or None."""
    found: dict[int, list[tuple[str, Blocker]]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        blocker = pod_blocker(pod, gpu_resource)
        if blocker is not None:
            found.setdefault(_rank(blocker.reason), []).append((pod["metadata"]["name"], blocker))
    if not found:
        return None
    same = found[min(found)]
    name, first = same[0]
    count = sum(1 for _, b in same if b.reason == first.reason)
    return Blocker(first.reason, first.message, count, name)


_ORDER = (MISSING_VOLUME, CONFIG_ERROR, IMAGE_PULL, OOM_KILLED, CRASH_LOOP, INSUFFICIENT, UNTOLERATED_TAINT,
          NO_MATCHING_NODE, UNSCHEDULABLE, NOT_READY, CONTAINER_WAITING)


def _rank(reason: str) -> int:
    return next((i for i, r in enumerate(_ORDER) if reason.startswith(r)), len(_ORDER))


def pod_blocker(pod: dict[str, Any], gpu_resource: str = "nvidia.com/gpu") -> Blocker | None:
    """Why this one pod is held back, or None when it runs (or finished) as it should."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    scheduled = _condition(status, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        reason, message = summarise_scheduler_message(scheduled.get("message") or "", gpu_resource)
        return Blocker(reason, message, pod=name)
    containers = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    return next((b for b in (_container_blocker(name, c) for c in containers) if b), None) or _not_ready(name, status)


def _container_blocker(pod: str, container: dict[str, Any]) -> Blocker | None:
    cname = container.get("name", "?")
    waiting = (container.get("state") or {}).get("waiting") or {}
    last = (container.get("lastState") or {}).get("terminated") or {}
    why, detail = waiting.get("reason") or "", _first_line(waiting.get("message"))
    if why in _PULL_ERRORS:
        return Blocker(IMAGE_PULL, f"{why}: container {cname} image {container.get('image', '?')}" + (f": {detail}" if detail else ""), pod=pod)
    if why in _CONFIG_ERRORS:
        return Blocker(CONFIG_ERROR, f"{why}: container {cname}: {detail or 'see the pod events'}", pod=pod)
    if last.get("reason") == "OOMKilled" and (why == "CrashLoopBackOff" or not container.get("ready")):
        return Blocker(OOM_KILLED, f"container {cname} was OOMKilled (exit code {last.get('exitCode', 137)}), "
                                   f"restarted {container.get('restartCount', 0)} times: raise its memory limit", pod=pod)
    if why == "CrashLoopBackOff":
        return Blocker(CRASH_LOOP, _crash_message(cname, last, container.get("restartCount", 0)), pod=pod)
    if why and why not in ("ContainerCreating", "PodInitializing"):
        return Blocker(CONTAINER_WAITING, f"container {cname} waiting: {why}" + (f": {detail}" if detail else ""), pod=pod)
    return None


def _crash_message(cname: str, last: dict[str, Any], restarts: int) -> str:
    code = last.get("exitCode")
    message = f"container {cname} exited with code {code}" if code is not None else f"container {cname} keeps exiting"
    first = _first_line(last.get("message"))
    if first:
        message += f": {first}"
    elif last.get("reason") and last.get("reason") != "Error":
        message += f" ({last['reason']})"
    return f"{message}; restarted {restarts} times"


def _not_ready(pod: str, status: dict[str, Any]) -> Blocker | None:
    """Running, every container started, yet not Ready: the readiness probe fails."""
    if status.get("phase") != "Running":
        return None
    ready = _condition(status, "Ready")
    if not ready or ready.get("status") != "False":
        return None
    unready = [c.get("name", "?") for c in status.get("containerStatuses") or [] if not c.get("ready") and (c.get("state") or {}).get("running")]
    if not unready:
        return None
    return Blocker(NOT_READY, f"container {', '.join(unready)} running but not ready (readiness probe failing)", pod=pod)


def with_probe_message(blocker: Blocker, events: Iterable[dict[str, Any]]) -> Blocker:
    """Adds the kubelet's newest `Unhealthy` event text (`Readiness probe failed: ...`) for the named pod."""
    if blocker.reason != NOT_READY:
        return blocker
    probes = [e for e in events if e.get("reason") == "Unhealthy" and (e.get("involvedObject") or {}).get("name") == blocker.pod
              and "Readiness probe failed" in (e.get("message") or "")]
    if not probes:
        return blocker
    newest = max(probes, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    message = f"{blocker.message}: {_first_line(newest.get('message'))}"
    return Blocker(blocker.reason, message, blocker.pods, blocker.pod)


# The scheduler's FitError: "0/9 nodes are available: 4 Insufficient nvidia.com/gpu, 5 node(s) didn't match
# Pod's node affinity/selector. preemption: 0/9 nodes are available: ..." (pkg/scheduler/framework/types.go).
_AVAILABLE = re.compile(r"^\s*(\d+)/(\d+) nodes are available:\s*(.*)$", re.S)
_BUCKET = re.compile(r"^(\d+) (.*)$")
_PVC_MISSING = re.compile(r'persistentvolumeclaim "([^"]+)" not found')


def summarise_scheduler_message(message: str, gpu_resource: str = "nvidia.com/gpu") -> tuple[str, str]:
    """(reason, message): the scheduler's message shortened to the cause that matters most."""
    head = message.split(" preemption:")[0].strip().rstrip(".")
    pvc = _PVC_MISSING.search(head)
    if pvc:
        return MISSING_VOLUME, f'persistentvolumeclaim "{pvc.group(1)}" not found'
    if "unbound immediate PersistentVolumeClaims" in head:
        return MISSING_VOLUME, "pod has unbound immediate PersistentVolumeClaims"
    match = _AVAILABLE.match(head)
    if not match:
        return UNSCHEDULABLE, _clip(head) or "unschedulable"
    total = int(match.group(2))
    buckets = _buckets(match.group(3))
    selector_miss = sum(n for n, text in buckets if "didn't match Pod's node affinity/selector" in text)
    others = [(n, text) for n, text in buckets if "didn't match Pod's node affinity/selector" not in text]
    if not others:
        return NO_MATCHING_NODE, f"node selector/affinity matches none of the {total} nodes"
    tail = f" ({selector_miss} other nodes outside the node selector)" if selector_miss else ""
    short = [(n, text[len("Insufficient "):]) for n, text in others if text.startswith("Insufficient ")]
    if short:
        short.sort(key=lambda item: (item[1] != gpu_resource, item[1] not in ("cpu", "memory"), -item[0]))
        n, resource = short[0]
        return INSUFFICIENT + _SHORT_RESOURCE.get(resource, "Resources"), f"Insufficient {resource} on {n} of {total} nodes{tail}"
    taints = [(n, text) for n, text in others if "untolerated taint" in text]
    if taints:
        n, text = taints[0]
        return UNTOLERATED_TAINT, f"{n} of {total} nodes have an {text[text.index('untolerated'):]}{tail}"
    return UNSCHEDULABLE, _clip(head)


def _buckets(text: str) -> list[tuple[int, str]]:
    """'4 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint {a: b}' -> [(4, ...), (1, ...)]."""
    parts, depth, current = [], 0, ""
    for char in text:  # a taint's {key: value} may hold ", "
        depth += char == "{"
        depth -= char == "}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    buckets = []
    for part in (p.strip() for p in parts):
        m = _BUCKET.match(part)
        if m:
            buckets.append((int(m.group(1)), m.group(2).strip()))
    return buckets


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def _first_line(text: str | None) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return _clip(line)


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."
