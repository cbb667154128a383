"""Children by owner, kept by kopf indexes that the child watches feed: reconcilers read them instead of listing each pass.

kopf calls no regular handler before every index has its initial list ("indexing" in kopf's
docs), and the reconcilers only run for keys those handlers enqueued, so the first pass
already reads a complete cache. A child the operator itself just created may lag by one
event; the passes that miss it re-apply it, which server-side apply makes a no-op.
Each child is kept as the projection the passes read (kubeforge.projection), not its whole body.
"""

from __future__ import annotations

from typing import Any, Callable

import kopf

from kubeforge.projection import project


class ChildIndex:
    """Objects of one kind that carry `label`, keyed by (namespace, the label's value: the owner's name)."""

    def __init__(self, registry: kopf.OperatorRegistry, group: str, version: str, plural: str, label: str,
                 keep: Callable[[dict[str, Any]], dict[str, Any]] = project) -> None:
        self.id = f"index-{plural}-by-{label.rsplit('/', 1)[-1]}"
        self._index: Any = None  # kopf.Index, bound at startup

        # async: kopf runs sync handlers in its thread pool, too slow for every pod event.
        @kopf.index(group, version, plural, labels={label: kopf.PRESENT}, id=self.id, registry=registry)
        async def _index(namespace: str, labels: dict[str, str], body: kopf.Body, **_: Any) -> dict:
            return {(namespace, labels[label]): keep(body)}

        # Startup handlers get every index as a keyword argument named by its id.
        @kopf.on.startup(id=f"bind-{self.id}", registry=registry)
        async def _bind(**kwargs: Any) -> None:
            self._index = kwargs[self.id]

    @property
    def bound(self) -> bool:
        return self._index is not None

    def get(self, namespace: str, owner: str) -> list[dict[str, Any]]:
        """The owner's children as last seen. Called from worker threads: list() of a dict's values
        runs in C under the GIL, so it never sees the event loop's update half-done."""
        try:
            return list(self._index[(namespace, owner)])
        except KeyError:  # no child seen yet, or the last one just went
            return []


def trimmed(body: kopf.Body) -> dict[str, Any]:
    """The object without managedFields (often half of it), as plain dicts."""
    obj = dict(body)
    obj["metadata"] = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    return obj
