"""Dynamic batching groups concurrent requests without changing their answers; SIGTERM drains in-flight work."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from kubeforge import servecontract as sc

from tests.waiting import wait_for

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

# Different lengths, so a batch really is padded to its longest member.
TEXTS = [("good " * (i % 7 + 1) + "movie number " + str(i)).strip() for i in range(16)]


def _probabilities(url: str, text: str) -> np.ndarray:
    resp = httpx.post(url + "/predict", json={"text": text}, timeout=60)
    assert resp.status_code == 200, resp.text
    scores = resp.json()["predictions"][0]["scores"]
    return np.array([scores[k] for k in sorted(scores)])


def _all_at_once(url: str, texts: list[str]) -> list[np.ndarray]:
    """One thread per text, released together by a barrier, so the requests overlap."""
    barrier = threading.Barrier(len(texts))

    def one(text: str) -> np.ndarray:
        barrier.wait()
        return _probabilities(url, text)

    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(one, texts))


def _batches_and_texts(server) -> tuple[float, float]:
    return server.metric("kubeforge_batch_size_count"), server.metric("kubeforge_batch_size_sum")


def test_concurrent_requests_are_batched_and_answer_as_they_would_alone(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, "--max-batch-size", "16", "--max-delay-ms", "200")
    alone = [_probabilities(server.url, t) for t in TEXTS]  # sequential: every batch holds one text
    batches_before, texts_before = _batches_and_texts(server)
    assert batches_before == texts_before  # nothing batched yet

    together = _all_at_once(server.url, TEXTS)

    batches, texts = _batches_and_texts(server)
    assert texts - texts_before == len(TEXTS)
    assert batches - batches_before < len(TEXTS), "no two concurrent requests shared a model call"
    np.testing.assert_allclose(np.stack(together), np.stack(alone), atol=1e-5)


def test_a_lone_request_does_not_wait_for_company(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, "--max-delay-ms", "5000")
    resp = httpx.post(server.url + "/predict", json={"text": "just me"}, timeout=60)
    assert resp.status_code == 200
    assert resp.elapsed.total_seconds() < 2.5  # far below the 5 s batching delay


def test_sigterm_finishes_in_flight_requests_then_exits_cleanly(start_server, minilm_model_dir):
    # Batch size 1 makes each 48-text request take a while, so they are surely in flight at SIGTERM.
    server = start_server(minilm_model_dir, "--max-batch-size", "1", "--max-texts", "48")
    texts = [f"request text number {i}, long enough to take a moment" for i in range(48)]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(httpx.post, server.url + "/predict", json={"texts": texts}, timeout=120)
                   for _ in range(3)]
        wait_for(lambda: server.metric(sc.INFLIGHT_METRIC) >= 3, 30, "three requests in flight", interval=0.05, max_interval=0.05)
        exit_code = server.terminate(timeout=60)
        responses = [f.result() for f in futures]
    assert exit_code == 0, server.log()
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(len(r.json()["predictions"]) == 48 for r in responses)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + sc.LIVE_PATH, timeout=5)
