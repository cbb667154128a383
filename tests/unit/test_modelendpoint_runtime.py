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


SPEC_RUNTIMES = ("auto", "tensorrt", "onnxruntime", "torch")


@pytest.mark.parametrize("requested", SPEC_RUNTIMES)
@pytest.mark.parametrize("model_format", ("onnx", "huggingface"))
@pytest.mark.parametrize("gpus", (0, 1))
def test_the_operator_and_the_server_resolve_every_spec_to_the_same_runtime(requested, model_format, gpus):
    """status.runtime must name what the pod will run: the server decides again from what it finds.

    In the pod: a GPU exactly when spec.resources.gpus > 0 (with TensorRT, as the server image
    ships it), and the trainer's export, which holds both the Hugging Face and the ONNX model.
    """
    if requested == "tensorrt" and not gpus:
        pytest.skip("refused by the CRD: runtime tensorrt needs spec.resources.gpus > 0")
    serve_runtime = pytest.importorskip("kubeforge_workloads.serve.runtime")
    make = MakeEndpoint().runtime(requested).gpus(gpus)
    make = make.huggingface() if model_format == "huggingface" else make
    gpu = dict(gpu_name="NVIDIA H100", tensorrt_version="10.0", ort_providers=(serve_runtime.CUDA_EP, serve_runtime.CPU_EP))
    platform = serve_runtime.Platform(**gpu) if gpus else serve_runtime.Platform()
    served = serve_runtime.resolve_runtime(requested, model_format, True, True, platform)
    assert served.runtime == resolve_runtime(make.model())
