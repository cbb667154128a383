"""Beyond the happy path: idempotent re-applies and elastic replacement in place (Kueue: test_trainingjob_kueue.py)."""

from __future__ import annotations

import json

import pytest

from tests.integration.clusterkit import wait_for
from tests.integration.trainingjob_kit import TrainingJobKit, fake_job, reconciles, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration


def versions(kit: TrainingJobKit, name: str) -> dict[str, str]:
    """resourceVersion of the job and every child the operator writes."""
    ns, selector = kit.namespace, f"kubeforge.io/trainingjob={name}"
    children = [
        *kit.jobs(name),
        *kit.core.list_namespaced_service(ns, label_selector=selector).items,
        *kit.core.list_namespaced_config_map(ns, label_selector=selector).items,
        *kit.core.list_namespaced_service_account(ns, label_selector=selector).items,
    ]
    seen = {f"{type(c).__name__}/{c.metadata.name}": c.metadata.resource_version for c in children}
    seen["TrainingJob"] = kit.get(name)["metadata"]["resourceVersion"]
    return seen


def test_applying_the_same_yaml_twice_changes_nothing(kit, operator):  # noqa: F811
    manifest = fake_job("same", nodes=2).obj()
    manifest["metadata"] = {"name": "same", "namespace": kit.namespace}
    apply = lambda: kit.cluster.kubectl("apply", "--server-side", "--field-manager=user", "-f", "-", input=json.dumps(manifest))  # noqa: E731
    apply()
    kit.wait_running("same")
    # The Job controller records the ready workers a moment after the pods are: wait for it, or it
    # moves the Job's resourceVersion during the check below.
    wait_for(lambda: (kit.jobs("same")[0].status.ready or 0) == 2, timeout=30, message="Job status shows 2 ready")
    before, passes = versions(kit, "same"), reconciles(operator)
    apply()
    # A pod event wakes the reconciler; once it has run, nothing it owns may have moved.
    kit.annotate_pod(kit.worker("same", 1, 0).metadata.name, {"test/poke": "1"})
    wait_for(lambda: reconciles(operator) > passes, timeout=30, message="a reconcile after the re-apply")
    assert versions(kit, "same") == before
    assert kit.get("same")["metadata"]["generation"] == 1


def test_an_elastic_job_replaces_a_lost_worker_without_a_group_restart(kit):
    kit.create(fake_job("stretch", nodes=3).set("elastic", {"minNodes": 2, "maxNodes": 3}))
    kit.wait_running("stretch")
    lost = kit.fail_worker("stretch", attempt=1, index=1, code=137)

    def replaced() -> bool:
        pods = [p for p in kit.pods("stretch", attempt=1) if p.status.phase == "Running"]
        return len(pods) == 3 and lost not in {p.metadata.name for p in pods}

    wait_for(replaced, timeout=60, message="worker 1 replaced in place")
    status = kit.wait_running("stretch", restarts=0, attempt=1)["status"]
    assert status["workers"]["ready"] == 3
