"""TensorRT backend: engine built from the ONNX model, cached by GPU, TensorRT version and model hash.

Written against TensorRT 10's Python API (tensorrt.Builder, OnnxParser,
optimization profiles, IExecutionContext.set_input_shape / set_tensor_address /
execute_async_v3). TensorRT cannot be installed on our build machines, so the
engine build and execution here have never run in this repo's CI; selection,
the cache key and the profile shapes are pure and tested.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import numpy as np

from ..errors import BackendUnavailable
from ..model import Backend
from .modelhash import cache_dir, onnx_model_hash

log = logging.getLogger("kubeforge.serve")
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class ProfileShapes:
    """(batch, sequence) min / opt / max of the one optimization profile every token input shares."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]


def profile_shapes(max_batch_size: int, max_seq_length: int) -> ProfileShapes:
    """Span batch 1..maxBatchSize and sequence 1..served length; tune for half-full batches of short texts."""
    opt_seq = min(max_seq_length, 128)  # most classification texts are short; TensorRT picks kernels for opt
    return ProfileShapes((1, 1), (max(1, max_batch_size // 2), opt_seq), (max_batch_size, max_seq_length))


def engine_cache_key(gpu_name: str, trt_version: str, model_hash: str, shapes: ProfileShapes, fp16: bool) -> str:
    """An engine is only valid for the GPU model and TensorRT version that built it, and for its profile."""
    material = "|".join([gpu_name, trt_version, model_hash, repr(shapes), f"fp16={fp16}"])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _import_tensorrt():
    try:
        import tensorrt as trt

        return trt
    except ImportError as exc:
        raise BackendUnavailable(
            "runtime tensorrt needs the tensorrt package (pip install tensorrt from NVIDIA's index); "
            f"import failed: {exc}"
        ) from exc


def _build_engine(trt, onnx_path: str, shapes: ProfileShapes, fp16: bool) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):  # from a file so external weight data resolves
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailable(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        profile.set_shape(network.get_input(i).name, shapes.min, shapes.opt, shapes.max)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable("TensorRT failed to build an engine (see its log above)")
    return bytes(serialized)


class TensorRTBackend(Backend):
    runtime = "tensorrt"

    def __init__(self, onnx_path: str, shapes: ProfileShapes, cache: str, gpu_name: str):
        super().__init__()
        self.onnx_path, self.shapes, self.cache, self.gpu_name = onnx_path, shapes, cache, gpu_name
        self.fp16 = False
        self.engine_path = ""
        self._engine = self._context = None
        self._inputs: tuple[str, ...] = ()
        self._output = ""

    def load(self, samples: list[dict[str, np.ndarray]] | None = None) -> None:
        trt = _import_tensorrt()
        import torch  # device buffers and the CUDA stream come from torch, already in GPU images

        logger = trt.Logger(trt.Logger.WARNING)
        self.fp16 = bool(trt.Builder(logger).platform_has_fast_fp16)
        key = engine_cache_key(self.gpu_name, trt.__version__, onnx_model_hash(self.onnx_path), self.shapes, self.fp16)
        self.engine_path = os.path.join(cache_dir(self.cache), f"trt-{key}.engine")
        if not os.path.isfile(self.engine_path):
            log.info("building TensorRT engine (fp16=%s, profile=%s)", self.fp16, self.shapes)
            tmp = f"{self.engine_path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(_build_engine(trt, self.onnx_path, self.shapes, self.fp16))
            os.replace(tmp, self.engine_path)
        with open(self.engine_path, "rb") as f:
            self._engine = trt.Runtime(logger).deserialize_cuda_engine(f.read())
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = lambda n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT  # noqa: E731
        self._inputs = tuple(n for n in names if is_input(n))
        self._output = next(n for n in names if not is_input(n))
        self._trt, self._torch = trt, torch
        self.ready = True

    def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        trt, torch, ctx = self._trt, self._torch, self._context
        keep = []  # device tensors must outlive the asynchronous execution
        for name in self._inputs:
            dtype = trt.nptype(self._engine.get_tensor_dtype(name))
            t = torch.from_numpy(np.ascontiguousarray(inputs[name], dtype=dtype)).cuda()
            ctx.set_input_shape(name, tuple(t.shape))
            ctx.set_tensor_address(name, t.data_ptr())
            keep.append(t)
        shape = tuple(ctx.get_tensor_shape(self._output))
        out_dtype = torch.from_numpy(np.zeros(0, trt.nptype(self._engine.get_tensor_dtype(self._output)))).dtype
        out = torch.empty(shape, dtype=out_dtype, device="cuda")
        ctx.set_tensor_address(self._output, out.data_ptr())
        stream = torch.cuda.current_stream()
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return out.float().cpu().numpy()

    def describe(self) -> dict:
        return {"runtime": self.runtime, "device": "cuda", "precision": "fp16" if self.fp16 else "fp32",
                "engine": os.path.basename(self.engine_path), "profile": repr(self.shapes)}
