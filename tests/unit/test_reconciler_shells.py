"""The reconciler shells against an in-memory client: what they write, and in which order."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from kubeforge.modelendpoint import controller as endpoint_controller
from kubeforge.settings import Settings
from kubeforge.trainingjob import controller as job_controller
from tests.unit.fake_kube import FakeKube
from tests.unit.modelendpoint_wrappers import MakeEndpoint
from tests.unit.trainingjob_wrappers import MakeTrainingJob

CONFIG = Settings()
# The claim MakeEndpoint's model (pvc://models/run-1) lives on: ModelResolved needs it to exist.
MODELS_CLAIM = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "models", "namespace": "ml"}}


def reconcile_job(kube: FakeKube, name: str = "train") -> float | None:
    return job_controller.reconcile("ml", name, client=kube, config=CONFIG)


def reconcile_endpoint(kube: FakeKube, name: str = "mep") -> float | None:
    return endpoint_controller.reconcile("ml", name, client=kube, config=CONFIG)


def test_a_new_trainingjob_gets_its_children_then_a_pending_status_and_one_event():
    kube = FakeKube(MakeTrainingJob().nodes(2).obj())
    reconcile_job(kube)
    assert "Job" in kube.kinds() and "Service" in kube.kinds()
    assert kube.get("", "TrainingJob", "ml", "train")["status"]["phase"] == "Pending"
    assert [reason for _, reason, _ in kube.events] == ["JobCreated"]


def test_a_trainingjob_pass_that_finds_nothing_changed_writes_nothing():
    kube = FakeKube(MakeTrainingJob().nodes(2).obj())
    reconcile_job(kube)  # creates the Job
    reconcile_job(kube)  # sees it: 0/2 workers ready
    before, patches, events = kube.versions(), len(kube.status_patches), len(kube.events)
    reconcile_job(kube)
    assert kube.versions() == before
    assert (len(kube.status_patches), len(kube.events)) == (patches, events)


def test_a_trainingjob_status_is_written_only_after_its_job_was_applied():
    kube = FakeKube(MakeTrainingJob().nodes(2).obj(), failing_kinds=("Job",))
    with pytest.raises(ApiException):
        reconcile_job(kube)
    assert kube.status_patches == [] and kube.events == []


def test_a_gone_trainingjob_is_left_to_garbage_collection():
    kube = FakeKube()
    assert reconcile_job(kube) is None and kube.objects == {}


def test_a_new_endpoint_gets_its_children_then_a_status_naming_its_model():
    kube = FakeKube(MakeEndpoint().replicas(2).obj(), MODELS_CLAIM)
    reconcile_endpoint(kube)
    assert {"Deployment", "Service"} <= set(kube.kinds())
    status = kube.get("", "ModelEndpoint", "ml", "mep")["status"]
    assert (status["phase"], status["modelUri"]) == ("Deploying", "pvc://models/run-1")
    assert ("Normal", "ModelResolved") in [(t, r) for t, r, _ in kube.events]


def test_an_endpoint_pass_that_finds_nothing_changed_writes_nothing():
    kube = FakeKube(MakeEndpoint().replicas(2).obj(), MODELS_CLAIM)
    reconcile_endpoint(kube)
    before, patches, events = kube.versions(), len(kube.status_patches), len(kube.events)
    reconcile_endpoint(kube)
    assert kube.versions() == before
    assert (len(kube.status_patches), len(kube.events)) == (patches, events)


def test_an_endpoint_status_is_written_only_after_its_deployment_was_applied():
    kube = FakeKube(MakeEndpoint().obj(), MODELS_CLAIM, failing_kinds=("Deployment",))
    with pytest.raises(ApiException):
        reconcile_endpoint(kube)
    assert kube.status_patches == [] and kube.events == []


def test_an_endpoint_turns_ready_when_its_deployment_reports_every_replica_ready():
    kube = FakeKube(MakeEndpoint().replicas(2).obj(), MODELS_CLAIM)
    reconcile_endpoint(kube)
    deployment = kube.get("apps/v1", "Deployment", "ml", "mep")
    deployment["status"] = {"observedGeneration": deployment["metadata"]["generation"], "replicas": 2,
                            "updatedReplicas": 2, "readyReplicas": 2}
    kube.store(deployment)
    reconcile_endpoint(kube)
    assert kube.get("", "ModelEndpoint", "ml", "mep")["status"]["phase"] == "Ready"
    assert ("Normal", "AllReplicasReady") in [(t, r) for t, r, _ in kube.events]


def test_an_endpoint_whose_model_claim_is_missing_deploys_nothing_and_says_so():
    kube = FakeKube(MakeEndpoint().replicas(2).obj())
    reconcile_endpoint(kube)
    assert "Deployment" not in kube.kinds()
    status = kube.get("", "ModelEndpoint", "ml", "mep")["status"]
    assert (status["phase"], status["reason"]) == ("WaitingForModel", "ModelClaimNotFound")
    assert ("Warning", "ModelClaimNotFound") in [(t, r) for t, r, _ in kube.events]


def test_an_endpoint_waiting_on_a_claim_looks_again_each_resync_and_one_waiting_on_its_trainingjob_waits_for_its_events():
    assert reconcile_endpoint(FakeKube(MakeEndpoint().replicas(2).obj())) == CONFIG.resync_seconds  # no watch sees claims
    kube = FakeKube(MakeEndpoint().from_job("train").obj(), MakeTrainingJob().status(phase="Running").obj())
    assert reconcile_endpoint(kube) is None  # the TrainingJob's events wake it (refindex)
    assert kube.get("", "ModelEndpoint", "ml", "mep")["status"]["reason"] == "WaitingForTrainingJob"
    assert reconcile_endpoint(FakeKube(MakeEndpoint().from_job("not-yet").obj())) is None


def test_an_endpoints_crash_looping_pods_are_its_reason():
    kube = FakeKube(MakeEndpoint().replicas(1).obj(), MODELS_CLAIM)
    reconcile_endpoint(kube)
    kube.store({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mep-1", "namespace": "ml", "labels": {"kubeforge.io/modelendpoint": "mep"}},
                "status": {"phase": "Running", "containerStatuses": [{"name": "server", "ready": False, "restartCount": 4,
                           "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 2}}}]}})
    reconcile_endpoint(kube)
    status = kube.get("", "ModelEndpoint", "ml", "mep")["status"]
    assert status["reason"] == "CrashLoopBackOff"
    assert "pod mep-1: container server exited with code 2; restarted 4 times" in next(
        c["message"] for c in status["conditions"] if c["type"] == "Ready")


def server_pod(fetch_state: dict, ready: bool = False) -> dict:
    """A server pod of endpoint mep whose model-fetch init container is in `fetch_state`."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "mep-1", "labels": {"kubeforge.io/modelendpoint": "mep"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"initContainerStatuses": [{"name": "model-fetch", **fetch_state}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_an_s3_endpoint_whose_pod_cannot_download_the_model_reports_download_failed():
    failed = {"terminated": {"exitCode": 1, "message": '{"reason": "AccessDenied", "object": "s3://m/x/kubeforge-manifest.json", "error": "403"}'}}
    kube = FakeKube(MakeEndpoint().uri("s3://m/x").obj(), server_pod({"state": {"waiting": {}}, "lastState": failed}))
    reconcile_endpoint(kube)
    status = kube.get("", "ModelEndpoint", "ml", "mep")["status"]
    resolved = next(c for c in status["conditions"] if c["type"] == "ModelResolved")
    assert (status["phase"], resolved["reason"]) == ("Failed", "DownloadFailed")
    assert "AccessDenied: s3://m/x/kubeforge-manifest.json: 403 (pod mep-1)" in resolved["message"]
    assert ("Warning", "DownloadFailed") in [(t, r) for t, r, _ in kube.events]


def test_an_s3_endpoint_shows_the_digest_its_ready_pods_downloaded_and_uses_the_jobs_storage():
    job = MakeTrainingJob("train").set("storage", {"endpoint": "http://store:8333"}).status(
        phase="Succeeded", result={"modelUri": "s3://m/x", "modelDigest": "sha256:d1"}).obj()
    ok = {"state": {"terminated": {"exitCode": 0, "message": '{"digest": "sha256:d1"}'}}}
    kube = FakeKube(MakeEndpoint().from_job("train").obj(), job, server_pod(ok, ready=True))
    reconcile_endpoint(kube)
    assert kube.get("", "ModelEndpoint", "ml", "mep")["status"]["modelDigest"] == "sha256:d1"
    fetch = kube.get("apps/v1", "Deployment", "ml", "mep")["spec"]["template"]["spec"]["initContainers"][0]
    env = {e["name"]: e.get("value") for e in fetch["env"]}
    assert (env["AWS_ENDPOINT_URL"], env["KUBEFORGE_MODEL_DIGEST"]) == ("http://store:8333", "sha256:d1")


def test_the_watch_event_of_a_child_a_trainingjob_pass_applied_is_known_as_its_own():
    from kubeforge.statuswrite import OWN_WRITES

    kube = FakeKube(MakeTrainingJob().nodes(2).obj())
    reconcile_job(kube)
    job = kube.get("batch/v1", "Job", "ml", "train-a1")
    assert OWN_WRITES.is_own("Job", "ml", "train-a1", job["metadata"]["resourceVersion"])
    account = kube.get("v1", "ServiceAccount", "ml", "train-trainer")
    # No watch of ours sees ServiceAccounts: a record of it would never be consumed.
    assert not OWN_WRITES.is_own("ServiceAccount", "ml", "train-trainer", account["metadata"]["resourceVersion"])


def test_a_trainingjob_pass_with_a_current_cached_body_sends_no_read():
    from kubeforge.crcache import ResourceCache

    class CountingKube(FakeKube):
        reads = 0

        def get(self, api_version, kind, namespace, name):
            self.reads += kind == "TrainingJob" and not self.status_patches  # FakeKube's own read inside a patch aside
            return super().get(api_version, kind, namespace, name)

    kube, cache = CountingKube(MakeTrainingJob().nodes(2).obj()), ResourceCache()
    current = kube.get("", "TrainingJob", "ml", "train")
    cache.seen("TrainingJob", "ml", "train", current["metadata"]["resourceVersion"], current)
    job_controller.reconcile("ml", "train", client=kube, config=CONFIG, cache=cache)
    assert kube.reads == 1 and "Job" in kube.kinds()  # the one read above, by the test
