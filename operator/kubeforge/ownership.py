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

An owner whose children should not exist yet (a new one: the caller says so with
`expect_absent`) skips the reads: each child goes out as a create-only apply (`create_only`),
which the API server answers with 409 when the name is taken, writing nothing. Only then is
the name read: a child of ours (a pass that died before its status write) is applied, anyone
else's stops the apply before the next wave, so before any workload.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any, TypeVar

from kubeforge import apierrors, kube
from kubeforge.api.common import ChildrenAppliedReason
from kubeforge.apierrors import Refusal, Refused

T = TypeVar("T")
MAX_REMEMBERED = 50_000
# A resourceVersion no stored object has: etcd's revisions start at 1 and every write takes the next,
# so an object's (its last write's revision) is at least 2. As a server-side apply's precondition it
# makes the apply create-only: an existing object fails the optimistic-lock check with 409 Conflict
# and is not modified; an absent one is created (the API server drops the version on create, in
# storage's PrepareObjectForStorage). A metadata.uid precondition cannot do this: the API server
# refuses it for an absent object ("uid mismatch ... no existing object was found"). A POST could,
# but it records the fields under an Update entry of our field manager beside the Apply one of every
# later pass, so a field the operator stops setting would never be removed.
ABSENT = "1"
# Kinds whose objects run pods: applied after every child listed before them (ServiceAccount,
# ConfigMaps, Service), so no pod starts without what it mounts or runs as...
WORKLOAD_KINDS = frozenset({"Job", "Deployment", "StatefulSet", "DaemonSet"})
# ...except these, which no pod needs to be admitted or started: a RoleBinding grants the pods' token
# what user code asks of the API server once it runs (a trainer's progress, seconds after start), and
# it waits for its Role. Listed last, before the workload, they share its wave: one round trip less.
NOT_NEEDED_TO_START = frozenset({"RoleBinding"})
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
                  if_changed: bool = True, expect_absent: bool = False) -> list[dict[str, Any] | None]:
        """Check every child first (unless `checked` by ensure_free), then apply them in order: a NameConflict
        comes before anything is written. With `if_changed`, a child this process applied unchanged within a
        relist period is not sent again, and its result is None (kubeforge.applymemo).

        `expect_absent` (a new owner): no reads first; each child not known as ours is created with a
        create-only apply, and a taken name stops the apply after its wave (so before the workload, which
        waits for every other child), naming every taken name; what the earlier waves created is the
        owner's own (its controller reference) and goes with it.

        Raises Refused (NameConflict, or a 4xx the API server will repeat until something changes);
        other errors (409, 429, 5xx, the network) pass through for the work queue to retry.
        """
        if not checked and not expect_absent:
            self.ensure_free(children, owner_uid)
        taken: dict[int, list[tuple[str, str, str]]] = {}

        def apply_one(i_child: tuple[int, dict[str, Any]]) -> dict[str, Any] | None:
            i, child = i_child
            with _refusals(child):
                if expect_absent and not self._remembered(child, owner_uid):
                    result, taken[i] = self._create(child, owner_uid)
                    return result
                return self._apply_checked(child, owner_uid, if_changed)

        applied: list[dict[str, Any] | None] = []
        numbered = list(enumerate(children))
        for wave in waves(numbered, kind=lambda i_child: i_child[1]["kind"]):
            applied += self._each(apply_one, wave)
            if any(taken.values()):
                later = [child for _, child in numbered[len(applied):]]
                self._raise_taken([t for _, found in sorted(taken.items()) for t in found], later, owner_uid)
        return applied

    def apply(self, child: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        return self.apply_all([child], owner_uid)[0]

    def ensure_free(self, children: list[dict[str, Any]], owner_uid: str) -> None:
        """NameConflict naming every child whose name an object `owner_uid` does not control holds."""
        self._raise_taken([], children, owner_uid)

    def _raise_taken(self, taken: list[tuple[str, str, str]], unchecked: list[dict[str, Any]], owner_uid: str) -> None:
        """NameConflict naming `taken` and every taken name among `unchecked` (read now); nothing when none is."""
        def taken_by_others(child: dict[str, Any]) -> list[tuple[str, str, str]]:
            with _refusals(child):
                return self._taken(child, owner_uid)

        taken = taken + [t for found in self._each(taken_by_others, unchecked) for t in found]
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

    def _create(self, child: dict[str, Any], owner_uid: str) -> tuple[dict[str, Any] | None, list[tuple[str, str, str]]]:
        """A create-only apply; on 409 the name is read: ours is applied, anyone else's is returned as taken."""
        try:
            return self._applied(self.client.apply(create_only(child)), child, owner_uid), []
        except Exception as exc:
            if getattr(exc, "status", None) != 409:
                raise
        found = self._taken(child, owner_uid)
        return (None, found) if found else (self._applied(self.client.apply(child), child, owner_uid), [])

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


def create_only(child: dict[str, Any]) -> dict[str, Any]:
    """`child` with the ABSENT precondition: applied, it is created, or refused with 409 if its name exists."""
    return {**child, "metadata": {**child["metadata"], "resourceVersion": ABSENT}}


def waves(children: list[T], kind: Callable[[T], str] = lambda child: child["kind"]) -> list[list[T]]:
    """The children in order, cut where one needs an earlier one of the same wave (NEEDS, WORKLOAD_KINDS,
    NOT_NEEDED_TO_START)."""
    cut: list[list[T]] = []
    for child in children:
        kind_ = kind(child)
        current = {kind(c) for c in cut[-1]} if cut else set()
        needs = NEEDS.get(kind_, frozenset())
        workload_waits = kind_ in WORKLOAD_KINDS and not current <= NOT_NEEDED_TO_START
        if not cut or workload_waits or current & needs or current & WORKLOAD_KINDS:
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
