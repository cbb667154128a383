"""kubeforge-serve answers every route of /predict, KServe v1 and the Open Inference Protocol v2 (real uvicorn)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from kubeforge import servecontract as sc

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

TEXTS = ["this movie was great", "the service was terrible"]


def test_predict_labels_each_text_with_a_known_label_and_probabilities_summing_to_one(tiny_server):
    resp = httpx.post(tiny_server.url + "/predict", json={"texts": TEXTS})
    assert resp.status_code == 200
    preds = resp.json()["predictions"]
    assert len(preds) == 2
    for p in preds:
        assert p["label"] in ("negative", "neutral", "positive")
        assert p["score"] == max(p["scores"].values())
        assert sum(p["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_predict_accepts_a_single_text(tiny_server):
    resp = httpx.post(tiny_server.url + "/predict", json={"text": TEXTS[0]})
    assert resp.status_code == 200 and len(resp.json()["predictions"]) == 1


def test_kserve_v1_predict_takes_instances_as_strings_or_objects(tiny_server):
    resp = httpx.post(tiny_server.url + "/v1/models/model:predict", json={"instances": [TEXTS[0], {"text": TEXTS[1]}]})
    assert resp.status_code == 200
    assert [p["label"] for p in resp.json()["predictions"]] == \
        [p["label"] for p in httpx.post(tiny_server.url + "/predict", json={"texts": TEXTS}).json()["predictions"]]


def test_v2_health_routes_say_live_and_ready(tiny_server):
    assert httpx.get(tiny_server.url + sc.LIVE_PATH).status_code == 200
    assert httpx.get(tiny_server.url + sc.READY_PATH).status_code == 200
    assert httpx.get(tiny_server.url + "/v2/models/model/ready").json() == {"name": "model", "ready": True}


def test_v2_model_metadata_reports_the_resolved_runtime_and_tensors(tiny_server):
    meta = httpx.get(tiny_server.url + "/v2/models/model").json()
    assert meta["platform"] == "kubeforge_onnxruntime"
    assert meta["parameters"]["runtime"] == "onnxruntime" and meta["parameters"]["device"] == "cpu"
    assert meta["parameters"]["labels"] == ["negative", "neutral", "positive"]
    assert [i["name"] for i in meta["inputs"]] == ["text"]
    assert {o["name"] for o in meta["outputs"]} == {"label", "score", "probabilities"}


def test_v2_infer_json_returns_labels_scores_and_probabilities(tiny_server):
    body = {"id": "r1", "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": TEXTS}]}
    resp = httpx.post(tiny_server.url + "/v2/models/model/infer", json=body)
    assert resp.status_code == 200
    out = {o["name"]: o for o in resp.json()["outputs"]}
    assert resp.json()["id"] == "r1"
    assert out["probabilities"]["shape"] == [2, 3]
    probs = np.array(out["probabilities"]["data"]).reshape(2, 3)
    assert probs.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert out["score"]["data"] == pytest.approx(probs.max(axis=1).tolist(), abs=1e-6)


def test_v2_infer_returns_only_the_outputs_asked_for(tiny_server):
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["ok"]}],
            "outputs": [{"name": "label"}]}
    outputs = httpx.post(tiny_server.url + "/v2/models/model/infer", json=body).json()["outputs"]
    assert [o["name"] for o in outputs] == ["label"]


def test_tritonclient_http_talks_to_the_server_unchanged(tiny_server):
    tritonclient_http = pytest.importorskip("tritonclient.http")
    client = tritonclient_http.InferenceServerClient(tiny_server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("model")
    assert client.get_model_metadata("model")["name"] == "model"
    results = {}
    for binary in (True, False):  # the binary tensor extension (tritonclient's default) and plain JSON
        text = tritonclient_http.InferInput("text", [2], "BYTES")
        text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object), binary_data=binary)
        outputs = [tritonclient_http.InferRequestedOutput(n, binary_data=binary) for n in ("label", "probabilities")]
        result = client.infer("model", [text], outputs=outputs)
        results[binary] = ([str(x, "utf-8") if isinstance(x, bytes) else x for x in result.as_numpy("label")],
                           result.as_numpy("probabilities"))
    assert results[True][0] == results[False][0]
    np.testing.assert_allclose(results[True][1], results[False][1], atol=1e-6)
    assert results[True][1].shape == (2, 3)


def test_openapi_docs_are_served(tiny_server):
    assert httpx.get(tiny_server.url + "/docs").status_code == 200
    assert "/v2/models/{name}/infer" in httpx.get(tiny_server.url + "/openapi.json").json()["paths"]


def test_metrics_expose_requests_latency_batches_queue_inflight_and_load_time(tiny_server):
    httpx.post(tiny_server.url + "/predict", json={"texts": TEXTS})
    text = httpx.get(tiny_server.url + sc.METRICS_PATH).text
    for name in ("kubeforge_requests_total", "kubeforge_request_duration_seconds_bucket", "kubeforge_batch_size_bucket",
                 "kubeforge_queue_depth", sc.INFLIGHT_METRIC, "kubeforge_model_load_seconds"):
        assert name in text, name
    assert tiny_server.metric("kubeforge_requests_total", 'route="/predict"') >= 1
    assert tiny_server.metric("kubeforge_model_load_seconds") > 0


def test_the_demo_client_prints_a_label_per_text(tiny_server, capsys):
    from kubeforge_workloads.serve.client import main

    assert main(["--url", tiny_server.url, "--wait", "30", *TEXTS]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == TEXTS and all(r["label"] in ("negative", "neutral", "positive") for r in rows)
