"""The S3 pair under the chart's RBAC only (no verb on Secrets): pods read the keys through secretKeyRef, the operator never reads the Secret."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.integration.clusterkit import wait_for
from tests.integration.modelendpoint_kit import endpoint
from tests.integration.test_chart_rbac import chart_operator, phase_of, refusals  # noqa: F401 - the fixture
from tests.integration.test_s3_storage import CPU, DIGEST, GROUP, SUMMARY, VERSION, s3_training_job, secret_refs

pytestmark = pytest.mark.integration


def test_s3_pods_read_the_keys_through_secret_key_ref_and_the_operator_never_reads_the_secret(cluster, namespace, chart_operator):  # noqa: F811
    """Under the chart's RBAC (no verb on Secrets): a 2-node job with no shared volume trains, and an endpoint serves its S3 export."""
    core, custom = client.CoreV1Api(cluster.api), client.CustomObjectsApi(cluster.api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "s3-keys"},
                                              "stringData": {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}})
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", s3_training_job("minilm"))
    mep = endpoint("minilm", model={"trainingJobRef": {"name": "minilm"}}, resources={"cpu": "500m", "memory": "1Gi"}, nodePool=CPU)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelendpoints", mep)

    job = wait_for(lambda: phase_of(chart_operator, custom, namespace, "trainingjobs", "minilm", "Succeeded"), timeout=120,
                   message="TrainingJob Succeeded")
    assert (job["status"]["result"]["modelUri"], job["status"]["result"]["modelDigest"]) == (SUMMARY["modelUri"], DIGEST)
    worker = client.BatchV1Api(cluster.api).read_namespaced_job("minilm-a1", namespace).spec.template.spec
    assert secret_refs(worker.containers[0].env) == {
        "AWS_ACCESS_KEY_ID": {"name": "s3-keys", "key": "AWS_ACCESS_KEY_ID", "optional": None},
        "AWS_SECRET_ACCESS_KEY": {"name": "s3-keys", "key": "AWS_SECRET_ACCESS_KEY", "optional": None},
    }
    assert not [v for v in worker.volumes if v.persistent_volume_claim], "an s3:// job needs no shared volume"

    wait_for(lambda: phase_of(chart_operator, custom, namespace, "modelendpoints", "minilm", "Ready"), timeout=120,
             message="ModelEndpoint Ready")
    pod = client.AppsV1Api(cluster.api).read_namespaced_deployment("minilm", namespace).spec.template.spec
    fetch = pod.init_containers[0]
    assert fetch.name == "model-fetch" and secret_refs(fetch.env)["AWS_SECRET_ACCESS_KEY"]["name"] == "s3-keys"
    assert {e.name: e.value for e in fetch.env}["KUBEFORGE_MODEL_DIGEST"] == DIGEST  # the export the job reported, no other
    assert not secret_refs(pod.containers[0].env), "the server container itself never gets the keys"
    assert refusals(chart_operator) == []  # it never asked for the Secret: the chart grants nothing on Secrets
