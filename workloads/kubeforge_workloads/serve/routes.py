"""Thin FastAPI routers: decode the wire format, call the data plane, encode the answer. No logic here.

The inference routes' handlers live in hotpath.py (served there ahead of FastAPI); they are declared here for /docs.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kubeforge import servecontract as sc

from . import hotpath
from .dataplane import DataPlane
from .errors import ModelNotReady
from .protocol import v2
from .protocol.simple import PredictRequest, V1PredictRequest, body_schema

router = APIRouter()


def _plane(request: Request) -> DataPlane:
    return request.app.state.dataplane


def _doc(model) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body_schema(model)}}}}


# OIP v2 takes a JSON body, or (binary tensor extension) a JSON header followed by raw tensor bytes,
# the header's length in Inference-Header-Content-Length.
_V2_INFER_DOC = {
    "parameters": [{"name": v2.HEADER_LENGTH, "in": "header", "required": False,
                    "description": "binary extension: length of the JSON header at the start of the body",
                    "schema": {"type": "integer", "minimum": 0}}],
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": body_schema(v2.InferenceRequest)},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }},
}


async def _serve(request: Request, route: hotpath.Route, name: str | None) -> Response:
    """Reached only without HotRoutes in front (it answers these paths first); same handlers, same answers."""
    reply = await hotpath.answer(_plane(request), route, name, await request.body(), request.headers.get(v2.HEADER_LENGTH))
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type, headers=reply.headers)


@router.post("/predict", tags=["simple"], summary="Classify texts: {\"texts\": [...]}",
             openapi_extra=_doc(PredictRequest))
async def predict(request: Request):
    return await _serve(request, hotpath.PREDICT, None)


@router.post("/v1/models/{name}:predict", tags=["kserve v1"], openapi_extra=_doc(V1PredictRequest))
async def v1_predict(name: str, request: Request):
    return await _serve(request, hotpath.V1_PREDICT, name)


@router.get("/v1/models/{name}", tags=["kserve v1"])
async def v1_model(name: str, request: Request):
    return {"name": name, "ready": _plane(request).model(name).ready}


@router.get(sc.LIVE_PATH, tags=["v2"])
async def live():
    return {"live": True}


@router.get(sc.READY_PATH, tags=["v2"])
async def ready(request: Request):
    reason = _plane(request).not_ready_reason()
    if reason:
        raise ModelNotReady(reason)
    return {"ready": True}


@router.get("/v2", tags=["v2"])
async def server_metadata():
    return v2.server_metadata()


@router.get("/v2/models/{name}", tags=["v2"])
async def model_metadata(name: str, request: Request):
    model = _plane(request).model(name)
    return v2.model_metadata(name, len(model.labels), model.metadata())


@router.get("/v2/models/{name}/ready", tags=["v2"])
async def model_ready(name: str, request: Request):
    _plane(request).ready_model(name)
    return {"name": name, "ready": True}


@router.post("/v2/models/{name}/infer", tags=["v2"], summary="Open Inference Protocol v2 (JSON or binary tensors)",
             openapi_extra=_V2_INFER_DOC)
async def v2_infer(name: str, request: Request):
    return await _serve(request, hotpath.V2_INFER, name)


@router.get(sc.METRICS_PATH, include_in_schema=False)
async def metrics(request: Request):
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

