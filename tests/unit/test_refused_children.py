"""The reconciler shells when a child cannot be written: a taken name, a refusal for good, a spec nobody can build."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from kubeforge import conditions
from kubeforge.apierrors import RefusalGate
from kubeforge.modelendpoint import controller as endpoint_controller
from kubeforge.ownership import OwnedApplier
from kubeforge.settings import Settings
from kubeforge.trainingjob import controller as job_controller
from tests.unit.fake_kube import FakeKube
from tests.unit.modelendpoint_wrappers import MakeEndpoint
from tests.unit.trainingjob_wrappers import MakeTrainingJob

CONFIG = Settings()


def reconcile_job(kube: FakeKube, gate: RefusalGate, name: str = "train") -> float | None:
    return job_controller.reconcile("ml", name, client=kube, config=CONFIG, applier=OwnedApplier(kube), gate=gate)


def applied(kube: FakeKube, kind: str) -> list[str]:
    return [name for (k, _, name) in kube.objects if k == kind]


def children_applied(kube: FakeKube, kind: str, name: str) -> dict:
    return conditions.find(kube.get("", kind, "ml", name)["status"]["conditions"], "ChildrenApplied")


class Refusing(FakeKube):
    """An API server whose quota refuses every Job."""

    def apply(self, obj, field_manager="kubeforge"):
        if obj["kind"] == "Job":
            exc = ApiException(status=403, reason="Forbidden")
            exc.body = json.dumps({"reason": "Forbidden", "message": 'jobs.batch "train-a1" is forbidden: exceeded quota: q'})
            raise exc
        return super().apply(obj, field_manager)


def test_a_taken_service_account_name_writes_no_workload_and_a_status_naming_it():
    someone = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "train-trainer", "namespace": "ml"}}
    kube = FakeKube(MakeTrainingJob().nodes(2).obj(), someone)
    delay = reconcile_job(kube, RefusalGate(jitter=lambda: 0.5))
    assert delay == 10
    assert applied(kube, "Job") == [] and applied(kube, "RoleBinding") == []
    assert "ownerReferences" not in kube.get("v1", "ServiceAccount", "ml", "train-trainer")["metadata"]  # not adopted
    # A new job's children go out without a read each (kubeforge.ownership): the ones of the wave the taken
    # name was in may be written, the job's own, and go with it.
    job_uid = kube.get("", "TrainingJob", "ml", "train")["metadata"]["uid"]
    for (kind, _, name), obj in kube.objects.items():
        if kind not in ("TrainingJob", "ServiceAccount"):
            assert obj["metadata"]["ownerReferences"][0]["uid"] == job_uid, (kind, name)
    cond = children_applied(kube, "TrainingJob", "train")
    assert cond["reason"] == "NameConflict" and "ServiceAccount train-trainer" in cond["message"]
    assert [reason for _, reason, _ in kube.events] == ["NameConflict"]


def test_a_refused_job_is_not_claimed_and_not_retried_before_its_time():
    kube, gate = Refusing(MakeTrainingJob().nodes(2).obj()), RefusalGate()
    reconcile_job(kube, gate)
    status = kube.get("", "TrainingJob", "ml", "train")["status"]
    assert conditions.find(status["conditions"], "Created") is None and "exceeded quota" in status["message"]
    patches = len(kube.status_patches)
    assert reconcile_job(kube, gate) > 0  # held: no apply, no write
    assert len(kube.status_patches) == patches


def test_a_spec_the_builders_cannot_build_fails_with_invalid_spec_instead_of_looping():
    job = MakeTrainingJob().set("resources.cpu", "12parsecs").obj()  # past the CRD only if its pattern had a gap
    kube = FakeKube(job)
    assert reconcile_job(kube, RefusalGate()) is None
    status = kube.get("", "TrainingJob", "ml", "train")["status"]
    assert status["phase"] == "Failed" and conditions.find(status["conditions"], "Failed")["reason"] == "InvalidSpec"
    assert applied(kube, "Job") == []


def test_an_endpoint_whose_service_name_is_taken_deploys_nothing():
    someone = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mep", "namespace": "ml"}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "models", "namespace": "ml"}}
    kube = FakeKube(MakeEndpoint().obj(), someone, claim)
    endpoint_controller.reconcile("ml", "mep", client=kube, config=CONFIG, applier=OwnedApplier(kube), gate=RefusalGate())
    assert applied(kube, "Deployment") == []
    assert children_applied(kube, "ModelEndpoint", "mep")["reason"] == "NameConflict"
    assert kube.get("", "ModelEndpoint", "ml", "mep")["status"]["reason"] == "NameConflict"


def test_a_job_with_a_status_reads_its_children_instead_of_create_only_applies():
    """A suspended job has children but no Job: after a restart (a new applier) they are read, not met with 409s."""
    class Watching(FakeKube):
        create_only = 0

        def apply(self, obj, field_manager="kubeforge", if_changed=False):
            self.create_only += bool(obj["metadata"].get("resourceVersion"))
            return super().apply(obj, field_manager)

    kube = Watching(MakeTrainingJob().nodes(2).set("runPolicy", {"suspend": True}).obj())
    reconcile_job(kube, RefusalGate())
    assert kube.get("", "TrainingJob", "ml", "train")["status"]["phase"] == "Suspended" and kube.create_only > 0
    kube.create_only = 0
    reconcile_job(kube, RefusalGate())  # reconcile_job makes a new OwnedApplier: what a restart has
    assert kube.create_only == 0
