"""Bad input never kills the server: each mistake gets its own status code and a message naming the problem."""

from __future__ import annotations

import httpx
import pytest

from kubeforge import servecontract as sc

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

# tiny_server runs with --max-texts 8 --max-body-bytes 4096 --max-queue 16; the tiny model serves 64 tokens.


def test_a_body_over_the_limit_is_refused_with_413_before_parsing(tiny_server):
    resp = httpx.post(tiny_server.url + "/predict", content=b"{" + b" " * 5000 + b"}",
                      headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert "4096" in resp.json()["error"]


def test_a_chunked_body_over_the_limit_is_refused_with_413(tiny_server):
    def body():  # a generator body goes out chunked, without Content-Length
        yield b'{"texts": ["'
        for _ in range(5):
            yield b"a" * 1000

    resp = httpx.post(tiny_server.url + "/predict", content=body(), headers={"content-type": "application/json"})
    assert resp.status_code == 413


def test_malformed_json_is_a_400(tiny_server):
    resp = httpx.post(tiny_server.url + "/predict", content=b'{"texts": [', headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert "JSON" in resp.json()["error"]


def test_a_wrong_type_is_a_422_naming_the_field(tiny_server):
    resp = httpx.post(tiny_server.url + "/predict", json={"texts": ["fine", 7]})
    assert resp.status_code == 422
    assert "texts.1" in resp.json()["error"]


def test_v2_with_a_missing_field_is_a_400_naming_it(tiny_server):
    resp = httpx.post(tiny_server.url + "/v2/models/model/infer",
                      json={"inputs": [{"name": "text", "datatype": "BYTES", "data": ["x"]}]})
    assert resp.status_code == 400
    assert "inputs.0.shape" in resp.json()["error"]


def test_v2_with_the_wrong_datatype_is_a_400(tiny_server):
    resp = httpx.post(tiny_server.url + "/v2/models/model/infer",
                      json={"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]})
    assert resp.status_code == 400 and "BYTES" in resp.json()["error"]


def test_too_many_texts_is_a_400_stating_the_limit(tiny_server):
    resp = httpx.post(tiny_server.url + "/predict", json={"texts": ["ok"] * 9})
    assert resp.status_code == 400
    assert "limit is 8" in resp.json()["error"]


def test_too_long_a_text_is_a_400_stating_the_token_limit(tiny_server):
    resp = httpx.post(tiny_server.url + "/predict", json={"texts": ["fine", "hello world " * 40]})
    assert resp.status_code == 400
    assert "text 1" in resp.json()["error"] and "limit is 64 tokens" in resp.json()["error"]


def test_no_texts_is_a_400(tiny_server):
    assert httpx.post(tiny_server.url + "/predict", json={"texts": []}).status_code == 400


def test_an_unknown_model_is_a_404_on_every_protocol(tiny_server):
    v2 = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}
    assert httpx.post(tiny_server.url + "/v2/models/nope/infer", json=v2).status_code == 404
    assert httpx.post(tiny_server.url + "/v1/models/nope:predict", json={"instances": ["x"]}).status_code == 404
    assert httpx.get(tiny_server.url + "/v2/models/nope").status_code == 404
    assert httpx.get(tiny_server.url + "/v2/models/nope/ready").status_code == 404


def test_more_texts_than_the_queue_holds_is_a_429_with_retry_after(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, "--max-queue", "4", "--max-texts", "8")
    resp = httpx.post(server.url + "/predict", json={"texts": ["ok"] * 5})
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) >= 1
    assert httpx.post(server.url + "/predict", json={"texts": ["ok"] * 4}).status_code == 200


def test_a_model_still_loading_answers_503_but_the_server_is_live(tiny_model_dir):
    # The app without its lifespan (TestClient outside `with`) never starts loading: a deterministic
    # "still loading" server, in-process because a real one's loading window is too short to hit reliably.
    from fastapi.testclient import TestClient

    from kubeforge_workloads.serve.app import create_app
    from kubeforge_workloads.serve.config import load_config

    app = create_app(load_config(["--model-dir", str(tiny_model_dir)], env={}))
    client = TestClient(app)

    assert client.get(sc.LIVE_PATH).status_code == 200
    assert client.get(sc.READY_PATH).status_code == 503
    assert client.get("/v2/models/model/ready").status_code == 503
    assert client.post("/predict", json={"text": "hi"}).status_code == 503


def test_the_server_still_answers_after_all_of_the_above(tiny_server):
    assert httpx.get(tiny_server.url + sc.READY_PATH).status_code == 200
    assert httpx.post(tiny_server.url + "/predict", json={"text": "still here"}).status_code == 200
    assert tiny_server.metric("kubeforge_requests_total", 'code="500"') == 0
