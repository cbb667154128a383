"""s3:// in the pod specs: keys through secretKeyRef only, a staging emptyDir, the model-fetch init container, its report."""

from __future__ import annotations

import json

import pytest

from kubeforge import contract, servecontract as sc, storage
from kubeforge.api.common import ObjectStorage
from kubeforge.modelendpoint import builders, download
from kubeforge.modelendpoint.modelsource import ModelResolution, with_download_failure
from kubeforge.modelendpoint.runtime import resolve_runtime
from kubeforge.settings import Settings
from kubeforge.trainingjob.env import launch_env
from kubeforge.trainingjob.pod import worker_pod_template
from tests.unit.modelendpoint_wrappers import MakeEndpoint
from tests.unit.trainingjob_wrappers import MakeTrainingJob

STORE = {"endpoint": "http://seaweedfs.storage:8333", "region": "us-east-1",
         "credentials": {"secretName": "s3-keys"}, "tls": {"caBundle": {"name": "private-ca"}}}
MODEL = "s3://models/sentiment/v1"


def s3_job() -> MakeTrainingJob:
    return MakeTrainingJob().nodes(2).checkpoint("s3://ckpt/runs").output("s3://models/sentiment").set("storage", STORE)


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def test_a_trainer_with_s3_checkpoints_gets_the_uri_and_a_staging_dir_not_a_shared_volume():
    launch = launch_env(s3_job().model())
    assert launch.checkpoint_dir == "s3://ckpt/runs/train"
    assert (launch.output_uri, launch.output_dir) == ("s3://models/sentiment", "/var/lib/kubeforge/staging/models/sentiment")
    assert launch.staging_dir == storage.STAGING_ROOT
    pod = worker_pod_template(s3_job().model(), 1, Settings())["spec"]
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert {"name": "staging", "emptyDir": {}} in pod["volumes"]


def test_trainer_keys_come_from_the_secret_through_secret_key_ref_and_never_as_values():
    env = env_of(worker_pod_template(s3_job().model(), 1, Settings())["spec"]["containers"][0])
    assert env["AWS_ACCESS_KEY_ID"] == {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "s3-keys", "key": "AWS_ACCESS_KEY_ID"}}}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3-keys", "key": "AWS_SECRET_ACCESS_KEY"}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://seaweedfs.storage:8333"
    assert env[storage.CA_FILE_ENV]["value"] == "/etc/kubeforge/s3-ca/ca.crt"


def test_without_credentials_the_pod_identity_is_used_and_no_key_is_injected():
    job = MakeTrainingJob().output("s3://models/x").model()
    env = env_of(worker_pod_template(job, 1, Settings())["spec"]["containers"][0])
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"} & set(env)
    assert env[contract.STAGING_DIR]["value"] == storage.STAGING_ROOT


def test_a_pvc_job_gets_no_object_store_env():
    env = env_of(worker_pod_template(MakeTrainingJob().output("pvc://models/x").model(), 1, Settings())["spec"]["containers"][0])
    assert contract.STAGING_DIR not in env and "AWS_ENDPOINT_URL" not in env


def s3_pod(make: MakeEndpoint, digest: str | None = None) -> dict:
    spec = make.model()
    ep = builders.Endpoint(make.obj(), spec, MODEL, resolve_runtime(spec), "server:1", model_digest=digest)
    return builders.build_deployment(ep)["spec"]["template"]["spec"]


def test_an_s3_model_is_fetched_by_an_init_container_of_the_server_image_into_the_staging_dir():
    pod = s3_pod(MakeEndpoint().uri(MODEL).set("storage", STORE), digest="sha256:abc")
    fetch, server = pod["initContainers"][0], pod["containers"][0]
    assert (fetch["name"], fetch["image"], fetch["command"]) == ("model-fetch", "server:1", download.FETCH_COMMAND)
    fetch_env = env_of(fetch)
    assert fetch_env[sc.MODEL_URI]["value"] == MODEL and fetch_env[sc.MODEL_DIGEST]["value"] == "sha256:abc"
    assert fetch_env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-keys"
    assert env_of(server)[sc.MODEL_DIR]["value"] == fetch_env[sc.MODEL_DIR]["value"] == "/var/lib/kubeforge/staging/models/sentiment/v1"
    assert {"name": "staging", "mountPath": storage.STAGING_ROOT, "readOnly": True} in server["volumeMounts"]
    assert "AWS_SECRET_ACCESS_KEY" not in env_of(server)  # the server itself never sees the keys
    assert {"name": "s3-ca-bundle", "configMap": {"name": "private-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in pod["volumes"]


def test_the_trainingjobs_storage_is_used_when_the_endpoint_names_none():
    make = MakeEndpoint().from_job("train")
    spec = make.model()
    ep = builders.Endpoint(make.obj(), spec, MODEL, "onnxruntime", "server:1", storage=ObjectStorage.model_validate(STORE))
    fetch = builders.build_deployment(ep)["spec"]["template"]["spec"]["initContainers"][0]
    assert env_of(fetch)["AWS_ENDPOINT_URL"]["value"] == STORE["endpoint"]


def fetch_pod(name: str, state: dict, last: dict | None = None, ready: bool = False, created: str = "2026-01-01T00:00:00Z") -> dict:
    status = {"name": "model-fetch", "state": state, "lastState": last or {}}
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": {"name": name, "creationTimestamp": created},
            "status": {"initContainerStatuses": [status], "conditions": conditions}}


def terminated(code: int, message: dict | str) -> dict:
    return {"terminated": {"exitCode": code, "message": message if isinstance(message, str) else json.dumps(message)}}


@pytest.mark.parametrize("reason, detail", [
    ("MissingObject", "s3://models/x/onnx/model.onnx"),
    ("AccessDenied", "s3://models/x/kubeforge-manifest.json"),
    ("DigestMismatch", "s3://models/x/onnx/model.onnx"),
    ("EndpointUnreachable", "s3://models/x/kubeforge-manifest.json"),
    ("ManifestMissing", "s3://models/x/kubeforge-manifest.json"),
])
def test_a_failed_download_in_crash_loop_backoff_is_reported_with_its_reason_and_object(reason, detail):
    pod = fetch_pod("mep-1", {"waiting": {"reason": "CrashLoopBackOff"}},
                    last=terminated(1, {"reason": reason, "object": detail, "error": "boom"}))
    report = download.download_report([pod])
    assert report.failure == f"{reason}: {detail}: boom (pod mep-1)"
    resolution = with_download_failure(ModelResolution(MODEL, "ModelResolved", "serving"), report.failure)
    assert (resolution.reason, resolution.failed) == ("DownloadFailed", True)
    assert resolution.message.startswith(f"cannot download {MODEL}: {reason}")


def test_a_crash_without_a_report_still_shows_its_log_tail():
    pod = fetch_pod("mep-1", terminated(137, "Killed: out of memory"))
    assert download.download_report([pod]).failure == "model download exited with code 137: Killed: out of memory (pod mep-1)"


def test_ready_pods_tell_the_served_digest_and_a_healed_pod_no_longer_fails():
    ok = fetch_pod("mep-2", terminated(0, {"digest": "sha256:d1", "modelUri": MODEL}),
                   last=terminated(1, {"reason": "AccessDenied", "object": MODEL, "error": "x"}), ready=True)
    assert download.download_report([ok]) == download.DownloadReport(None, "sha256:d1")
