"""BentoML around the shared ONNX classifier, with adaptive batching (max batch 32, as kubeforge-serve's).

    cd bench/peers && <venv-bentoml>/bin/bentoml serve bentoml_service:Classifier --host 127.0.0.1 --port PORT
    (env KUBEFORGE_BENCH_ONNX_DIR=ONNX_DIR)                      # POST /classify {"instances": [...]}

BentoML's dispatcher picks the wait per batch from observed latencies (its "adaptive batching");
max_latency_ms is its queueing budget, after which it refuses requests: left at BentoML's default.
"""

import os

import bentoml

from onnx_classifier import MAX_BATCH_SIZE, OnnxTextClassifier


# One worker process, as kubeforge-serve runs one; no access log line per request, as in every server the bench runs.
@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Classifier:
    def __init__(self) -> None:
        self.model = OnnxTextClassifier(os.environ["KUBEFORGE_BENCH_ONNX_DIR"])

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE)
    def classify(self, instances: list[str]) -> list[dict]:
        return self.model.predict(instances)
