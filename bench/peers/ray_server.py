"""Ray Serve around the shared ONNX classifier, batched with @serve.batch (max batch and wait as kubeforge-serve's).

    <venv-ray>/bin/python bench/peers/ray_server.py ONNX_DIR PORT     # POST /classify {"instances": [...]}

A local Ray cluster of its own (head, controller, HTTP proxy, one replica) in a private temp dir;
SIGTERM shuts Serve and Ray down.
"""

import asyncio
import os
import signal
import sys
import tempfile
import threading

import ray
from ray import serve
from starlette.requests import Request

from onnx_classifier import MAX_BATCH_SIZE, MAX_DELAY_S, OnnxTextClassifier


# num_cpus 0: the replica shares the two cores with the proxy, as kubeforge-serve's threads share them.
# No access log line per request, as in every server the bench runs.
@serve.deployment(num_replicas=1, max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0},
                  logging_config={"enable_access_log": False})
class Classifier:
    def __init__(self, onnx_dir: str):
        self.model = OnnxTextClassifier(onnx_dir)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=MAX_DELAY_S)
    async def classify(self, texts: list[str]) -> list[dict]:
        return self.model.predict(texts)

    async def __call__(self, request: Request) -> dict:
        body = await request.json()
        return {"predictions": await asyncio.gather(*(self.classify(t) for t in body["instances"]))}


def main() -> None:
    onnx_dir, port = sys.argv[1], int(sys.argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Workers inherit the driver's env: they import onnx_classifier from this directory.
    os.environ["PYTHONPATH"] = os.path.dirname(os.path.abspath(__file__))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             _temp_dir=tempfile.mkdtemp(prefix="kf-ray-", dir="/tmp"))
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(Classifier.bind(onnx_dir), route_prefix="/classify")
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
