"""The model directory kubeforge-serve loads: HF format, ONNX with dynamic axes, tokenizer, labels, manifest.

Layout and manifest keys are defined in kubeforge.servecontract. The manifest is written
last, so a directory with a manifest is a complete model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from kubeforge import servecontract

log = logging.getLogger(__name__)
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4
_PROBE_TEXTS = ["a short one", "a somewhat longer sentence to give the sequence axis another length", "ok"]


def export_model(model, tokenizer, out_dir: Path, label_names: list[str], max_seq_length: int, extra: dict | None = None) -> dict:
    """Write hf/, onnx/ and kubeforge.json under `out_dir`; returns the manifest."""
    model = model.to("cpu").float().eval()
    model.config.id2label = dict(enumerate(label_names))
    model.config.label2id = {name: i for i, name in enumerate(label_names)}
    hf_dir, onnx_dir = out_dir / "hf", out_dir / "onnx"
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    tokenizer.save_pretrained(onnx_dir)
    inputs = list(tokenizer.model_input_names)
    export_onnx(model, tokenizer, onnx_dir / "model.onnx", inputs)
    manifest = {
        "task": "text-classification",
        "labels": list(label_names),
        "maxSeqLength": max_seq_length,
        "onnx": "onnx/model.onnx",
        "huggingface": "hf",
        "inputs": inputs,
        "outputs": ["logits"],
        "onnxMaxAbsDiff": check_onnx(model, tokenizer, onnx_dir / "model.onnx"),
        **(extra or {}),
    }
    (out_dir / servecontract.MODEL_MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


class _LogitsOnly(torch.nn.Module):
    """Positional inputs in the tokenizer's order, one output: what the ONNX graph exposes."""

    def __init__(self, model, inputs: list[str]):
        super().__init__()
        self.model, self.inputs = model, inputs

    def forward(self, *tensors):
        return self.model(**dict(zip(self.inputs, tensors))).logits


def export_onnx(model, tokenizer, path: Path, inputs: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = tokenizer(_PROBE_TEXTS[:2], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    axes["logits"] = {0: "batch"}
    # The TorchScript exporter: the dynamo one takes minutes for BERT on 2 CPU cores.
    # eval() on the wrapper too: the exporter restores the wrapper's mode afterwards, recursively,
    # and a fresh Module is in training mode (dropout on).
    torch.onnx.export(
        _LogitsOnly(model, inputs).eval(), tuple(sample[n] for n in inputs), str(path),
        input_names=inputs, output_names=["logits"], dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False,
    )


def check_onnx(model, tokenizer, path: Path) -> float | None:
    """Largest |ONNX - torch| logit difference on probe batches of other shapes; fails above the tolerance."""
    try:
        import onnxruntime
    except ImportError:
        log.warning("onnxruntime is not installed; the ONNX export is not checked against torch")
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    worst = 0.0
    for texts in (_PROBE_TEXTS, _PROBE_TEXTS[:1]):
        encoded = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            expected = model(**encoded).logits.numpy()
        got = session.run(["logits"], {n: encoded[n].numpy() for n in tokenizer.model_input_names})[0]
        worst = max(worst, float(abs(got - expected).max()))
    if worst > ONNX_TOLERANCE:
        raise RuntimeError(f"ONNX export differs from torch by {worst:.2e} (> {ONNX_TOLERANCE})")
    return worst
