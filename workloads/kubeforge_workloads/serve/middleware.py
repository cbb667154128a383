"""ASGI middleware: the request-body limit (413 before parsing) and per-request metrics."""

from __future__ import annotations

import time

from .asgi import send_response
from .errors import error_json
from .metrics import ServerMetrics
from .traffic import TrafficStats


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
            return await send_response(send, 413, error_json(f"request body is {int(declared)} bytes; "
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
                await send_response(send, 413, error_json(f"request body exceeds the limit of {self.limit} bytes"))
            return {"type": "http.disconnect"} if refused else message

        async def guarded_send(message):
            if not refused:  # whatever the app answers after our 413 is dropped
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


class MetricsMiddleware:
    """Counts requests by route template (bounded label values) and status code, and times them.

    The inference POSTs are counted by HotRoutes (hotpath.py), which answers them before this app; requests
    in flight are counted there too, once a body is read (a slow upload is not load)."""

    def __init__(self, app, metrics: ServerMetrics, traffic: TrafficStats | None = None):
        self.app = app
        self.metrics = metrics
        self.traffic = traffic

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe_request(getattr(scope.get("route"), "path", "unmatched"), status, seconds)
            if self.traffic is not None:
                self.traffic.record(scope["method"], status, seconds)
