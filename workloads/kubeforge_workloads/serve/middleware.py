"""ASGI middleware: the request-body limit (413 before parsing) and per-request metrics and in-flight count."""

from __future__ import annotations

import json
import time

from .errors import error_body
from .metrics import ServerMetrics


async def _send_json(send, status: int, body: dict) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})


class BodyLimitMiddleware:
    """Refuse oversized bodies by Content-Length at once, and chunked ones as soon as they cross the limit."""

    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send_json(send, 413, error_body(f"request body is {int(declared)} bytes; "
                                                           f"the limit is {self.limit} bytes"))
        seen, refused = 0, False

        async def limited_receive():
            # The app may be mid-parse when the limit is crossed: answer 413 ourselves and tell the
            # app the client went away (raising here would surface as FastAPI's generic 400).
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit and not refused:
                refused = True
                await _send_json(send, 413, error_body(f"request body exceeds the limit of {self.limit} bytes"))
            return {"type": "http.disconnect"} if refused else message

        async def guarded_send(message):
            if not refused:  # whatever the app answers after our 413 is dropped
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


class RequestCounter:
    """Inference requests currently being served; the batcher and the gauge both read it."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


class MetricsMiddleware:
    """Counts requests by route template (bounded label values) and status code, times them, tracks in-flight."""

    def __init__(self, app, metrics: ServerMetrics, in_flight: RequestCounter):
        self.app = app
        self.metrics = metrics
        self.in_flight = in_flight
        # Labelled children looked up once per (route, code): labels() takes a lock and builds a key each call.
        self._counters: dict[tuple[str, str], object] = {}
        self._latencies: dict[str, object] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500
        # Every inference route is a POST; probes, scrapes and metadata reads are not load the HPA should see.
        counted = scope["method"] == "POST"

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        if counted:
            self.in_flight.value += 1
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            if counted:
                self.in_flight.value -= 1
                self.metrics.in_flight.dec()
            self._record(getattr(scope.get("route"), "path", "unmatched"), status, time.perf_counter() - start)

    def _record(self, route: str, status: int, seconds: float) -> None:
        key = (route, str(status))
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.requests.labels(*key)
        latency = self._latencies.get(route)
        if latency is None:
            latency = self._latencies[route] = self.metrics.latency.labels(route)
        counter.inc()
        latency.observe(seconds)
