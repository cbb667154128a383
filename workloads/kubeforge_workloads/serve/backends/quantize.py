"""int8 dynamic quantization for ONNX Runtime on CPU, and the fp32-agreement check that gates it."""

from __future__ import annotations

import os

import numpy as np

from ..model import softmax

MIN_ARGMAX_AGREEMENT = 0.9  # int8 may flip near-ties; more than one in ten means the model is damaged


def quantize_int8(fp32_path: str, cache: str, model_hash: str) -> str:
    """Quantize weights to int8 once per model content; later starts reuse the cached file."""
    out = os.path.join(cache, f"int8-{model_hash[:24]}.onnx")
    if os.path.isfile(out):
        return out
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = f"{out}.{os.getpid()}.tmp"
    quantize_dynamic(fp32_path, tmp, weight_type=QuantType.QInt8)
    os.replace(tmp, out)  # atomic: a concurrent replica never reads a half-written model
    return out


def compare_outputs(fp32: list[np.ndarray], int8: list[np.ndarray]) -> dict:
    """Argmax agreement and the largest probability difference between the two models' logits."""
    if not fp32:
        return {"accepted": True, "argmax_agreement": None, "max_prob_diff": None, "samples": 0}
    a, b = np.concatenate(fp32), np.concatenate(int8)
    pa, pb = softmax(a), softmax(b)
    agreement = float(np.mean(pa.argmax(-1) == pb.argmax(-1)))
    return {
        "accepted": agreement >= MIN_ARGMAX_AGREEMENT,
        "argmax_agreement": agreement,
        "max_prob_diff": float(np.abs(pa - pb).max()),
        "samples": int(a.shape[0]),
    }
