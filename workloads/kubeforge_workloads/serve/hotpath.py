"""The inference routes' request handling, and a plain ASGI app that serves them ahead of FastAPI.

At concurrency 1 a request's model time is ~4 ms; FastAPI's per-request machinery around these routes
(route matching, dependency solving, body-model validation from Python objects, jsonable_encoder on the
answer, its exception wrappers) was a measurable share of the rest. The handlers below parse the raw
body with pydantic's Rust JSON validator and encode the answer once; HotRoutes calls them directly for
POSTs to the three inference paths. The FastAPI routes of the same paths call the same handlers, so
they only document them (/docs) and behave identically if reached.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from .dataplane import DataPlane
from .errors import ServeError, error_json
from .protocol import v2
from .protocol.simple import PredictRequest, V1PredictRequest, parse_body, prediction_dicts

log = logging.getLogger("kubeforge.serve")


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
    """What the metrics middleware reads from scope["route"]: the path template, a bounded label value."""

    path: str
    prefix: str
    suffix: str
    handler: object


ROUTES = (
    Route("/v2/models/{name}/infer", "/v2/models/", "/infer", v2_infer),
    Route("/v1/models/{name}:predict", "/v1/models/", ":predict", v1_predict),
)
PREDICT = Route("/predict", "/predict", "", predict)


def match(path: str) -> tuple[Route, str | None] | None:
    """The route and model name for an inference path (names as Starlette's [^/]+ matches them), else None."""
    if path == PREDICT.path:
        return PREDICT, None
    for route in ROUTES:
        if path.startswith(route.prefix) and path.endswith(route.suffix):
            name = path[len(route.prefix):len(path) - len(route.suffix)]
            if name and "/" not in name:
                return route, name
    return None


async def _read_body(receive) -> bytes | None:
    """The whole body, or None when the client left (or the body limit cut it off and answered 413)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send, reply: Reply) -> None:
    headers = [(b"content-type", reply.media_type.encode()), (b"content-length", str(len(reply.body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def answer(plane: DataPlane, route: Route, name: str | None, body: bytes, header_length: str | None) -> Reply:
    """Run a handler and map its errors exactly as errors.install_error_handlers does for FastAPI's routes."""
    try:
        return await route.handler(plane, name, body, header_length)
    except ServeError as exc:
        return Reply(error_json(exc.message), headers=exc.headers, status=exc.status)
    except Exception as exc:
        log.exception("unhandled error")
        return Reply(error_json(f"internal error: {type(exc).__name__}"), status=500)


_HEADER_LENGTH = v2.HEADER_LENGTH.encode()


class HotRoutes:
    """ASGI: POSTs to the inference paths are answered here; everything else goes on to FastAPI."""

    def __init__(self, app, dataplane: DataPlane):
        self.app = app
        self.plane = dataplane

    async def __call__(self, scope, receive, send):
        found = match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if found is None:
            return await self.app(scope, receive, send)
        route, name = found
        scope["route"] = route
        body = await _read_body(receive)
        if body is None:
            return
        header_length = None
        for key, value in scope["headers"]:
            if key == _HEADER_LENGTH:
                header_length = value.decode("latin-1")
        await _send(send, await answer(self.plane, route, name, body, header_length))
