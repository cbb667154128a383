"""A hung or failing model never hangs a client nor takes others down: 504 at the deadline, readiness 503
while the model is stuck, and a text the model fails on fails only its own request."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from kubeforge import servecontract as sc
from tests.waiting import wait_for
from tests.workload.serve_fixtures import faulty

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

# Four texts of ~40 tokens: over the 128 tokens a lone request may run on the event-loop thread
# (batcher.py), so the model call happens on the inference thread, as every batched call does.
def _texts(word: str = "movie") -> list[str]:
    return [f"{word} " + "good film " * 20] * 4


def test_a_hung_model_answers_504_at_the_deadline_and_readiness_turns_503(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, "--request-timeout-s", "1", launcher=faulty("hang", "kubeforge"))

    resp = httpx.post(server.url + "/predict", json={"texts": _texts("kubeforge")}, timeout=30)

    assert resp.status_code == 504
    assert "deadline of 1 s" in resp.json()["error"]
    wait_for(lambda: httpx.get(server.url + sc.READY_PATH).status_code == 503, 10, "readiness to fail")
    assert "has not finished a batch" in httpx.get(server.url + sc.READY_PATH).json()["error"]
    # Others are refused at once instead of queueing behind the hung call; liveness still answers.
    assert httpx.post(server.url + "/predict", json={"texts": _texts()}, timeout=30).status_code == 503
    assert httpx.get(server.url + sc.LIVE_PATH).status_code == 200
    # The hung inference thread cannot be joined: SIGTERM still ends the process (exit 3 says why).
    assert server.terminate(timeout=30) == 3


def test_a_text_the_model_fails_on_fails_only_its_own_request(start_server, tiny_model_dir, tmp_path):
    # A first request holds the inference thread at a gate (serve_faults.py) while eight more queue behind
    # it; released, the next batch takes all eight (32 texts, room for 64), and that one model call fails.
    gate = tmp_path / "gate"
    server = start_server(tiny_model_dir, "--max-batch-size", "64", "--max-delay-ms", "0",
                          env={"KUBEFORGE_TEST_GATE": str(gate)}, launcher=faulty("fail", "kubeforge"))
    bodies = [{"texts": _texts("kubeforge" if i == 3 else "movie")} for i in range(8)]

    def post(body: dict) -> httpx.Response:
        return httpx.post(server.url + "/predict", json=body, timeout=120)

    def queued() -> float:
        text = httpx.get(server.url + "/metrics").text
        return float(re.search(r"^kubeforge_queue_depth (\S+)$", text, re.M).group(1))

    with ThreadPoolExecutor(1 + len(bodies)) as pool:
        held = pool.submit(post, {"texts": _texts("gate")})
        wait_for(lambda: (tmp_path / "gate.reached").exists(), 60, "the gate request to reach the model")
        futures = [pool.submit(post, body) for body in bodies]
        wait_for(lambda: queued() == 4 * len(bodies), 60, "all eight requests to queue behind the gate")
        gate.touch()
        responses = [f.result() for f in futures]
        assert held.result().status_code == 200

    assert [r.status_code for r in responses] == [200, 200, 200, 500, 200, 200, 200, 200]
    assert "the model failed on this input: ValueError" in responses[3].json()["error"]
    split = re.search(r"batch of (\d+) failed; splitting", server.log())
    assert split and int(split.group(1)) == 4 * len(bodies), "the failing text did not share a batch with others"
