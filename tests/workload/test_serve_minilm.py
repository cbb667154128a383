"""The realistic model (all-MiniLM-L6-v2 encoder + seeded head): int8 vs fp32, torch vs ONNX Runtime, other layouts."""

from __future__ import annotations

import shutil

import httpx
import numpy as np
import pytest

from .serve_fixtures import MINILM_LABELS, plain_onnx_dir

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

SENTENCES = [
    "I loved this film, the acting was superb.",
    "Worst meal I have had in years.",
    "The package arrived on time and works as described.",
    "I want my money back.",
    "An average book with a predictable ending.",
    "The support team solved my problem in five minutes!",
    "It broke after two days.",
    "Quiet neighbourhood, friendly staff, would stay again.",
]


def _classify(url: str, texts=SENTENCES) -> tuple[list[str], np.ndarray]:
    resp = httpx.post(url + "/v2/models/model/infer", timeout=60,
                      json={"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]})
    assert resp.status_code == 200, resp.text
    out = {o["name"]: o for o in resp.json()["outputs"]}
    return out["label"]["data"], np.array(out["probabilities"]["data"]).reshape(len(texts), -1)


def _params(url: str) -> dict:
    return httpx.get(url + "/v2/models/model").json()["parameters"]


@pytest.fixture(scope="module")
def fp32_answers(minilm_model_dir, tmp_path_factory):
    from .serve_fixtures import ServerProcess

    server = ServerProcess(minilm_model_dir, tmp_path_factory.mktemp("fp32") / "server.log").start().wait_ready()
    try:
        yield _classify(server.url)
    finally:
        server.terminate()


def test_int8_quantized_model_agrees_with_fp32_on_argmax(start_server, minilm_model_dir, fp32_answers, tmp_path):
    server = start_server(minilm_model_dir, "--quantize", "int8", "--engine-cache-dir", str(tmp_path))
    params = _params(server.url)
    assert params["precision"] == "int8"
    assert params["int8_check"]["accepted"] and params["int8_check"]["decisive_agreement"] == 1.0
    labels, probs = _classify(server.url)
    fp32_labels, fp32_probs = fp32_answers
    decisive = np.abs(fp32_probs[:, 1] - fp32_probs[:, 0]) >= 0.2  # near-ties may legitimately flip
    assert decisive.sum() >= 6
    assert np.array(labels)[decisive].tolist() == np.array(fp32_labels)[decisive].tolist()


def test_torch_runtime_gives_the_same_probabilities_as_onnx_runtime(start_server, minilm_model_dir, fp32_answers):
    server = start_server(minilm_model_dir, "--runtime", "torch")
    assert _params(server.url)["runtime"] == "torch"
    labels, probs = _classify(server.url)
    assert labels == fp32_answers[0]
    np.testing.assert_allclose(probs, fp32_answers[1], atol=1e-4)


def test_a_plain_hugging_face_directory_is_served_with_torch(start_server, minilm_model_dir, fp32_answers):
    server = start_server(minilm_model_dir / "hf", "--model-format", "huggingface")
    params = _params(server.url)
    assert (params["runtime"], params["layout"]) == ("torch", "huggingface")
    assert params["labels"] == MINILM_LABELS
    assert _classify(server.url)[0] == fp32_answers[0]


def test_a_plain_onnx_directory_is_served_with_onnx_runtime(start_server, minilm_model_dir, fp32_answers, tmp_path):
    server = start_server(plain_onnx_dir(minilm_model_dir, tmp_path / "onnx-only"), "--model-format", "onnx")
    params = _params(server.url)
    assert (params["runtime"], params["layout"]) == ("onnxruntime", "onnx")
    assert params["labels"] == MINILM_LABELS  # from config.json's id2label
    np.testing.assert_allclose(_classify(server.url)[1], fp32_answers[1], atol=1e-5)


def test_a_directory_without_a_model_fails_fast_with_a_clear_message(start_server, tmp_path):
    shutil.copy(__file__, tmp_path / "not-a-model.py")
    server = start_server(tmp_path, ready=False)
    assert server.proc.wait(timeout=60) == 2
    assert "neither kubeforge.json, model.onnx nor config.json" in server.log()
