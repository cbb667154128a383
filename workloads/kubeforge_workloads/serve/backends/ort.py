"""ONNX Runtime backend: CPU or the CUDA execution provider, optionally int8-quantized on CPU."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import BackendUnavailable
from ..model import Backend
from .modelhash import cache_dir, onnx_model_hash

log = logging.getLogger("kubeforge.serve")


def _session(path: str, device: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One inference thread feeds the session; parallelism lives inside operators, not across them.
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    # ORT's pool threads spin between calls by default, burning the cores the event loop needs to parse
    # the next requests (and a pod's CPU quota). Measured here at concurrency 32: ~1.7x the throughput.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(path, sess_options=opts, providers=providers)
    if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        raise BackendUnavailable("ONNX Runtime could not enable the CUDA execution provider")
    return session


class OnnxRuntimeBackend(Backend):
    runtime = "onnxruntime"

    def __init__(self, onnx_path: str, device: str = "cpu", quantize: str = "none", cache: str = ""):
        super().__init__()
        self.onnx_path = onnx_path
        self.device = device
        self.quantize = quantize
        self.cache = cache
        self.quantization_report: dict = {}
        if device == "cpu":
            # Measured on MiniLM-L6, 2 cores: a batch-1 call costs ~17 tokens' worth of batched compute.
            self.call_cost_tokens = 16
            # ~4 ms for one short text; a 128-token text ~10 ms: the longest the event loop may be held.
            self.inline_max_tokens = 128
        self._session = None
        self._input_names: tuple[str, ...] = ()
        self._output_name = ""

    def load(self, samples: list[dict[str, np.ndarray]] | None = None) -> None:
        self._use(_session(self.onnx_path, self.device))
        if self.quantize == "int8":
            self._try_int8(samples or [])
        self.ready = True

    def _use(self, session) -> None:
        self._session = session
        self._input_names = tuple(i.name for i in session.get_inputs())
        self._output_name = session.get_outputs()[0].name

    def _try_int8(self, samples: list[dict[str, np.ndarray]]) -> None:
        """Swap in the int8 model only if it agrees with fp32 on the check batches; else keep fp32 and say so."""
        from .quantize import compare_outputs, quantize_int8

        int8_path = quantize_int8(self.onnx_path, cache_dir(self.cache), onnx_model_hash(self.onnx_path))
        fp32 = [self.infer(s) for s in samples]
        self._use(_session(int8_path, "cpu"))
        report = compare_outputs(fp32, [self.infer(s) for s in samples])
        self.quantization_report = report
        if not report["accepted"]:
            log.warning("int8 model disagrees with fp32 (%s); serving fp32", report)
            self._use(_session(self.onnx_path, "cpu"))
            self.quantize = "none"

    def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {name: inputs[name] for name in self._input_names}
        return self._session.run([self._output_name], feeds)[0]

    def describe(self) -> dict:
        out = {"runtime": self.runtime, "device": self.device, "precision": "int8" if self.quantize == "int8" else "fp32"}
        if self._session is not None:
            out["providers"] = self._session.get_providers()
        if self.quantization_report:
            out["int8_check"] = self.quantization_report
        return out
