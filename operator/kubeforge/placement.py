"""Will a group of pods ever fit its node pool? Nodes and a per-pod demand in, a verdict naming the numbers out.

Pure. "Never" means: even with the pool empty. A pod asking for more GPUs (or CPU, or memory)
than the largest node of the pool offers waits forever, and so does a gang of N pods when the
pool's nodes can hold fewer than N such pods at once. Both are spec mistakes the scheduler only
reports pod by pod, as a plain shortage that looks temporary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

EXCEEDS_LARGEST_NODE = "ExceedsLargestNode"
"""One pod asks for more of a resource than any node of the pool has."""
EXCEEDS_POOL = "ExceedsPoolCapacity"
"""The pool's nodes together cannot hold all the pods at once."""
NO_NODE_IN_POOL = "NoNodeInPool"
"""No schedulable node matches the node selector (and tolerates its taints)."""
FITS = "FitsPool"
"""The pool can hold every pod when it is free."""

_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")


def quantity(value: Any) -> float:
    """A Kubernetes quantity ("95330m", "1174016Mi", "8") as a number; unreadable counts as 0."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        return 0.0
    return float(match.group(1)) * _SUFFIX[match.group(2)]


@dataclass(frozen=True)
class Demand:
    """What each pod of the group asks for, and how many pods must run at once."""

    pods: int
    requests: dict[str, str]  # resource name -> quantity, per pod
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Verdict:
    fits: bool
    reason: str
    message: str


def judge(demand: Demand, nodes: Iterable[dict[str, Any]]) -> Verdict:
    """Whether `demand` can ever be placed on the nodes its selector and tolerations allow."""
    pool = [n for n in nodes if _eligible(n, demand)]
    where = _pool_name(demand.node_selector)
    if not pool:
        return Verdict(False, NO_NODE_IN_POOL, f"no schedulable node matches {where}")
    wanted = {r: quantity(q) for r, q in demand.requests.items() if quantity(q) > 0}
    for resource, amount in wanted.items():
        largest = max(_allocatable(n, resource) for n in pool)
        if amount > largest:
            return Verdict(False, EXCEEDS_LARGEST_NODE,
                           f"each pod asks for {demand.requests[resource]} {resource}; the largest node in {where} has {_show(largest, resource)}")
    if wanted:
        per_node = [min(int(_allocatable(n, r) // a) for r, a in wanted.items()) for n in pool]
        room = sum(per_node)
        if room < demand.pods:
            scarce = _scarce(wanted, pool)
            return Verdict(False, EXCEEDS_POOL,
                           f"{demand.pods} pods x {demand.requests[scarce]} {scarce} need room for {demand.pods}; "
                           f"{where} holds at most {room} ({len(pool)} nodes, {_show(sum(_allocatable(n, scarce) for n in pool), scarce)} {scarce} in all)")
    return Verdict(True, FITS, f"{where} can hold all {demand.pods} pods when free")


def _scarce(wanted: dict[str, float], pool: list[dict[str, Any]]) -> str:
    """The resource that limits the pods per node most (GPUs first on a tie)."""
    return min(wanted, key=lambda r: (sum(int(_allocatable(n, r) // wanted[r]) for n in pool), r != "nvidia.com/gpu"))


def _show(amount: float, resource: str) -> str:
    if resource == "memory":
        return f"{amount / 2**30:.0f}Gi"
    return f"{amount:g}"


def _pool_name(selector: dict[str, str]) -> str:
    if not selector:
        return "the cluster"
    return "pool " + ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _allocatable(node: dict[str, Any], resource: str) -> float:
    return quantity(((node.get("status") or {}).get("allocatable") or {}).get(resource, 0))


def _eligible(node: dict[str, Any], demand: Demand) -> bool:
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in demand.node_selector.items()):
        return False
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    return all(_tolerated(t, demand.tolerations) for t in spec.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute"))


def _tolerated(taint: dict[str, Any], tolerations: Iterable[dict[str, Any]]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists" and (not tol.get("key") or tol["key"] == taint.get("key")):
            return True
        if tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False
