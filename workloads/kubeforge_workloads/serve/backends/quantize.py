"""int8 dynamic quantization for ONNX Runtime on CPU, and the fp32-agreement check that gates it."""

from __future__ import annotations

import os

import numpy as np

from ..model import softmax

# int8 may flip near-ties (0.50 vs 0.49 says nothing either way), but it must keep every decision
# fp32 makes with a clear margin between the top two probabilities.
DECISIVE_MARGIN = 0.2


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
    """Accept int8 when it keeps fp32's argmax on every sample fp32 decides with a clear margin."""
    if not fp32:
        return {"accepted": True, "argmax_agreement": None, "max_prob_diff": None, "samples": 0}
    pa, pb = softmax(np.concatenate(fp32)), softmax(np.concatenate(int8))
    top2 = np.sort(pa, axis=-1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) >= DECISIVE_MARGIN
    agree = pa.argmax(-1) == pb.argmax(-1)
    return {
        "accepted": bool(agree[decisive].all()),
        "argmax_agreement": float(agree.mean()),
        "decisive_agreement": float(agree[decisive].mean()) if decisive.any() else None,
        "decisive_samples": int(decisive.sum()),
        "max_prob_diff": float(np.abs(pa - pb).max()),
        "samples": int(pa.shape[0]),
    }
