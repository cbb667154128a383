"""kubeforge-serve's gRPC port (Open Inference Protocol v2) with an unchanged tritonclient.grpc, and its error codes."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton

from kubeforge_workloads.serve import errors
from kubeforge_workloads.serve.grpcserver import grpc_code
from kubeforge_workloads.serve.protocol import v2_grpc
from kubeforge_workloads.serve.protocol.grpc import generate, inference_pb2 as pb
from tests.workload.serve_fixtures import ServerProcess, free_port

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

TEXTS = ["this movie was great", "the service was terrible"]


@pytest.fixture(scope="module")
def grpc_server(tiny_model_dir, tmp_path_factory):
    """A server with both ports, small limits so the error paths are cheap to reach."""
    server = ServerProcess(tiny_model_dir, tmp_path_factory.mktemp("grpc-server") / "server.log",
                           ["--grpc-port", str(free_port()), "--max-texts", "8", "--max-body-bytes", "4096"]).start()
    yield server.wait_ready()
    server.terminate()


@pytest.fixture
def client(grpc_server):
    port = grpc_server.args[grpc_server.args.index("--grpc-port") + 1]
    with triton.InferenceServerClient(f"127.0.0.1:{port}") as c:
        yield c


def text_input(texts: list[str]) -> triton.InferInput:
    inp = triton.InferInput("text", [len(texts)], "BYTES")
    inp.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=np.object_))
    return inp


def triton_error(call) -> triton.InferenceServerException:
    with pytest.raises(triton.InferenceServerException) as caught:
        call()
    return caught.value


def test_tritonclient_sees_the_server_live_ready_and_the_model_ready(client):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("model")


def test_tritonclient_reads_server_and_model_metadata(client):
    assert client.get_server_metadata(as_json=True)["name"] == "kubeforge-serve"
    meta = client.get_model_metadata("model", as_json=True)
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": ["-1"]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "score", "probabilities"]


def test_tritonclient_infers_bytes_in_and_fp32_out_with_the_same_answer_as_http(client, grpc_server):
    result = client.infer("model", [text_input(TEXTS)], outputs=[triton.InferRequestedOutput("probabilities"),
                                                                  triton.InferRequestedOutput("label")])
    probs = result.as_numpy("probabilities")
    assert probs.dtype == np.float32 and probs.shape == (2, 3)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    http = httpx.post(grpc_server.url + "/predict", json={"texts": TEXTS}).json()["predictions"]
    assert [label.decode() for label in result.as_numpy("label")] == [p["label"] for p in http]
    assert np.allclose(probs.max(axis=1), [p["score"] for p in http], atol=1e-6)


def test_without_requested_outputs_every_output_comes_back(client):
    result = client.infer("model", [text_input(TEXTS[:1])])
    assert [o.name for o in result.get_response().outputs] == ["label", "score", "probabilities"]
    assert result.as_numpy("score").shape == (1,)


@pytest.mark.parametrize("call, code, words", [
    (lambda c: c.infer("other", [text_input(TEXTS)]), "NOT_FOUND", "'other' is not served"),
    (lambda c: c.is_model_ready("other"), "NOT_FOUND", "'other' is not served"),
    (lambda c: c.infer("model", [text_input(["x"] * 9)]), "INVALID_ARGUMENT", "the limit is 8"),
    (lambda c: c.infer("model", [text_input(["word " * 200])]), "INVALID_ARGUMENT", "tokens"),
    (lambda c: c.infer("model", [text_input(TEXTS)], outputs=[triton.InferRequestedOutput("logits")]),
     "INVALID_ARGUMENT", "unknown output 'logits'"),
])
def test_bad_requests_get_the_grpc_code_of_their_http_status_and_the_same_message(client, call, code, words):
    err = triton_error(lambda: call(client))
    assert err.status() == f"StatusCode.{code}" and words in err.message()


def test_a_non_bytes_input_is_invalid_argument(client):
    inp = triton.InferInput("text", [2], "FP32")
    inp.set_data_from_numpy(np.zeros(2, np.float32))
    err = triton_error(lambda: client.infer("model", [inp]))
    assert err.status() == "StatusCode.INVALID_ARGUMENT" and "expected BYTES" in err.message()


def test_grpc_requests_are_counted_in_the_servers_metrics(client, grpc_server):
    client.infer("model", [text_input(TEXTS)])
    assert grpc_server.metric("kubeforge_requests_total", 'route="/inference.GRPCInferenceService/ModelInfer"') >= 1


# --- the error map and the message codec, without a server ----------------------------------------

@pytest.mark.parametrize("exc, code", [
    (errors.InvalidInput("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.InvalidSchema("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ModelNotFound("m"), grpc.StatusCode.NOT_FOUND),
    (errors.QueueFull("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.ModelNotReady("x"), grpc.StatusCode.UNAVAILABLE),
    (errors.ServeError("x"), grpc.StatusCode.INTERNAL),
])
def test_each_serving_error_maps_to_the_grpc_code_of_its_http_status(exc, code):
    assert grpc_code(exc) == code


def test_every_serving_error_class_maps_to_a_specific_code_unless_it_is_a_500():
    def subclasses(cls):
        return [cls] + [s for sub in cls.__subclasses__() for s in subclasses(sub)]

    for cls in subclasses(errors.ServeError):
        exc = cls.__new__(cls)
        assert (grpc_code(exc) == grpc.StatusCode.INTERNAL) == (cls.status == 500), cls


def test_texts_come_from_typed_bytes_contents_as_well_as_raw_contents():
    req = pb.ModelInferRequest(model_name="model")
    req.inputs.add(name="text", datatype="BYTES", shape=[2]).contents.bytes_contents.extend([b"a", "é".encode()])
    assert v2_grpc.request_texts(req) == ["a", "é"]


def test_a_shape_that_does_not_match_the_elements_is_refused():
    req = pb.ModelInferRequest(model_name="model")
    req.inputs.add(name="text", datatype="BYTES", shape=[3]).contents.bytes_contents.extend([b"a"])
    with pytest.raises(errors.InvalidInput, match="does not match 1 elements"):
        v2_grpc.request_texts(req)


def test_the_checked_in_grpc_modules_are_what_the_proto_generates():
    assert generate.drifted() == []


def test_grpc_is_off_unless_a_port_is_given_and_it_cannot_share_the_http_port():
    from kubeforge import servecontract as sc
    from kubeforge_workloads.serve.config import load_config

    assert load_config([], env={sc.MODEL_DIR: "/m"}).grpc_port == 0
    assert load_config([], env={sc.MODEL_DIR: "/m", sc.GRPC_PORT: "8081"}).grpc_port == 8081
    with pytest.raises(SystemExit):
        load_config(["--grpc-port", str(sc.DEFAULT_PORT)], env={sc.MODEL_DIR: "/m"})
