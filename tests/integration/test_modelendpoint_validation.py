"""The API server refuses invalid ModelEndpoints with a message that names the field (OpenAPI + CEL in the CRD)."""

from __future__ import annotations

import json

import pytest

from tests.integration.operator_fixture import apply_crds

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def crds(cluster):
    apply_crds(cluster.kubeconfig)


def dry_run(cluster, spec: dict) -> str:
    """The API server's refusal ('' when accepted); a server-side dry run persists nothing, even in `default`."""
    obj = {"apiVersion": "kubeforge.io/v1alpha1", "kind": "ModelEndpoint", "metadata": {"name": "x", "namespace": "default"}, "spec": spec}
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    return done.stderr if done.returncode else ""


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"model": {"uri": "/m", "trainingJobRef": {"name": "t"}}}, "spec.model: set exactly one of uri or trainingJobRef"),
        ({"model": {"format": "onnx"}}, "spec.model: set exactly one of uri or trainingJobRef"),
        ({"model": {"uri": "gs://bucket/model"}}, "other object stores: through their S3 API"),
        ({"model": {"uri": "/m"}, "autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
         "spec.autoscaling.minReplicas: Invalid value"),
        ({"model": {"uri": "/m"}, "runtime": "tensorrt"}, "spec.runtime tensorrt needs spec.resources.gpus > 0"),
        ({"model": {"uri": "/m"}, "runtime": "triton"}, 'spec.runtime: Unsupported value: "triton"'),
        ({"model": {"uri": "/m", "format": "pt"}}, 'spec.model.format: Unsupported value: "pt"'),
        ({"model": {"uri": "/m"}, "autoscaling": {"maxReplicas": 3, "metric": "qps"}}, "spec.autoscaling.metric"),
        ({"model": {"uri": "/m"}, "replicas": -1}, "spec.replicas"),
        ({"model": {"uri": "/m"}, "autoscaling": {"maxReplicas": 3}}, "spec.autoscaling.metric cpu needs spec.resources.cpu"),
        ({"model": {"uri": "/m"}, "protocols": ["grpc"]}, "spec.protocols must include http"),
        ({"model": {"uri": "/m"}, "protocols": ["http", "ws"]}, 'spec.protocols[1]: Unsupported value: "ws"'),
    ],
    ids=["uri and ref", "neither", "s3", "min above max", "tensorrt without gpu", "runtime enum", "format enum",
         "metric enum", "negative replicas", "cpu metric without a cpu request", "grpc without http", "protocol enum"],
)
def test_invalid_spec_is_refused_naming_the_field(cluster, crds, spec, message):
    refused = dry_run(cluster, spec)
    assert message in refused, refused


def test_a_valid_spec_is_accepted(cluster, crds):
    assert dry_run(cluster, {"model": {"trainingJobRef": {"name": "t"}}, "autoscaling": {"maxReplicas": 3}, "resources": {"cpu": "1"}}) == ""
    assert dry_run(cluster, {"model": {"uri": "/m"}, "protocols": ["http", "grpc"]}) == ""
