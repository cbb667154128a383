"""spec.runtime resolution: auto picks TensorRT with GPUs, ONNX Runtime without, torch for Hugging Face weights."""

from __future__ import annotations

import pytest

from kubeforge.modelendpoint.runtime import resolve_runtime
from tests.unit.modelendpoint_wrappers import MakeEndpoint


@pytest.mark.parametrize(
    "make, runtime",
    [
        (MakeEndpoint(), "onnxruntime"),
        (MakeEndpoint().gpus(1), "tensorrt"),
        (MakeEndpoint().huggingface(), "torch"),
        (MakeEndpoint().huggingface().gpus(1), "torch"),
        (MakeEndpoint().gpus(1).runtime("onnxruntime"), "onnxruntime"),
        (MakeEndpoint().runtime("torch"), "torch"),
    ],
    ids=["cpu auto", "gpu auto", "hf auto", "hf gpu auto", "explicit ort on gpu", "explicit torch"],
)
def test_runtime_resolution(make, runtime):
    assert resolve_runtime(make.model()) == runtime
