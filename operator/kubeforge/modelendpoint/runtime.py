"""Resolves spec.runtime: `auto` becomes the concrete backend the server pods will run."""

from __future__ import annotations

from kubeforge.api.modelendpoint import ModelEndpointSpec

TENSORRT, ONNXRUNTIME, TORCH = "tensorrt", "onnxruntime", "torch"


def resolve_runtime(spec: ModelEndpointSpec) -> str:
    """auto: TensorRT when the pods get GPUs, ONNX Runtime otherwise; torch for Hugging Face weights.

    Resolved here, not only in the server, so `kubectl get mep` shows the runtime
    before a pod starts. Mirrors kubeforge_workloads.serve.runtime.resolve_runtime,
    which makes the same choice from what the pod finds (format huggingface has no
    ONNX file to hand to TensorRT or ONNX Runtime); tests/unit/test_modelendpoint_runtime.py
    checks that the two agree on every spec.
    """
    if spec.runtime != "auto":
        return spec.runtime
    if spec.model.format == "huggingface":
        return TORCH
    return TENSORRT if spec.resources.gpus > 0 else ONNXRUNTIME
