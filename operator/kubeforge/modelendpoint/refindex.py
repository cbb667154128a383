"""Which ModelEndpoints reference which TrainingJob: lets a TrainingJob event wake exactly its endpoints.

Filled by the reconciler (worker threads), read by the TrainingJob watch handler
(kopf's event loop), hence the lock. After an operator restart it refills as the
initial listing reconciles every endpoint; an endpoint reconciled after its job
changed reads the job fresh anyway, so nothing is missed in between.
"""

from __future__ import annotations

import threading


class RefIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[tuple[str, str], str] = {}  # (namespace, endpoint) -> training job

    def set(self, namespace: str, endpoint: str, training_job: str | None) -> None:
        with self._lock:
            if training_job:
                self._refs[(namespace, endpoint)] = training_job
            else:
                self._refs.pop((namespace, endpoint), None)

    def endpoints_for(self, namespace: str, training_job: str) -> list[str]:
        with self._lock:
            return sorted(ep for (ns, ep), job in self._refs.items() if ns == namespace and job == training_job)


INDEX = RefIndex()
