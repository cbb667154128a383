"""Open Inference Protocol v2: request decoding and response encoding, JSON and the binary tensor extension."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from ..dataplane import Prediction
from ..errors import InvalidInput, field_problems

HEADER_LENGTH = "inference-header-content-length"
INPUT_NAME = "text"
OUTPUTS = ("label", "score", "probabilities")


class RequestInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


def _flatten(data: list) -> list:
    out: list = []
    for x in data:
        out.extend(_flatten(x) if isinstance(x, list) else [x])
    return out


def decode_bytes_tensor(raw: bytes) -> list[bytes]:
    """Triton's BYTES encoding: each element is a little-endian uint32 length, then that many bytes."""
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput("inputs[0]: truncated BYTES element length")
        (n,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + n > len(raw):
            raise InvalidInput("inputs[0]: BYTES element runs past the binary data")
        items.append(raw[offset:offset + n])
        offset += n
    return items


def encode_bytes_tensor(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def parse_request(body: bytes, header_length: str | None) -> tuple[InferenceRequest, bytes]:
    """Split the JSON header from the binary part (when the extension is used) and validate the JSON."""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InvalidInput(f"{HEADER_LENGTH} {header_length!r} does not fit the {len(body)}-byte body")
        body, binary = body[:int(header_length)], body[int(header_length):]
    else:
        binary = b""
    try:
        return InferenceRequest.model_validate_json(body), binary
    except ValidationError as exc:
        # Named like FastAPI's own 422s ("inputs.0.shape: Field required"), but 400 as the v2 protocol says.
        raise InvalidInput(field_problems(exc.errors())) from None


def request_texts(req: InferenceRequest, binary: bytes) -> list[str]:
    """The one BYTES input 'text' as Python strings, from JSON data or the binary section."""
    if len(req.inputs) != 1 or req.inputs[0].name != INPUT_NAME:
        raise InvalidInput(f"inputs: expected exactly one input named {INPUT_NAME!r}")
    inp = req.inputs[0]
    if inp.datatype != "BYTES":
        raise InvalidInput(f"inputs[0].datatype: expected BYTES, got {inp.datatype}")
    size = (inp.parameters or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"inputs[0].parameters.binary_data_size: expected a byte count, got {size!r:.60}")
        if len(binary) < size:
            raise InvalidInput("inputs[0].parameters.binary_data_size exceeds the binary data sent")
        values: list = decode_bytes_tensor(binary[:size])
    elif inp.data is not None:
        values = _flatten(inp.data)
    else:
        raise InvalidInput("inputs[0]: needs data or parameters.binary_data_size")
    return texts_of(values, inp.shape)


def texts_of(values: list, shape: list[int]) -> list[str]:
    """The 'text' tensor's elements (bytes or str) as strings, once they match the declared shape."""
    if int(np.prod(shape)) != len(values):
        raise InvalidInput(f"inputs[0].shape {list(shape)} does not match {len(values)} elements")
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else _as_text(v) for v in values]
    except UnicodeDecodeError:
        raise InvalidInput("inputs[0]: BYTES elements must be UTF-8 text") from None


def _as_text(v) -> str:
    if not isinstance(v, str):
        raise InvalidInput(f"inputs[0].data: expected strings, got {type(v).__name__}")
    return v


def _wants_binary(req: InferenceRequest, out: RequestOutput | None) -> bool:
    if out is not None and out.parameters and "binary_data" in out.parameters:
        return bool(out.parameters["binary_data"])
    return bool((req.parameters or {}).get("binary_data_output", False))


def output_tensors(preds: list[Prediction], num_labels: int) -> dict[str, tuple[str, list[int], Any]]:
    """Each output by name: (datatype, shape, values); what both the JSON and the gRPC encodings send."""
    probs = np.stack([p.probabilities for p in preds]).astype(np.float32) if preds else np.zeros((0, num_labels))
    return {
        "label": ("BYTES", [len(preds)], [p.label for p in preds]),
        "score": ("FP32", [len(preds)], np.array([p.score for p in preds], dtype=np.float32)),
        "probabilities": ("FP32", [len(preds), num_labels], probs.astype(np.float32)),
    }


def build_response(model_name: str, req: InferenceRequest, preds: list[Prediction],
                   num_labels: int) -> tuple[bytes, dict[str, str]]:
    """Body and extra headers; binary outputs follow the JSON header when any output asked for them."""
    names = requested_outputs([o.name for o in req.outputs or []])
    by_name = {o.name: o for o in req.outputs} if req.outputs else {}
    tensors, outputs, binary = output_tensors(preds, num_labels), [], b""
    for name in names:
        datatype, shape, value = tensors[name]
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if _wants_binary(req, by_name.get(name)):
            raw = encode_bytes_tensor([s.encode() for s in value]) if datatype == "BYTES" \
                else np.ascontiguousarray(value, dtype="<f4").tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            binary += raw
        else:
            entry["data"] = list(value) if datatype == "BYTES" else np.asarray(value).reshape(-1).tolist()
        outputs.append(entry)
    header = json.dumps({"model_name": model_name, "model_version": "1", "id": req.id or "", "outputs": outputs})
    if not binary:
        return header.encode(), {}
    return header.encode() + binary, {HEADER_LENGTH: str(len(header.encode()))}


def requested_outputs(names: list[str]) -> list[str]:
    """The outputs to send: those named (each must exist), or all of them when none is named."""
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise InvalidInput(f"outputs: unknown output {unknown[0]!r}; this model has {list(OUTPUTS)}")
    return names or list(OUTPUTS)


def server_metadata() -> dict:
    return {"name": "kubeforge-serve", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


def model_metadata(name: str, num_labels: int, parameters: dict) -> dict:
    return {
        "name": name,
        "versions": ["1"],
        "platform": f"kubeforge_{parameters.get('runtime', 'unknown')}",
        "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, num_labels]},
        ],
        "parameters": parameters,
    }
