"""Runtime backends behind the one Backend interface, and the factory that builds the resolved one."""

from __future__ import annotations

from ..config import ServeConfig
from ..modeldir import ModelFiles
from ..model import Backend
from ..runtime import Platform, Resolution


def create_backend(res: Resolution, files: ModelFiles, cfg: ServeConfig, platform: Platform) -> Backend:
    """Import only the chosen runtime's module: TensorRT and torch are heavy or absent."""
    if res.runtime == "onnxruntime":
        from .ort import OnnxRuntimeBackend

        return OnnxRuntimeBackend(files.onnx_path, res.device, res.quantize, cfg.engine_cache_dir)
    if res.runtime == "torch":
        from .torch_eager import TorchBackend

        return TorchBackend(files.hf_dir, res.device)
    from .trt import TensorRTBackend, profile_shapes

    shapes = profile_shapes(cfg.max_batch_size, cfg.max_seq_length or files.max_seq_length)
    return TensorRTBackend(files.onnx_path, shapes, cfg.engine_cache_dir, platform.gpu_name or "unknown-gpu")
