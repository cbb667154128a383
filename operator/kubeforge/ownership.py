"""Never adopt: a child is applied only when it is absent or already controlled by the owner applying it.

Forced server-side apply on a deterministic name takes over whatever has that name: a
TrainingJob `ci` would run as someone's ServiceAccount `ci-trainer` and, owning it, have the
garbage collector delete it with the job. So before any child is applied, each one that is
not known to be ours is read; one that exists without our controller ownerReference stops
the whole apply (nothing is modified) with a NameConflict naming it.

A child once seen to be ours is remembered (by owner uid and its own uid) and applied with
its uid as a precondition: the API server refuses the apply if the object was deleted and
someone else's took the name, so the steady state costs no extra read.

With a thread pool, the reads go out together and the applies in waves (a child waits only for
the ones it needs: a RoleBinding for its Role, a workload for everything before it), so a new
owner's first pass costs three round trips to the API server instead of one per child.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any

from kubeforge import apierrors, kube
from kubeforge.api.common import ChildrenAppliedReason
from kubeforge.apierrors import Refusal, Refused

MAX_REMEMBERED = 50_000
# Kinds whose objects run pods: applied after every child listed before them (ServiceAccount,
# ConfigMaps, Service), so no pod starts without what it mounts or runs as.
WORKLOAD_KINDS = frozenset({"Job", "Deployment", "StatefulSet", "DaemonSet"})
# A RoleBinding's roleRef must exist for the API server's escalation check when the writer lacks `bind`.
NEEDS = {"RoleBinding": frozenset({"Role", "ClusterRole"})}


class NameConflict(Refused):
    """Children's names taken by objects this owner does not control: (kind, name, who holds it) each."""

    def __init__(self, taken: list[tuple[str, str, str]]) -> None:
        self.taken = taken
        objects = ", ".join(f"{kind} {name} ({holder})" for kind, name, holder in taken)
        verb = "exists" if len(taken) == 1 else "exist"
        message = (f"{objects} already {verb} and is not controlled by this resource; kubeforge will not take "
                   "it over: delete or rename it, or rename this resource")
        if len(taken) > 1:
            message = message.replace("and is not", "and are not").replace("take it over", "take them over").replace(
                "delete or rename it", "delete or rename them")
        target = ", ".join(f"{kind} {name}" for kind, name, _ in taken)
        super().__init__(Refusal(code=409, reason=ChildrenAppliedReason.NAME_CONFLICT, message=message, target=target))


def controller_uid(obj: dict[str, Any]) -> str | None:
    refs = obj["metadata"].get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def _holder(obj: dict[str, Any]) -> str:
    refs = obj["metadata"].get("ownerReferences") or []
    controller = next((r for r in refs if r.get("controller")), None)
    if controller:
        return f"controlled by {controller.get('kind')} {controller.get('name')}"
    return "it has no controller" if not refs else "owned by " + ", ".join(f"{r.get('kind')} {r.get('name')}" for r in refs)


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"]


class OwnedApplier:
    """Applies an owner's children through `client` (kubeforge.kube by default), refusing to adopt."""

    def __init__(self, client: Any = kube, capacity: int = MAX_REMEMBERED, pool: Executor | None = None) -> None:
        self.client = client
        self.capacity = capacity
        self.pool = pool  # None: one request after the other
        self._ours: OrderedDict[tuple[str, str, str, str], tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def apply_all(self, children: list[dict[str, Any]], owner_uid: str, checked: bool = False,
                  if_changed: bool = True) -> list[dict[str, Any] | None]:
        """Check every child first (unless `checked` by ensure_free), then apply them in order: a NameConflict
        comes before anything is written. With `if_changed`, a child this process applied unchanged within a
        relist period is not sent again, and its result is None (kubeforge.applymemo).

        Raises Refused (NameConflict, or a 4xx the API server will repeat until something changes);
        other errors (409, 429, 5xx, the network) pass through for the work queue to retry.
        """
        if not checked:
            self.ensure_free(children, owner_uid)

        def apply_one(child: dict[str, Any]) -> dict[str, Any] | None:
            with _refusals(child):
                return self._apply_checked(child, owner_uid, if_changed)

        applied: list[dict[str, Any] | None] = []
        for wave in waves(children):
            applied += self._each(apply_one, wave)
        return applied

    def apply(self, child: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        return self.apply_all([child], owner_uid)[0]

    def ensure_free(self, children: list[dict[str, Any]], owner_uid: str) -> None:
        """NameConflict naming every child whose name an object `owner_uid` does not control holds."""
        def taken_by_others(child: dict[str, Any]) -> list[tuple[str, str, str]]:
            with _refusals(child):
                return self._taken(child, owner_uid)

        taken = [t for found in self._each(taken_by_others, children) for t in found]
        if taken:
            raise NameConflict(taken)

    def _each(self, call: Callable[[dict[str, Any]], Any], children: list[dict[str, Any]]) -> list[Any]:
        """call(child) for each, in order; with a pool all at once. Every call finishes before the first
        error (in the children's order) is raised, so a wave is never left half-sent unknowingly."""
        if self.pool is None or len(children) < 2:
            return [call(child) for child in children]
        futures = [self.pool.submit(call, child) for child in children]
        errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return [f.result() for f in futures]

    def delete_if_owned(self, api_version: str, kind: str, namespace: str, name: str, owner_uid: str) -> bool:
        """Delete a child the spec no longer wants, but never someone else's object of that name."""
        current = self.client.get(api_version, kind, namespace, name)
        if current is None or controller_uid(current) != owner_uid:
            return False
        return self.client.delete(api_version, kind, namespace, name)

    def check(self, child: dict[str, Any], owner_uid: str) -> None:
        """Raises NameConflict when the name is taken by an object `owner_uid` does not control."""
        taken = self._taken(child, owner_uid)
        if taken:
            raise NameConflict(taken)

    def _taken(self, child: dict[str, Any], owner_uid: str) -> list[tuple[str, str, str]]:
        if self._remembered(child, owner_uid):
            return []
        api_version, kind, namespace, name = _key(child)
        current = self.client.get(api_version, kind, namespace or None, name)
        if current is not None and controller_uid(current) != owner_uid:
            return [(kind, name, _holder(current))]
        return []

    def _apply_checked(self, child: dict[str, Any], owner_uid: str, if_changed: bool = True) -> dict[str, Any] | None:
        known = self._remembered(child, owner_uid)
        if known:
            # The uid is a precondition: an object re-created under this name by someone else fails
            # the apply (the API server refuses to change an immutable uid) instead of being taken over.
            pinned = {**child, "metadata": {**child["metadata"], "uid": known}}
            try:
                result = self.client.apply(pinned, if_changed=if_changed)
                return self._applied(result, child, owner_uid) if result is not None else None
            except Exception as exc:
                if getattr(exc, "status", None) not in (409, 422):
                    raise
                self.forget(child)
                self.check(child, owner_uid)
        return self._applied(self.client.apply(child), child, owner_uid)

    def forget(self, child: dict[str, Any]) -> None:
        with self._lock:
            self._ours.pop(_key(child), None)

    def _remembered(self, child: dict[str, Any], owner_uid: str) -> str | None:
        with self._lock:
            entry = self._ours.get(_key(child))
        return entry[1] if entry and entry[0] == owner_uid else None

    def _applied(self, result: dict[str, Any], child: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        uid = (result or {}).get("metadata", {}).get("uid")
        if uid and controller_uid(result) == owner_uid:
            with self._lock:
                self._ours[_key(child)] = (owner_uid, uid)
                self._ours.move_to_end(_key(child))
                while len(self._ours) > self.capacity:
                    self._ours.popitem(last=False)
        return result


def waves(children: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The children in order, cut where one needs an earlier one of the same wave (NEEDS, WORKLOAD_KINDS)."""
    cut: list[list[dict[str, Any]]] = []
    for child in children:
        kind = child["kind"]
        current = {c["kind"] for c in cut[-1]} if cut else set()
        needs = NEEDS.get(kind, frozenset())
        if not cut or kind in WORKLOAD_KINDS or current & needs or current & WORKLOAD_KINDS:
            cut.append([child])
        else:
            cut[-1].append(child)
    return cut


@contextmanager
def _refusals(child: dict[str, Any]) -> Iterator[None]:
    """Turns a permanent API error on `child` into Refused, naming the child."""
    try:
        yield
    except Refused:
        raise
    except Exception as exc:
        if apierrors.is_permanent(exc):
            raise Refused(apierrors.refusal(exc, f"{child['kind']} {child['metadata']['name']}")) from exc
        raise


APPLIER = OwnedApplier()
