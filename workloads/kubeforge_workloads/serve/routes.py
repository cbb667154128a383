"""Thin FastAPI routers: decode the wire format, call the data plane, encode the answer. No logic here."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kubeforge import servecontract as sc

from .dataplane import DataPlane
from .errors import ModelNotReady
from .protocol import v2
from .protocol.simple import PredictRequest, V1PredictRequest, prediction_dicts

router = APIRouter()


def _plane(request: Request) -> DataPlane:
    return request.app.state.dataplane


@router.post("/predict", tags=["simple"], summary="Classify texts: {\"texts\": [...]}")
async def predict(body: PredictRequest, request: Request):
    plane = _plane(request)
    name = plane.repository.names()[0]
    preds = await plane.classify(name, body.all_texts())
    return {"model": name, "predictions": prediction_dicts(preds, plane.model(name).labels)}


@router.post("/v1/models/{name}:predict", tags=["kserve v1"])
async def v1_predict(name: str, body: V1PredictRequest, request: Request):
    plane = _plane(request)
    preds = await plane.classify(name, body.all_texts())
    return {"predictions": prediction_dicts(preds, plane.model(name).labels)}


@router.get("/v1/models/{name}", tags=["kserve v1"])
async def v1_model(name: str, request: Request):
    return {"name": name, "ready": _plane(request).model(name).ready}


@router.get(sc.LIVE_PATH, tags=["v2"])
async def live():
    return {"live": True}


@router.get(sc.READY_PATH, tags=["v2"])
async def ready(request: Request):
    if not _plane(request).ready():
        raise ModelNotReady("model is loading")
    return {"ready": True}


@router.get("/v2", tags=["v2"])
async def server_metadata():
    return {"name": "kubeforge-serve", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


@router.get("/v2/models/{name}", tags=["v2"])
async def model_metadata(name: str, request: Request):
    model = _plane(request).model(name)
    return v2.model_metadata(name, len(model.labels), model.metadata())


@router.get("/v2/models/{name}/ready", tags=["v2"])
async def model_ready(name: str, request: Request):
    _plane(request).ready_model(name)
    return {"name": name, "ready": True}


@router.post("/v2/models/{name}/infer", tags=["v2"], summary="Open Inference Protocol v2 (JSON or binary tensors)")
async def v2_infer(name: str, request: Request):
    plane = _plane(request)
    plane.model(name)  # 404 before reading a body meant for another model
    req, binary = v2.parse_request(await request.body(), request.headers.get(v2.HEADER_LENGTH))
    preds = await plane.classify(name, v2.request_texts(req, binary))
    body, headers = v2.build_response(name, req, preds, len(plane.model(name).labels))
    media = "application/octet-stream" if headers else "application/json"
    return Response(body, media_type=media, headers=headers)


@router.get(sc.METRICS_PATH, include_in_schema=False)
async def metrics(request: Request):
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

