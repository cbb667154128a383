"""TensorRT: what runs without it (clear refusals) and what needs it (skips with the reason where it is absent)."""

from __future__ import annotations

import importlib.util

import httpx
import numpy as np
import pytest

from kubeforge_workloads.serve.errors import BackendUnavailable
from kubeforge_workloads.serve.runtime import probe_platform

pytest_plugins = ["tests.workload.serve_fixtures"]

PLATFORM = probe_platform()
HAVE_TRT = PLATFORM.gpu_name is not None and PLATFORM.tensorrt_version is not None
NO_TRT_REASON = (f"TensorRT needs a CUDA GPU and the tensorrt package; here gpu={PLATFORM.gpu_name!r}, "
                 f"tensorrt={PLATFORM.tensorrt_version!r}")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_the_backend_names_the_missing_package_when_tensorrt_is_absent(tmp_path):
    from kubeforge_workloads.serve.backends.trt import TensorRTBackend, profile_shapes

    backend = TensorRTBackend(str(tmp_path / "model.onnx"), profile_shapes(8, 64), str(tmp_path), "none")
    with pytest.raises(BackendUnavailable, match="needs the tensorrt package"):
        backend.load()


@pytest.mark.workload
@pytest.mark.skipif(HAVE_TRT, reason="this machine has TensorRT and a GPU")
def test_asking_for_tensorrt_without_it_exits_at_startup_with_the_reason(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, "--runtime", "tensorrt", ready=False)
    assert server.proc.wait(timeout=60) == 2
    assert "runtime tensorrt needs" in server.log()


@pytest.mark.gpu
@pytest.mark.workload
@pytest.mark.skipif(not HAVE_TRT, reason=NO_TRT_REASON)
def test_tensorrt_builds_a_cached_engine_and_answers_like_onnx_runtime(start_server, minilm_model_dir, tmp_path):
    texts = ["I loved this film.", "Worst meal in years.", "It broke after two days."]
    body = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": texts}]}

    def probabilities(url):
        out = httpx.post(url + "/v2/models/model/infer", json=body, timeout=120).json()["outputs"]
        return np.array(next(o for o in out if o["name"] == "probabilities")["data"])

    trt_server = start_server(minilm_model_dir, "--runtime", "tensorrt", "--engine-cache-dir", str(tmp_path))
    params = httpx.get(trt_server.url + "/v2/models/model").json()["parameters"]
    assert params["runtime"] == "tensorrt" and params["engine"].startswith("trt-")
    ort_server = start_server(minilm_model_dir, "--runtime", "onnxruntime")
    np.testing.assert_allclose(probabilities(trt_server.url), probabilities(ort_server.url), atol=2e-2)  # fp16
    assert list(tmp_path.glob("trt-*.engine")), "the engine was not cached"
