"""Security against the real API server: a worker's token, names, taken names and refusals (issue 12, items 1-4).

Each test is one escalation path or silent failure, closed: what a user's code inside a
training pod can do with its token, which CR names are refused at apply time, that the
operator adopts nothing it does not control, and that a refused child shows in status
within seconds without the operator hammering the API server.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client, config

from kubeforge import kube
from kubeforge.ownership import create_only
from tests.integration.clusterkit import wait_for
from tests.integration.test_chart_rbac import service_account_kubeconfig
from tests.integration.fakepods import fake_exit
from tests.integration.trainingjob_kit import GROUP, PLURAL, VERSION, TrainingJobKit, fake_job, reconciles

pytestmark = pytest.mark.integration


@pytest.fixture
def kit(cluster, namespace, operator):
    return TrainingJobKit(cluster, namespace)


def as_service_account(kit: TrainingJobKit, account: str, tmp_path) -> client.CoreV1Api:
    """The API as user code in a worker sees it: the job's ServiceAccount token, nothing else."""
    token = kit.cluster.kubectl("-n", kit.namespace, "create", "token", account, "--duration=10m").stdout.strip()
    path = service_account_kubeconfig(kit.cluster.kubeconfig, token, tmp_path / f"{account}.kubeconfig")
    return client.CoreV1Api(config.new_client_from_config(config_file=path))


def status_of(call) -> int:
    try:
        call()
    except client.ApiException as err:
        return err.status
    return 200


def condition_of(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


# --- item 1: a training pod cannot take over its namespace -------------------------------------


def test_a_workers_token_may_report_its_own_progress_and_nothing_else(kit, tmp_path):
    kit.create(fake_job("steps", nodes=2))
    kit.create(fake_job("other", nodes=1))
    kit.wait_running("steps")
    kit.wait_running("other", nodes=1)
    worker = as_service_account(kit, "steps-trainer", tmp_path)
    neighbour = kit.worker("other", 1, 0).metadata.name
    own_pod = kit.worker("steps", 1, 0).metadata.name
    ns = kit.namespace
    progress = {"data": {"progress": json.dumps({"step": 3, "totalSteps": 9, "attempt": 1})}}
    refused = {
        "re-image another job's pod": lambda: worker.patch_namespaced_pod(
            neighbour, ns, {"spec": {"containers": [{"name": "trainer", "image": "evil:1"}]}}),
        "add an endpoint's selector label to its own pod": lambda: worker.patch_namespaced_pod(
            own_pod, ns, {"metadata": {"labels": {"kubeforge.io/modelendpoint": "prod"}}}),
        "strip its own pod's ownerReferences": lambda: worker.patch_namespaced_pod(
            own_pod, ns, {"metadata": {"ownerReferences": None}}),
        "forge another job's progress": lambda: worker.patch_namespaced_config_map("other-progress", ns, progress),
        "read pods": lambda: worker.list_namespaced_pod(ns),
        "delete its own progress": lambda: worker.delete_namespaced_config_map("steps-progress", ns),
        "create a ConfigMap": lambda: worker.create_namespaced_config_map(ns, {"metadata": {"name": "x"}}),
    }
    assert {what: status_of(call) for what, call in refused.items()} == {what: 403 for what in refused}
    worker.patch_namespaced_config_map("steps-progress", ns, progress)
    kit.wait_status("steps", timeout=30, progress={"step": 3, "totalSteps": 9})


def test_a_worker_pod_label_under_kubeforge_io_is_refused(kit):
    """Otherwise podTemplate.labels could put a worker behind a ModelEndpoint's Service."""
    obj = fake_job("lure", nodes=1).set("podTemplate.labels", {"kubeforge.io/modelendpoint": "prod"}).obj()
    obj["metadata"] = {"name": "lure"}
    with pytest.raises(client.ApiException) as refused:
        kit.custom.create_namespaced_custom_object(GROUP, VERSION, kit.namespace, PLURAL, obj)
    assert refused.value.status == 422 and "kubeforge.io/ prefix" in json.loads(refused.value.body)["message"]


# --- item 3: names that cannot become child names are refused at apply time ---------------------

NAME_TABLE = [
    ("TrainingJob", "a" * 53, "at most 52 characters"),
    ("TrainingJob", "dotted.name", "DNS-1035 label"),
    ("TrainingJob", "9lives", "DNS-1035 label"),
    ("ModelEndpoint", "m" * 64, "at most 63 characters"),
    ("ModelEndpoint", "v1.2", "DNS-1035 label"),
]


def manifest(kind: str, name: str) -> dict[str, Any]:
    if kind == "TrainingJob":
        obj = fake_job(name, nodes=1).obj()
        obj["metadata"] = {"name": name}
        return obj
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": {"model": {"uri": "/models/minilm"}, "resources": {"cpu": "100m", "memory": "256Mi"}}}


@pytest.mark.parametrize("kind, name, reason", NAME_TABLE, ids=[f"{k}-{n[:12]}" for k, n, _ in NAME_TABLE])
def test_a_name_that_cannot_name_the_children_is_refused_with_the_limit(kit, kind, name, reason):
    plural = PLURAL if kind == "TrainingJob" else "modelendpoints"
    with pytest.raises(client.ApiException) as refused:
        kit.custom.create_namespaced_custom_object(GROUP, VERSION, kit.namespace, plural, manifest(kind, name))
    assert refused.value.status == 422
    assert reason in json.loads(refused.value.body)["message"]


def test_a_52_character_job_runs(kit):
    name = "j" * 52
    kit.create(fake_job(name, nodes=2))
    kit.wait_running(name)


# --- item 2: a name taken by someone else is never adopted ---------------------------------------


def test_a_taken_name_is_reported_nothing_is_touched_and_deleting_the_job_leaves_it(kit):
    """The issue's reproduction: someone's ServiceAccount x-trainer and ClusterIP Service x. The job's headless
    Service is x-workers (x is left to a ModelEndpoint serving the job), so only the ServiceAccount collides."""
    ns = kit.namespace
    kit.core.create_namespaced_service_account(ns, {"metadata": {"name": "x-trainer", "labels": {"team": "ci"}}})
    kit.core.create_namespaced_service(ns, {"metadata": {"name": "x"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    before = {
        "ServiceAccount": kit.core.read_namespaced_service_account("x-trainer", ns).metadata.resource_version,
        "Service": kit.core.read_namespaced_service("x", ns).metadata.resource_version,
    }
    kit.create(fake_job("x", nodes=1))

    def conflict_reported() -> dict[str, Any]:
        cond = condition_of(kit.get("x"), "ChildrenApplied")
        assert cond and cond["reason"] == "NameConflict", cond
        return cond

    cond = wait_for(conflict_reported, timeout=30, message="TrainingJob x reports the taken names")
    assert "ServiceAccount x-trainer" in cond["message"], cond
    assert kit.get("x")["status"]["phase"] == "Pending"
    assert kit.jobs("x") == [] and kit.pods("x") == []
    after = {
        "ServiceAccount": kit.core.read_namespaced_service_account("x-trainer", ns).metadata.resource_version,
        "Service": kit.core.read_namespaced_service("x", ns).metadata.resource_version,
    }
    assert after == before  # not even an ownerReference was added
    kit.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "x")
    kit.wait_gone("x")
    account = kit.core.read_namespaced_service_account("x-trainer", ns)
    assert account.metadata.owner_references is None and account.metadata.labels == {"team": "ci"}
    assert kit.core.read_namespaced_service("x", ns).spec.cluster_ip != "None"


def create_only_apply(kit: TrainingJobKit, obj: dict[str, Any]) -> dict[str, Any]:
    """What kubeforge.ownership sends for a new owner's child: a server-side apply carrying ownership.ABSENT."""
    body = kube.apply_body(create_only(obj)).encode()
    return kit.cluster.api.call_api(
        f"/api/v1/namespaces/{kit.namespace}/configmaps/{obj['metadata']['name']}", "PATCH", body=body,
        query_params=[("fieldManager", "kubeforge"), ("force", "true")], response_type="object", auth_settings=["BearerToken"],
        header_params={"Content-Type": kube.APPLY_CONTENT_TYPE, "Accept": "application/json"}, _return_http_data_only=True)


def test_a_create_only_apply_creates_under_our_apply_entry_alone_and_leaves_a_taken_name_untouched(kit):
    """The API server's side of kubeforge.ownership's create-only applies: no read before a new job's children."""
    ns = kit.namespace
    ours = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ours", "namespace": ns}, "data": {"a": "1", "b": "2"}}
    created = create_only_apply(kit, ours)
    assert [(m["manager"], m["operation"]) for m in created["metadata"]["managedFields"]] == [("kubeforge", "Apply")]
    assert status_of(lambda: create_only_apply(kit, {**ours, "data": {"a": "changed"}})) == 409
    assert kit.core.read_namespaced_config_map("ours", ns).data == {"a": "1", "b": "2"}
    kit.core.create_namespaced_config_map(ns, {"metadata": {"name": "theirs"}, "data": {"mine": "yes"}})
    before = kit.core.read_namespaced_config_map("theirs", ns).metadata.resource_version
    assert status_of(lambda: create_only_apply(kit, {**ours, "metadata": {"name": "theirs", "namespace": ns}})) == 409
    theirs = kit.core.read_namespaced_config_map("theirs", ns)
    assert theirs.metadata.resource_version == before and theirs.data == {"mine": "yes"}


def test_an_endpoint_may_share_its_training_jobs_name(kit):
    """The README's pattern: TrainingJob x trains, ModelEndpoint x serves it. Their children never share a name."""
    ns = kit.namespace
    summary = json.dumps({"metrics": {"accuracy": 0.9}, "modelUri": "/models/minilm", "steps": 4})  # a path in the image
    kit.create(fake_job("same", nodes=1).pod_annotations(**fake_exit(0, after="1s", message=summary)))
    endpoint = manifest("ModelEndpoint", "same")
    endpoint["spec"]["model"] = {"trainingJobRef": {"name": "same"}}
    kit.custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modelendpoints", endpoint)
    kit.wait_status("same", phase="Succeeded")
    apps = client.AppsV1Api(kit.cluster.api)
    wait_for(lambda: [d for d in apps.list_namespaced_deployment(ns).items if d.metadata.name == "same"], timeout=60,
             message="the endpoint's Deployment")
    obj = kit.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "modelendpoints", "same")
    assert (condition_of(obj, "ChildrenApplied") or {}).get("status") != "False", obj["status"]
    assert kit.core.read_namespaced_service("same", ns).spec.cluster_ip != "None"  # the endpoint's
    assert kit.core.read_namespaced_service("same-workers", ns).spec.cluster_ip == "None"  # the job's


def test_an_endpoint_whose_service_name_is_taken_deploys_nothing_and_says_so(kit):
    ns = kit.namespace
    kit.core.create_namespaced_service(ns, {"metadata": {"name": "m"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    before = kit.core.read_namespaced_service("m", ns).metadata.resource_version
    kit.custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modelendpoints", manifest("ModelEndpoint", "m"))

    def conflict_reported() -> dict[str, Any]:
        obj = kit.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "modelendpoints", "m")
        cond = condition_of(obj, "ChildrenApplied")
        assert cond and cond["reason"] == "NameConflict", (obj.get("status") or {}).get("conditions")
        return obj

    obj = wait_for(conflict_reported, timeout=30, message="ModelEndpoint m reports the taken Service name")
    assert "Service m" in condition_of(obj, "ChildrenApplied")["message"] and obj["status"]["reason"] == "NameConflict"
    assert client.AppsV1Api(kit.cluster.api).list_namespaced_deployment(ns).items == []  # nothing written
    assert kit.core.read_namespaced_service("m", ns).metadata.resource_version == before
    kit.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "modelendpoints", "m")
    wait_for(lambda: not kit.custom.list_namespaced_custom_object(GROUP, VERSION, ns, "modelendpoints")["items"],
             timeout=30, message="ModelEndpoint m deleted")
    assert kit.core.read_namespaced_service("m", ns).spec.cluster_ip != "None"


# --- item 4: a refused child shows within seconds, and is retried slowly --------------------------


def refused_applies(operator, namespace: str, name: str) -> int:
    """Applies of this job's children the API server refused: the operator logs each one, with its next try.

    (kubeforge_operator_api_requests_total counts them too, but for the whole cluster: other tests'
    namespaces being deleted also answer 403.)
    """
    marker = f"TrainingJob {namespace}/{name}: the API server refused"
    return sum(marker in line for line in operator.log_path.read_text(errors="replace").splitlines())


def test_a_job_refused_by_a_quota_shows_the_api_servers_message_and_is_not_hammered(kit, operator):
    ns = kit.namespace
    kit.core.create_namespaced_resource_quota(ns, {"metadata": {"name": "no-jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}})
    kit.create(fake_job("q", nodes=1))

    def refusal_shown() -> dict[str, Any]:
        obj = kit.get("q")
        cond = condition_of(obj, "ChildrenApplied")
        assert cond and cond["reason"] == "RefusedByAPIServer", (obj.get("status") or {}).get("message")
        return obj

    obj = wait_for(refusal_shown, timeout=45, message="TrainingJob q shows the quota refusal")
    cond = condition_of(obj, "ChildrenApplied")
    assert "exceeded quota" in cond["message"] and "Job q-a1" in cond["message"], cond
    assert condition_of(obj, "Created") is None  # status claims no Job the API server refused
    # Twenty edits of the TrainingJob wake its reconciler twenty times; none may retry the refused apply.
    passes = reconciles(operator)
    for i in range(20):
        kit.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "q", {"metadata": {"annotations": {"poke": str(i)}}})
    wait_for(lambda: reconciles(operator) >= passes + 10, timeout=60, message="the pokes reconciled")
    tries = refused_applies(operator, ns, "q")
    print(f"\nrefused Job applies: {tries:.0f} for {reconciles(operator) - passes:.0f} passes after the refusal")
    assert tries <= 3, f"{tries} refused applies: the slow retry was bypassed"
    # Raising the quota and editing the spec (a new generation) retries at once.
    kit.core.delete_namespaced_resource_quota("no-jobs", ns)
    kit.patch_spec("q", {"runPolicy": {"backoffLimit": 2}})
    obj = kit.wait_running("q", nodes=1, timeout=30)
    assert condition_of(obj, "ChildrenApplied")["status"] == "True"
