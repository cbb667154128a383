"""A canary server's own traffic, reported to the operator through the API server: requests, 5xx answers, p95 latency.

The metrics middleware counts every inference request (a POST: the /predict, KServe v1 and v2 routes) and keeps
the latencies of the last LATENCY_WINDOW of them. On a canary pod (KUBEFORGE_REPORT_CONFIGMAP set, with its
ServiceAccount's token mounted) a daemon thread merge-patches key <pod name> of that ConfigMap every few seconds
with {"requests", "errors", "p95Ms", "revision", "at"}, counted since the server started, which for a canary is
its bake. The operator reads the ConfigMap at the bake's end (modelendpoint/canary.py) and fails the canary on
spec.rollout.canary.maxErrorRate / maxP95Ms. Only the canary's pods get the token: the Role allows patching that
one ConfigMap and nothing else. A report that cannot be sent is logged and the next one tries again; serving
never waits on it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

from .. import apireport

log = logging.getLogger("kubeforge.serve.traffic")
LATENCY_WINDOW = 10000  # p95 over the most recent requests: bounded memory, recent behaviour


class TrafficStats:
    """Inference requests answered, those answered 5xx, and recent latencies. Called from the event loop only;
    the reporter thread reads a snapshot (a list copy of a deque under the GIL)."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self.requests = 0
        self.errors = 0
        self.latencies_ms: deque[float] = deque(maxlen=window)

    def record(self, method: str, status: int, seconds: float) -> None:
        if method != "POST":
            return  # probes, metrics and metadata are no traffic to judge
        self.requests += 1
        self.errors += status >= 500
        self.latencies_ms.append(seconds * 1000)

    def snapshot(self) -> dict:
        latencies = sorted(self.latencies_ms)
        p95 = latencies[max(0, math.ceil(0.95 * len(latencies)) - 1)] if latencies else None
        return {"requests": self.requests, "errors": self.errors, "p95Ms": None if p95 is None else round(p95, 3)}


class TrafficReporter:
    """Sends the snapshot to key `pod` of the ConfigMap every `every_s` seconds, on a daemon thread."""

    def __init__(self, stats: TrafficStats, api: tuple[str, str], namespace: str, configmap: str, pod: str, revision: str,
                 every_s: float, account_dir: Path = apireport.SERVICE_ACCOUNT_DIR) -> None:
        self.stats, self.api, self.namespace, self.configmap, self.pod = stats, api, namespace, configmap, pod
        self.revision, self.every_s, self.account_dir = revision, every_s, account_dir
        self.stopped = threading.Event()
        self.sent = 0  # reports the API server accepted

    def start(self) -> "TrafficReporter":
        threading.Thread(target=self._run, name="traffic-report", daemon=True).start()
        return self

    def stop(self) -> None:
        self.report()  # the last numbers, as the server goes
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.wait(self.every_s):
            self.report()

    def report(self) -> None:
        record = {**self.stats.snapshot(), "revision": self.revision,
                  "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            apireport.send(lambda token: apireport.configmap_key_request(
                self.api[0], self.api[1], self.namespace, self.configmap, self.pod, record, token), self.account_dir)
            self.sent += 1
        except Exception as exc:  # noqa: BLE001 - reporting is best effort, serving goes on
            log.warning("could not report traffic to configmap %s/%s: %s", self.namespace, self.configmap, exc)
