"""KServe's Python model server wrapping the same ONNX Runtime session: the comparison point for serve_bench.py.

Runs in its own venv (kserve pins its own fastapi/numpy); started by serve_bench.py as
`<venv-kserve>/bin/python bench/kserve_server.py MODEL_ONNX_DIR PORT`.
"""

import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from tokenizers import Tokenizer

import kserve

# KServe hard-codes host 0.0.0.0; everything in this repo's benches listens on loopback only.
_uvicorn_config_init = uvicorn.Config.__init__


def _loopback_config(self, *args, **kwargs):
    kwargs["host"] = "127.0.0.1"
    _uvicorn_config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _loopback_config


class OnnxTextClassifier(kserve.Model):
    """Per request: tokenize, pad, one session.run, softmax; what a KServe custom model typically does."""

    def __init__(self, name: str, onnx_dir: str):
        super().__init__(name)
        self.onnx_dir = onnx_dir
        self.load()

    def load(self) -> bool:
        self.tokenizer = Tokenizer.from_file(f"{self.onnx_dir}/tokenizer.json")
        self.tokenizer.no_truncation()
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # same session options as ours
        self.session = ort.InferenceSession(f"{self.onnx_dir}/model.onnx", sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        encodings = self.tokenizer.encode_batch(payload["instances"])
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        logits = self.session.run(None, {n: arrays[n] for n in self.inputs})[0]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        return {"predictions": [{"label": int(p.argmax()), "score": float(p.max())} for p in probs]}


if __name__ == "__main__":
    onnx_dir, port = sys.argv[1], int(sys.argv[2])
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([OnnxTextClassifier("model", onnx_dir)])
