"""Open Inference Protocol v2 over gRPC: ModelInferRequest to texts, predictions to ModelInferResponse.

The same input ("text", BYTES) and outputs as the JSON protocol (v2.py), which owns their names and
values. Outputs always go back as raw_output_contents, as Triton sends them: tritonclient reads
those, and they skip protobuf's per-element repeated fields.
"""

from __future__ import annotations

import numpy as np

from ..dataplane import Prediction
from ..errors import InvalidInput
from . import v2
from .grpc import inference_pb2 as pb


def request_texts(req: pb.ModelInferRequest) -> list[str]:
    """The one BYTES input 'text', from raw_input_contents or from contents.bytes_contents."""
    if len(req.inputs) != 1 or req.inputs[0].name != v2.INPUT_NAME:
        raise InvalidInput(f"inputs: expected exactly one input named {v2.INPUT_NAME!r}")
    inp = req.inputs[0]
    if inp.datatype != "BYTES":
        raise InvalidInput(f"inputs[0].datatype: expected BYTES, got {inp.datatype}")
    if req.raw_input_contents:
        values = v2.decode_bytes_tensor(req.raw_input_contents[0])
    else:
        values = list(inp.contents.bytes_contents)
    return v2.texts_of(values, list(inp.shape))


def _raw(datatype: str, value) -> bytes:
    if datatype == "BYTES":
        return v2.encode_bytes_tensor([s.encode() for s in value])
    return np.ascontiguousarray(value, dtype="<f4").tobytes()


def build_response(model_name: str, req: pb.ModelInferRequest, preds: list[Prediction],
                   num_labels: int) -> pb.ModelInferResponse:
    names = v2.requested_outputs([o.name for o in req.outputs])
    tensors = v2.output_tensors(preds, num_labels)
    resp = pb.ModelInferResponse(model_name=model_name, model_version="1", id=req.id)
    for name in names:
        datatype, shape, value = tensors[name]
        resp.outputs.add(name=name, datatype=datatype, shape=shape)
        resp.raw_output_contents.append(_raw(datatype, value))
    return resp


def model_metadata(meta: dict) -> pb.ModelMetadataResponse:
    """v2.model_metadata's dict as the gRPC message (its free-form parameters have no field there)."""
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=meta["name"], versions=meta["versions"], platform=meta["platform"],
        inputs=[tensor(**t) for t in meta["inputs"]], outputs=[tensor(**t) for t in meta["outputs"]])


def server_metadata() -> pb.ServerMetadataResponse:
    return pb.ServerMetadataResponse(**v2.server_metadata())
