"""The inference routes' request handling, and the plain ASGI app that serves them ahead of FastAPI.

At concurrency 1 a request's model time is ~4 ms; FastAPI's per-request machinery around these routes
(route matching, dependency solving, body-model validation from Python objects, jsonable_encoder on the
answer, its exception wrappers) was a measurable share of the rest. The handlers below parse the raw
body with pydantic's Rust JSON validator and encode the answer once; HotRoutes calls them directly for
POSTs to the three inference paths. The FastAPI routes of the same paths call the same handlers, so
they only document them (/docs) and behave identically if reached.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from .dataplane import DataPlane
from .asgi import send_response
from .errors import error_json, http_error
from .metrics import ServerMetrics
from .protocol import v2
from .traffic import TrafficStats
from .protocol.simple import PredictRequest, V1PredictRequest, parse_body, prediction_dicts

@dataclass
class Reply:
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


def _json(obj) -> bytes:
    # Starlette's JSONResponse encoding, minus jsonable_encoder's walk over the (plain) answer.
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


async def predict(plane: DataPlane, name: str | None, body: bytes, header_length: str | None) -> Reply:
    texts = parse_body(PredictRequest, body).all_texts()
    name = plane.repository.names()[0]
    preds = await plane.classify(name, texts)
    return Reply(_json({"model": name, "predictions": prediction_dicts(preds, plane.model(name).labels)}))


async def v1_predict(plane: DataPlane, name: str, body: bytes, header_length: str | None) -> Reply:
    preds = await plane.classify(name, parse_body(V1PredictRequest, body).all_texts())
    return Reply(_json({"predictions": prediction_dicts(preds, plane.model(name).labels)}))


async def v2_infer(plane: DataPlane, name: str, body: bytes, header_length: str | None) -> Reply:
    plane.model(name)  # 404 before parsing a body meant for another model
    req, binary = v2.parse_request(body, header_length)
    preds = await plane.classify(name, v2.request_texts(req, binary))
    out, headers = v2.build_response(name, req, preds, len(plane.model(name).labels))
    return Reply(out, "application/octet-stream" if headers else "application/json", headers)


@dataclass(frozen=True)
class Route:
    """An inference route: its path template (the metrics' route label, a bounded value), how to match it, its handler."""

    path: str
    prefix: str
    suffix: str
    handler: object


V2_INFER = Route("/v2/models/{name}/infer", "/v2/models/", "/infer", v2_infer)
V1_PREDICT = Route("/v1/models/{name}:predict", "/v1/models/", ":predict", v1_predict)
PREDICT = Route("/predict", "/predict", "", predict)
NAMED_ROUTES = (V2_INFER, V1_PREDICT)  # routes with a {name} between prefix and suffix


def match(path: str) -> tuple[Route, str | None] | None:
    """The route and model name for an inference path (names as Starlette's [^/]+ matches them), else None."""
    if path == PREDICT.path:
        return PREDICT, None
    for route in NAMED_ROUTES:
        if path.startswith(route.prefix) and path.endswith(route.suffix):
            name = path[len(route.prefix):len(path) - len(route.suffix)]
            if name and "/" not in name:
                return route, name
    return None


async def _read_body(receive, limit: int):
    """The whole body; None when the client left; _TOO_LARGE as soon as it crosses the limit."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return _TOO_LARGE
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def answer(plane: DataPlane, route: Route, name: str | None, body: bytes, header_length: str | None) -> Reply:
    """Run a handler; its errors become answers through the one error map (errors.http_error)."""
    try:
        return await route.handler(plane, name, body, header_length)
    except Exception as exc:
        status, error, headers = http_error(exc)
        return Reply(error, headers=headers, status=status)


_HEADER_LENGTH = v2.HEADER_LENGTH.encode()
_CLOSE = {"connection": "close"}
_TIMED_OUT, _TOO_LARGE = object(), object()
CLIENT_CLOSED = 499  # the metrics' code for a client that left before its answer (nginx's convention)


class HotRoutes:
    """The ASGI app uvicorn runs: POSTs to the inference paths are answered here, everything else goes on to
    the FastAPI app (health, metadata, metrics, /docs, and its middleware).

    Answering them ahead of FastAPI skips its per-request layers (Starlette's error and exception middleware,
    FastAPI's own, our metrics and body-limit middleware), ~5 % of a request's server time at concurrency 1;
    what those layers do for these requests is done inline: the body limit (413 at once by Content-Length,
    or as soon as a chunked body crosses it), the request metrics and the canary's traffic count.
    A body not received within body_timeout_s is answered 408 and its connection closed, so a slow
    upload holds a connection no longer than that; one sweeper task enforces it (no timer per request).
    A request counts as in flight only once its body is read: slow clients are not load, neither for
    the batcher (which waits for company only while requests are in flight) nor for the HPA.
    While draining, answers carry `connection: close` so clients reconnect to a replica that stays.
    """

    def __init__(self, app, dataplane: DataPlane, metrics: ServerMetrics, traffic: TrafficStats, max_body_bytes: int,
                 body_timeout_s: float = 3600.0):
        self.app = app
        self.plane = dataplane
        self.metrics = metrics
        self.traffic = traffic  # a canary's own traffic report (traffic.py)
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self._reading: dict[asyncio.Task, float] = {}  # request tasks reading a body, since when
        self._timed_out: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        found = match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if found is None:
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500
        try:
            status = await self._serve(*found, scope["headers"], receive, send)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe_request(found[0].path, status, seconds)
            self.traffic.record("POST", status, seconds)

    async def _serve(self, route: Route, name: str | None, headers, receive, send) -> int:
        """Read, answer and send one inference request; the status sent."""
        declared = header_length = None
        for key, value in headers:
            if key == b"content-length":
                declared = value
            elif key == _HEADER_LENGTH:
                header_length = value.decode("latin-1")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return await _refuse(send, 413, f"request body is {int(declared)} bytes; the limit is "
                                            f"{self.max_body_bytes} bytes")
        body = await self._read_within_timeout(receive)
        if body is _TIMED_OUT:
            return await _refuse(send, 408, f"request body not received within {self.body_timeout_s:g} s", _CLOSE)
        if body is _TOO_LARGE:
            return await _refuse(send, 413, f"request body exceeds the limit of {self.max_body_bytes} bytes")
        if body is None:
            return CLIENT_CLOSED
        in_flight = self.plane.in_flight
        in_flight.value += 1
        try:
            reply = await answer(self.plane, route, name, body, header_length)
        finally:
            in_flight.value -= 1
        reply_headers = {**reply.headers, **_CLOSE} if self.plane.draining else reply.headers
        await send_response(send, reply.status, reply.body, reply.media_type, reply_headers)
        return reply.status

    async def _read_within_timeout(self, receive):
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="body-timeout-sweeper")
        task = asyncio.current_task()
        self._reading[task] = time.monotonic()
        try:
            return await _read_body(receive, self.max_body_bytes)
        except asyncio.CancelledError:
            if task not in self._timed_out:
                raise
            self._timed_out.discard(task)
            task.uncancel()
            return _TIMED_OUT
        finally:
            del self._reading[task]

    async def _sweep(self) -> None:
        tick = min(0.25, self.body_timeout_s / 10)
        while True:
            await asyncio.sleep(tick)
            too_old = time.monotonic() - self.body_timeout_s
            for task, since in list(self._reading.items()):
                if since <= too_old and task not in self._timed_out:
                    self._timed_out.add(task)
                    task.cancel()


async def _refuse(send, status: int, message: str, headers: dict[str, str] | None = None) -> int:
    await send_response(send, status, error_json(message), headers=headers)
    return status
