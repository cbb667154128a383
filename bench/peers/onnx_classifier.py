"""The model every peer server wraps: the ONNX export kubeforge-serve serves, with the same session options.

Loaded by the peers in their own venvs (numpy, onnxruntime and tokenizers only, no kubeforge import).
Per call: tokenize each text, pad to the longest in the call, one session.run, softmax; the same work
kubeforge-serve's model does per batch (minus its split of a batch by length), so what differs between
the servers is the serving around the model. SESSION_CONFIG must equal kubeforge-serve's ONNX Runtime
options (tests/unit/test_bench_peers.py checks that).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

# The batching every peer is configured with, as kubeforge-serve's defaults (maxBatchSize 32, maxDelayMs 5).
MAX_BATCH_SIZE = 32
MAX_DELAY_S = 0.005

SESSION_CONFIG = {
    "graph_optimization_level": "ORT_ENABLE_ALL",
    "execution_mode": "ORT_SEQUENTIAL",
    "inter_op_num_threads": 1,
    "config_entries": {"session.intra_op.allow_spinning": "0"},
}


def session_options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, SESSION_CONFIG["graph_optimization_level"])
    opts.execution_mode = getattr(ort.ExecutionMode, SESSION_CONFIG["execution_mode"])
    opts.inter_op_num_threads = SESSION_CONFIG["inter_op_num_threads"]
    for key, value in SESSION_CONFIG["config_entries"].items():
        opts.add_session_config_entry(key, value)
    return opts


class OnnxTextClassifier:
    def __init__(self, onnx_dir: str):
        self.tokenizer = Tokenizer.from_file(f"{onnx_dir}/tokenizer.json")
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.session = ort.InferenceSession(f"{onnx_dir}/model.onnx", sess_options=session_options(),
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.predict(["warm-up"])

    def predict(self, texts: list[str]) -> list[dict]:
        # One text at a time, as kubeforge-serve does: encode_batch would wake the tokenizer's thread pool.
        encodings = [self.tokenizer.encode(t) for t in texts]
        length = max(len(e.ids) for e in encodings)
        arrays = {name: np.zeros((len(texts), length), dtype=np.int64)
                  for name in ("input_ids", "attention_mask", "token_type_ids")}
        for row, e in enumerate(encodings):
            arrays["input_ids"][row, :len(e.ids)] = e.ids
            arrays["attention_mask"][row, :len(e.ids)] = 1
            arrays["token_type_ids"][row, :len(e.ids)] = e.type_ids
        logits = self.session.run(None, {n: arrays[n] for n in self.inputs})[0]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        return [{"label": int(p.argmax()), "score": float(p.max())} for p in probs]
