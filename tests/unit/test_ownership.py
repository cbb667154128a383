"""Never adopt: children are applied only when absent or controlled by their owner; a taken name stops everything."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes.client.exceptions import ApiException

from kubeforge.apierrors import Refused
from kubeforge.ownership import NameConflict, OwnedApplier, waves

OWNER = "owner-uid"


def child(kind: str = "ServiceAccount", name: str = "x-trainer") -> dict:
    ref = {"apiVersion": "kubeforge.io/v1alpha1", "kind": "TrainingJob", "name": "x", "uid": OWNER, "controller": True}
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "ml", "ownerReferences": [ref]}}


class FakeClient:
    """Stores objects by (kind, name); apply behaves like the API server on a uid precondition."""

    def __init__(self, existing: list[dict] | None = None) -> None:
        self.objects = {(o["kind"], o["metadata"]["name"]): o for o in existing or []}
        self.calls: list[tuple[str, str]] = []
        self.uids = 0

    def get(self, api_version, kind, namespace, name):
        self.calls.append(("get", name))
        return self.objects.get((kind, name))

    def apply(self, obj, if_changed=False):  # never skips: kube.apply does (test_scale_habits)
        self.calls.append(("apply", obj["metadata"]["name"]))
        key = (obj["kind"], obj["metadata"]["name"])
        current = self.objects.get(key)
        pinned = obj["metadata"].get("uid")
        if obj["metadata"].get("resourceVersion") and current:  # no object has ownership.ABSENT's version
            raise ApiException(status=409, reason="Conflict")
        if pinned and current and current["metadata"]["uid"] != pinned:
            exc = ApiException(status=422, reason="Invalid")
            exc.body = json.dumps({"reason": "Invalid", "message": "metadata.uid: field is immutable"})
            raise exc
        if current is None:
            self.uids += 1
            meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
            current = {**obj, "metadata": {**meta, "uid": f"uid-{self.uids}"}}
        merged = {**current, "metadata": {**current["metadata"], "ownerReferences": obj["metadata"]["ownerReferences"]}}
        self.objects[key] = merged
        return merged


def someones(kind: str = "ServiceAccount", name: str = "x-trainer", refs: list | None = None) -> dict:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "ml", "uid": "theirs", "ownerReferences": refs or []}}


def test_an_absent_child_is_created_and_then_applied_without_another_read():
    client = FakeClient()
    applier = OwnedApplier(client)
    applier.apply_all([child()], OWNER)
    client.calls.clear()
    applier.apply_all([child()], OWNER)
    assert client.calls == [("apply", "x-trainer")]


def test_a_name_taken_by_an_object_without_our_controller_reference_stops_every_apply():
    client = FakeClient([someones("Service", "x")])
    applier = OwnedApplier(client)
    with pytest.raises(NameConflict) as raised:
        applier.apply_all([child(), child("Service", "x")], OWNER)
    assert raised.value.refusal.reason == "NameConflict" and raised.value.refusal.target == "Service x"
    assert "Service x (it has no controller) already exists and is not controlled by this resource" in str(raised.value)
    assert [c for c in client.calls if c[0] == "apply"] == []  # nothing was written, not even the free ServiceAccount


def test_every_taken_name_is_named_at_once():
    client = FakeClient([someones("ServiceAccount", "x-trainer"), someones("Service", "x")])
    with pytest.raises(NameConflict) as raised:
        OwnedApplier(client).apply_all([child(), child("ConfigMap", "x-progress"), child("Service", "x")], OWNER)
    assert raised.value.refusal.target == "ServiceAccount x-trainer, Service x"
    assert "already exist and are not controlled" in raised.value.refusal.message


def test_another_owners_child_names_its_controller():
    other = [{"kind": "TrainingJob", "name": "y", "uid": "y-uid", "controller": True}]
    with pytest.raises(NameConflict, match="controlled by TrainingJob y"):
        OwnedApplier(FakeClient([someones(refs=other)])).apply_all([child()], OWNER)


def test_a_non_controller_owner_reference_to_us_is_not_enough():
    ours_but_not_controller = [{"kind": "TrainingJob", "name": "x", "uid": OWNER}]
    with pytest.raises(NameConflict):
        OwnedApplier(FakeClient([someones(refs=ours_but_not_controller)])).apply_all([child()], OWNER)


def test_a_remembered_child_replaced_by_someone_elses_is_refused_not_adopted():
    client = FakeClient()
    applier = OwnedApplier(client)
    applier.apply_all([child()], OWNER)
    client.objects[("ServiceAccount", "x-trainer")] = someones()  # deleted, and the name taken meanwhile
    with pytest.raises(NameConflict):
        applier.apply_all([child()], OWNER)


def test_a_permanent_api_error_becomes_refused_naming_the_child():
    class Quota(FakeClient):
        def apply(self, obj, if_changed=False):
            exc = ApiException(status=403, reason="Forbidden")
            exc.body = json.dumps({"reason": "Forbidden", "message": "exceeded quota: count/jobs.batch=1"})
            raise exc

    with pytest.raises(Refused) as raised:
        OwnedApplier(Quota()).apply_all([child("Job", "x-a1")], OWNER)
    assert raised.value.refusal.target == "Job x-a1" and "exceeded quota" in raised.value.refusal.message


def test_a_transient_api_error_passes_through_for_the_queue_to_retry():
    class Busy(FakeClient):
        def apply(self, obj, if_changed=False):
            raise ApiException(status=429, reason="TooManyRequests")

    with pytest.raises(ApiException):
        OwnedApplier(Busy()).apply_all([child()], OWNER)


def test_with_a_pool_the_reads_go_out_together_and_the_applies_in_waves_each_after_what_it_needs():
    kinds = ["ServiceAccount", "ConfigMap", "Role", "ConfigMap", "Service", "RoleBinding", "Job"]
    children = [child(kind, f"x-{i}") for i, kind in enumerate(kinds)]
    assert [[c["kind"] for c in wave] for wave in waves(children)] == [
        ["ServiceAccount", "ConfigMap", "Role", "ConfigMap", "Service"], ["RoleBinding", "Job"]]
    client = FakeClient()
    with ThreadPoolExecutor(4) as pool:
        applied = OwnedApplier(client, pool=pool).apply_all(children, OWNER)
    assert [a["metadata"]["name"] for a in applied] == [f"x-{i}" for i in range(len(kinds))]
    assert sorted(name for verb, name in client.calls if verb == "get") == sorted(c["metadata"]["name"] for c in children)


def test_a_workload_waits_for_everything_its_pods_need_before_it():
    kinds = lambda *ks: [child(k, f"x-{i}") for i, k in enumerate(ks)]  # noqa: E731
    shape = lambda ws: [[c["kind"] for c in w] for w in ws]  # noqa: E731
    assert shape(waves(kinds("RoleBinding", "ConfigMap", "Job"))) == [["RoleBinding", "ConfigMap"], ["Job"]]
    assert shape(waves(kinds("ConfigMap", "Deployment", "Service"))) == [["ConfigMap"], ["Deployment"], ["Service"]]
    assert shape(waves(kinds("Role", "RoleBinding", "Job"))) == [["Role"], ["RoleBinding", "Job"]]


def test_with_a_pool_every_taken_name_still_stops_every_apply():
    client = FakeClient([someones("Service", "x")])
    with ThreadPoolExecutor(4) as pool, pytest.raises(NameConflict):
        OwnedApplier(client, pool=pool).apply_all([child(), child("Service", "x")], OWNER)
    assert [c for c in client.calls if c[0] == "apply"] == []


# --- a new owner: create-only applies instead of a read per child -------------------------------------


def test_a_new_owners_children_are_created_without_a_read_each():
    kinds = ["ServiceAccount", "Role", "RoleBinding", "Service", "Job"]
    children = [child(kind, f"x-{i}") for i, kind in enumerate(kinds)]
    client = FakeClient()
    applier = OwnedApplier(client)
    applied = applier.apply_all(children, OWNER, expect_absent=True)
    assert client.calls == [("apply", f"x-{i}") for i in range(len(kinds))]
    assert [a["metadata"]["uid"] for a in applied] == [f"uid-{i + 1}" for i in range(len(kinds))]
    client.calls.clear()
    applier.apply_all(children, OWNER)  # remembered as ours: the next pass reads nothing either
    assert client.calls == [("apply", f"x-{i}") for i in range(len(kinds))]


def test_a_new_owners_taken_name_stops_before_the_workload_and_names_every_taken_one():
    client = FakeClient([someones("ServiceAccount", "x-trainer"), someones("Service", "x")])
    children = [child(), child("ConfigMap", "x-progress"), child("Role", "x-role"), child("RoleBinding", "x-rb"),
                child("Service", "x"), child("Job", "x-a1")]
    with pytest.raises(NameConflict) as raised:
        OwnedApplier(client).apply_all(children, OWNER, expect_absent=True)
    assert raised.value.refusal.target == "ServiceAccount x-trainer, Service x"
    assert ("Job", "x-a1") not in client.objects and ("RoleBinding", "x-rb") not in client.objects
    assert client.objects[("ServiceAccount", "x-trainer")]["metadata"]["uid"] == "theirs"  # untouched
    assert client.objects[("Service", "x")]["metadata"]["ownerReferences"] == []
    # What the first wave created is the owner's own, so the garbage collector takes it with the owner.
    assert client.objects[("ConfigMap", "x-progress")]["metadata"]["ownerReferences"][0]["uid"] == OWNER


def test_a_new_owners_child_that_exists_as_its_own_is_read_and_applied():
    client = FakeClient()
    OwnedApplier(client).apply_all([child()], OWNER)  # a pass that died before its status write
    client.calls.clear()
    [applied] = OwnedApplier(client).apply_all([child()], OWNER, expect_absent=True)
    assert client.calls == [("apply", "x-trainer"), ("get", "x-trainer"), ("apply", "x-trainer")]
    assert applied["metadata"]["uid"] == "uid-1"
