"""KServe's Python model server (kserve.ModelServer) around the shared ONNX classifier; no batching of its own.

    <venv-kserve>/bin/python bench/peers/kserve_server.py ONNX_DIR PORT     # POST /v1/models/model:predict
"""

import sys

import uvicorn

import kserve
from onnx_classifier import OnnxTextClassifier

# KServe hard-codes host 0.0.0.0; everything in this repo's benches listens on loopback only.
_uvicorn_config_init = uvicorn.Config.__init__


def _loopback_config(self, *args, **kwargs):
    kwargs["host"] = "127.0.0.1"
    _uvicorn_config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _loopback_config


class Classifier(kserve.Model):
    """Per request: what a KServe custom model typically does, the whole request in one model call."""

    def __init__(self, name: str, onnx_dir: str):
        super().__init__(name)
        self.onnx_dir = onnx_dir
        self.load()

    def load(self) -> bool:
        self.model = OnnxTextClassifier(self.onnx_dir)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        return {"predictions": self.model.predict(payload["instances"])}


if __name__ == "__main__":
    onnx_dir, port = sys.argv[1], int(sys.argv[2])
    # No per-request log line, as in every server the bench runs.
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False).start(
        [Classifier("model", onnx_dir)])
