"""GPU smoke check for kubeforge-serve's GPU paths: ONNX Runtime CUDA EP and TensorRT, with timings.

Self-contained: needs numpy, onnxruntime (onnxruntime-gpu for the CUDA EP) and, for the TensorRT
path, tensorrt + torch; everything absent is reported as skipped, never as a failure. Our own
TensorRT backend class (workloads/kubeforge_workloads/serve/backends/trt.py) is what it runs.

    python bench/gpu_check.py --model-dir DIR     # a kubeforge model dir or a dir holding model.onnx
    python bench/gpu_check.py --tiny              # builds a tiny random BERT ONNX first (torch+transformers)

Prints one JSON object per check; exit status 1 only if a check that could run gave wrong answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "workloads"), str(REPO / "operator")]


def find_onnx(model_dir: Path) -> Path:
    for candidate in (model_dir / "onnx" / "model.onnx", model_dir / "model.onnx"):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"no model.onnx under {model_dir}")


def build_tiny(out: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=256, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    names = ["input_ids", "token_type_ids", "attention_mask"]
    sample = (torch.ones(2, 8, dtype=torch.long), torch.zeros(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model  # a submodule, so its weights export as initializers

        def forward(self, a, b, c):
            return self.model(input_ids=a, token_type_ids=b, attention_mask=c).logits

    out.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Logits(), sample, str(out / "model.onnx"), input_names=names, output_names=["logits"],
                      dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "logits": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return out


def batch(size: int, seq: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 900, size=(size, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 2, 3
    return {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}


def timed(fn, feeds, iterations=50) -> float:
    for _ in range(5):
        fn(feeds)
    start = time.perf_counter()
    for _ in range(iterations):
        fn(feeds)
    return (time.perf_counter() - start) / iterations * 1000


def ort_runner(path: Path, providers: list[str]):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=providers)
    names = [i.name for i in session.get_inputs()]
    return session, (lambda feeds: session.run(None, {n: feeds[n] for n in names})[0])


def check_ort_cuda(onnx_path: Path, shapes: dict, reference: dict) -> bool:
    """ONNX Runtime's CUDA EP against the CPU answers; True when it ran and disagreed."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print(json.dumps({"check": "onnxruntime-cuda", "skipped": "onnxruntime has no CUDAExecutionProvider "
                          f"(providers: {ort.get_available_providers()}; install onnxruntime-gpu)"}))
        return False
    session, cuda = ort_runner(onnx_path, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    diff = max(float(np.abs(cuda(v) - reference[k]).max()) for k, v in shapes.items())
    print(json.dumps({"check": "onnxruntime-cuda", "providers": session.get_providers(), "max_abs_diff": diff,
                      **{f"{k}_ms": round(timed(cuda, v), 3) for k, v in shapes.items()}}))
    return diff > 1e-2


def check_tensorrt(onnx_path: Path, shapes: dict, reference: dict, seq: int) -> bool:
    """kubeforge-serve's own TensorRT backend: engine build, fp16 answers, timings."""
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError as exc:
        print(json.dumps({"check": "tensorrt", "skipped": f"tensorrt or torch not importable: {exc}"}))
        return False
    from kubeforge_workloads.serve.backends.trt import TensorRTBackend, profile_shapes

    backend = TensorRTBackend(str(onnx_path), profile_shapes(32, max(seq, 128)), tempfile.mkdtemp(),
                              torch.cuda.get_device_name(0))
    start = time.perf_counter()
    backend.load()
    build_s = time.perf_counter() - start
    diff = max(float(np.abs(backend.infer(v) - reference[k]).max()) for k, v in shapes.items())
    print(json.dumps({"check": "tensorrt", "build_or_load_s": round(build_s, 2), "max_abs_diff": diff,
                      **backend.describe(), **{f"{k}_ms": round(timed(backend.infer, v), 3) for k, v in shapes.items()}}))
    return diff > 5e-2  # fp16


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--seq", type=int, default=64)
    args = ap.parse_args()
    model_dir = build_tiny(Path(tempfile.mkdtemp()) / "tiny") if args.tiny else args.model_dir
    onnx_path = find_onnx(model_dir)
    shapes = {"b1": batch(1, args.seq), "b32": batch(32, args.seq)}
    _, cpu = ort_runner(onnx_path, ["CPUExecutionProvider"])
    reference = {k: cpu(v) for k, v in shapes.items()}
    print(json.dumps({"check": "onnxruntime-cpu", **{f"{k}_ms": round(timed(cpu, v, 10), 3) for k, v in shapes.items()}}))
    failed = check_ort_cuda(onnx_path, shapes, reference)
    failed |= check_tensorrt(onnx_path, shapes, reference, args.seq)
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
