"""torch backend: the Hugging Face model in eager mode, for models ONNX cannot cover."""

from __future__ import annotations

import inspect

import numpy as np

from ..errors import BackendUnavailable
from ..model import Backend


class TorchBackend(Backend):
    runtime = "torch"

    def __init__(self, hf_dir: str, device: str = "cpu"):
        super().__init__()
        self.hf_dir = hf_dir
        self.device = device
        self._model = None
        self._accepts: frozenset[str] = frozenset()

    def load(self, samples: list[dict[str, np.ndarray]] | None = None) -> None:
        try:
            import torch  # noqa: F401  (the serve image may ship without torch)
            from transformers import AutoModelForSequenceClassification
        except ImportError as exc:
            raise BackendUnavailable(f"runtime torch needs torch and transformers: {exc}") from exc
        model = AutoModelForSequenceClassification.from_pretrained(self.hf_dir)
        self._model = model.eval().to(self.device)
        # DistilBERT-like models take no token_type_ids; feed only what forward() accepts.
        self._accepts = frozenset(inspect.signature(model.forward).parameters)
        self.ready = True

    def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        feeds = {k: torch.from_numpy(v).to(self.device) for k, v in inputs.items() if k in self._accepts}
        with torch.inference_mode():
            return self._model(**feeds).logits.float().cpu().numpy()

    def describe(self) -> dict:
        return {"runtime": self.runtime, "device": self.device, "precision": "fp32"}
