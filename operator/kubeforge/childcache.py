"""Children by owner, kept by kopf indexes that the child watches feed: reconcilers read them instead of listing each pass.

kopf calls no regular handler before every index has its initial list ("indexing" in kopf's
docs): the first call says every index is complete (LISTED). New work is queued before that,
from index functions (kubeforge.watches), so that a restart with thousands of live objects
does not keep it waiting for the lists; until then a pass reads its children from the API
server instead (Children.read), never from a half-filled index. A child the operator itself
just created may lag by one event; the passes that miss it re-apply it, which server-side
apply makes a no-op. Each child is kept as the projection the passes read
(kubeforge.projection), not its whole body.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import kopf

from kubeforge import metrics
from kubeforge.projection import project

log = logging.getLogger(__name__)


class Listed:
    """Whether kopf's indexes hold their initial lists; set by the first event handler kopf calls in this process."""

    def __init__(self) -> None:
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def handler_called(self) -> None:
        if not self._done.is_set():
            self._done.set()
            metrics.HANDLERS_SINCE.set_to_current_time()
            log.info("event handlers running: every watched kind is listed and indexed")


LISTED = Listed()


class ChildIndex:
    """Objects of one kind that carry `label`, keyed by (namespace, the label's value: the owner's name), as `keep` projects them."""

    def __init__(self, registry: kopf.OperatorRegistry, group: str, version: str, plural: str, label: str,
                 keep: Callable[[dict[str, Any]], dict[str, Any] | None] = project, listed: Listed = LISTED) -> None:
        self.id = f"index-{plural}-by-{label.rsplit('/', 1)[-1]}"
        self._index: Any = None  # kopf.Index, bound at startup
        self._listed = listed

        # async: kopf runs sync handlers in its thread pool, too slow for every pod event.
        @kopf.index(group, version, plural, labels={label: kopf.PRESENT}, id=self.id, registry=registry)
        async def _index(namespace: str, labels: dict[str, str], body: kopf.Body, **_: Any) -> dict:
            kept = keep(body)  # None: a child no pass reads from here
            return {(namespace, labels[label]): kept} if kept is not None else {}

        # Startup handlers get every index as a keyword argument named by its id.
        @kopf.on.startup(id=f"bind-{self.id}", registry=registry)
        async def _bind(**kwargs: Any) -> None:
            self.bind(kwargs[self.id])

    def bind(self, index: Any) -> None:
        """The kopf.Index this reads (kopf hands it to startup handlers)."""
        self._index = index

    @property
    def complete(self) -> bool:
        """Bound, and every index holds its initial list: what it lacks now, no pass wrote yet."""
        return self._index is not None and self._listed.done

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
