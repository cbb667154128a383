"""The ModelEndpoint API models and the CRD they generate: defaults, enums, CEL rules naming the field, scale."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubeforge.api.modelendpoint import DEFINITION
from kubeforge.crds import build_crd
from tests.unit.modelendpoint_wrappers import MakeEndpoint


def version() -> dict:
    return build_crd(DEFINITION)["spec"]["versions"][0]


def spec_schema() -> dict:
    return version()["schema"]["openAPIV3Schema"]["properties"]["spec"]


def messages(node: dict) -> list[str]:
    return [v["message"] for v in node.get("x-kubernetes-validations", [])]


def test_defaults_serve_onnx_text_classification_on_one_replica_with_auto_runtime():
    spec = MakeEndpoint().model()
    assert (spec.runtime, spec.replicas, spec.model.format, spec.model.task) == ("auto", 1, "onnx", "text-classification")
    assert (spec.batching.max_batch_size, spec.batching.max_delay_ms) == (32, 5)


def test_scale_subresource_points_at_spec_and_status_replicas_and_the_selector():
    assert version()["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def test_printer_columns_show_phase_ready_model_runtime_url_and_age():
    columns = version()["additionalPrinterColumns"]
    assert [c["name"] for c in columns if not c.get("priority")] == ["Phase", "Ready", "Model", "Runtime", "URL", "Age"]
    assert [c["name"] for c in columns if c.get("priority")] == ["Reason", "Model-URI", "Digest"]  # kubectl get -o wide
    assert build_crd(DEFINITION)["spec"]["names"]["shortNames"] == ["mep"]


def test_cel_rules_name_the_field_they_guard():
    model = spec_schema()["properties"]["model"]
    assert messages(model) == ["spec.model: set exactly one of uri or trainingJobRef"]
    assert "s3://" in messages(model["properties"]["uri"])[0]
    assert messages(spec_schema()["properties"]["autoscaling"]) == [
        "spec.autoscaling.minReplicas must not exceed spec.autoscaling.maxReplicas"
    ]
    assert messages(spec_schema()) == [
        "spec.runtime tensorrt needs spec.resources.gpus > 0",
        "spec.autoscaling.metric cpu needs spec.resources.cpu (utilization is measured against the request)",
    ]


def test_enums_reach_the_crd():
    props = spec_schema()["properties"]
    assert props["runtime"]["enum"] == ["auto", "tensorrt", "onnxruntime", "torch"]
    assert props["model"]["properties"]["format"]["enum"] == ["onnx", "huggingface"]
    assert props["model"]["properties"]["task"]["enum"] == ["text-classification"]
    assert props["autoscaling"]["properties"]["metric"]["enum"] == ["cpu", "inflight"]


def test_conditions_are_a_map_list_keyed_by_type():
    conditions = version()["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]


@pytest.mark.parametrize("bad", [{"runtime": "triton"}, {"replicas": -1}, {"batching": {"maxBatchSize": 0}}])
def test_the_models_refuse_what_the_crd_refuses(bad):
    make = MakeEndpoint()
    for key, value in bad.items():
        make.set(key, value)
    with pytest.raises(ValidationError):
        make.model()


def test_protocols_default_to_http_and_grpc_comes_on_top_of_it():
    assert MakeEndpoint().model().protocols == ["http"]
    assert MakeEndpoint().protocols("http", "grpc").model().protocols == ["http", "grpc"]
    protocols = spec_schema()["properties"]["protocols"]
    assert (protocols["items"]["enum"], protocols["x-kubernetes-list-type"]) == (["http", "grpc"], "set")
    assert messages(protocols) == ["spec.protocols must include http (probes and metrics use it)"]
    with pytest.raises(ValidationError):
        MakeEndpoint().protocols("http", "websocket").model()
