"""Prometheus metrics of one server, in its own registry (the requests-in-flight gauge feeds the HPA)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from kubeforge import servecontract as sc

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("kubeforge_requests", "HTTP requests by route template and status code",
                                ["route", "code"], registry=r)
        self.latency = Histogram("kubeforge_request_duration_seconds", "HTTP request latency by route template",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("kubeforge_batch_size", "texts per model call", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.queue_depth = Gauge("kubeforge_queue_depth", "texts waiting for a batch", registry=r)
        self.in_flight = Gauge(sc.INFLIGHT_METRIC, "inference requests being served (the autoscaling signal)",
                               registry=r)
        self.load_seconds = Gauge("kubeforge_model_load_seconds", "model load + warm-up time", registry=r)
        self.model_seconds = Histogram("kubeforge_model_call_seconds", "time of one batch's model call "
                                       "(pad, run, softmax), tokenization and queueing excluded",
                                       buckets=LATENCY_BUCKETS, registry=r)
        # Labelled children looked up once per (route, code): labels() takes a lock and builds a key each call.
        self._counters: dict[tuple[str, str], Counter] = {}
        self._latencies: dict[str, Histogram] = {}

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.model_seconds.observe(seconds)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """One answered request (HTTP or gRPC), by route template (a bounded label value) and status code."""
        key = (route, str(status))
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.requests.labels(*key)
        latency = self._latencies.get(route)
        if latency is None:
            latency = self._latencies[route] = self.latency.labels(route)
        counter.inc()
        latency.observe(seconds)

    def track_queue_depth(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
