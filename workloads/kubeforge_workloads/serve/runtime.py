"""Choosing the runtime: what the platform offers (GPU, TensorRT, ORT providers) and what the user asked for."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
from dataclasses import dataclass

from .errors import BackendUnavailable

log = logging.getLogger("kubeforge.serve")

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


@dataclass(frozen=True)
class Platform:
    """What this process can use; probed once at startup, passed to the pure resolver."""

    gpu_name: str | None = None
    tensorrt_version: str | None = None
    ort_providers: tuple[str, ...] = (CPU_EP,)


@dataclass(frozen=True)
class Resolution:
    """The runtime to build and why: logged at startup and reported by /v2/models/{name}."""

    runtime: str  # tensorrt | onnxruntime | torch
    device: str  # cuda | cpu
    quantize: str  # none | int8
    reason: str


def resolve_runtime(requested: str, model_format: str, has_onnx: bool, has_hf: bool,
                    platform: Platform, quantize: str = "none") -> Resolution:
    """auto: TensorRT on a GPU with TensorRT, else ONNX Runtime (CUDA EP on GPU, CPU otherwise), else torch."""
    gpu = platform.gpu_name is not None
    if requested == "auto":
        if has_onnx and model_format != "huggingface":
            requested = "tensorrt" if gpu and platform.tensorrt_version else "onnxruntime"
        elif has_hf:
            requested = "torch"
        else:
            raise BackendUnavailable("format huggingface needs a Hugging Face directory; only ONNX was found")
        reason = "auto"
    else:
        reason = "requested"
    needs = {"tensorrt": has_onnx, "onnxruntime": has_onnx, "torch": has_hf}
    if not needs[requested]:
        artifact = "a Hugging Face directory" if requested == "torch" else "an ONNX model"
        raise BackendUnavailable(f"runtime {requested} needs {artifact} in the model directory")
    if requested == "tensorrt":
        if not gpu:
            raise BackendUnavailable("runtime tensorrt needs a CUDA GPU; none was found")
        if not platform.tensorrt_version:
            raise BackendUnavailable("runtime tensorrt needs the tensorrt Python package; it is not installed")
    device = "cuda" if gpu and (requested != "onnxruntime" or CUDA_EP in platform.ort_providers) else "cpu"
    effective_quantize = quantize if (requested, device) == ("onnxruntime", "cpu") else "none"
    if effective_quantize != quantize:
        reason += "; int8 quantization applies to ONNX Runtime on CPU only, serving unquantized"
    return Resolution(requested, device, effective_quantize, reason)


def _gpu_name() -> str | None:
    """The first GPU's name via nvidia-smi (no CUDA library import needed), None where there is none."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.splitlines() if line.strip()]
    return names[0] if names else None


def tensorrt_version() -> str | None:
    """The installed TensorRT's version, without importing it when it is absent."""
    if importlib.util.find_spec("tensorrt") is None:
        return None
    try:
        import tensorrt

        return tensorrt.__version__
    except Exception as exc:  # a stub package or missing CUDA libraries
        log.warning("tensorrt is installed but cannot be imported: %s", exc)
        return None


def probe_platform() -> Platform:
    try:
        import onnxruntime

        providers = tuple(onnxruntime.get_available_providers())
    except ImportError:
        providers = ()
    return Platform(_gpu_name(), tensorrt_version(), providers)
