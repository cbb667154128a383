"""Which ModelEndpoints reference which TrainingJob, as a kopf index: a TrainingJob's events wake exactly its endpoints.

kopf fills the index from the ModelEndpoint watch itself (not from the reconciler, so an
endpoint is indexed before its first reconcile), drops a deleted endpoint's entries, and
starts no handler before the initial listing has been indexed, so after an operator
restart no TrainingJob event can miss an endpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import kopf

from kubeforge import GROUP, VERSION
from kubeforge.api.modelendpoint import KIND, PLURAL
from kubeforge.workqueue import WorkQueue

INDEX_ID = "endpoints_by_trainingjob"  # also the kwarg name kopf passes the index under


def endpoints_by_trainingjob(namespace: str, name: str, spec: Mapping[str, Any], **_: Any) -> dict[tuple[str, str], str]:
    """The index function: (namespace, referenced TrainingJob) -> this endpoint's name."""
    ref = ((spec.get("model") or {}).get("trainingJobRef") or {}).get("name")
    # {} and not None: on None kopf keeps the object's previous entries, so an endpoint that
    # moved from a trainingJobRef to a uri would still be woken by its old job.
    return {(namespace, ref): name} if ref else {}


def endpoints_for(index: Mapping[tuple[str, str], Iterable[str]], namespace: str, training_job: str) -> list[str]:
    return sorted(index.get((namespace, training_job), ()))


def waker(queue: WorkQueue) -> Callable[..., Awaitable[None]]:
    """The TrainingJob event handler: enqueue every endpoint the index says references the job."""

    async def wake_endpoints(namespace: str, name: str, endpoints_by_trainingjob: kopf.Index, **_: Any) -> None:
        for endpoint in endpoints_for(endpoints_by_trainingjob, namespace, name):
            queue.add(KIND, namespace, endpoint)

    return wake_endpoints


def setup(registry: kopf.OperatorRegistry, queue: WorkQueue) -> None:
    """Index the endpoints by their trainingJobRef, and let each TrainingJob event wake the ones that reference it."""
    kopf.index(GROUP, VERSION, PLURAL, id=INDEX_ID, registry=registry)(endpoints_by_trainingjob)
    kopf.on.event(GROUP, VERSION, "trainingjobs", id="wake-modelendpoints", registry=registry)(waker(queue))
