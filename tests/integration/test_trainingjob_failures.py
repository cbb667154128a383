"""When workers fail: group restarts for retryable exits and lost pods, at once for permanent codes,
convergence after the operator dies, and bad YAML refused by the API server."""

from __future__ import annotations

import json

import pytest

from tests.integration.clusterkit import KubectlError, wait_for
from tests.integration.trainingjob_kit import condition, fake_job, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration


def test_a_worker_killed_with_137_restarts_the_group_as_attempt_two(kit):
    kit.create(fake_job("oom", nodes=2))
    kit.wait_running("oom")
    pod = kit.fail_worker("oom", attempt=1, index=1, code=137)
    restarted = kit.wait_running("oom", restarts=1, attempt=2)
    assert len(kit.pods("oom", attempt=2)) == 2
    assert [j.metadata.name for j in kit.jobs("oom") if not j.metadata.deletion_timestamp] == ["oom-a2"]
    assert any(e.reason == "Restarting" and pod in e.message for e in kit.events("oom"))
    assert restarted["status"]["workers"]["ready"] == 2
    assert restarted["metadata"]["generation"] == 1  # the operator wrote status only


def test_a_permanent_exit_code_fails_the_job_at_once_naming_pod_and_code(kit):
    kit.create(fake_job("typo", nodes=2))
    kit.wait_running("typo")
    pod = kit.fail_worker("typo", attempt=1, index=0, code=1)
    failed = kit.wait_status("typo", phase="Failed", restarts=0)
    message = condition(failed, "Failed")["message"]
    assert condition(failed, "Failed")["reason"] == "PermanentExitCode"
    assert pod in message and "code 1" in message
    assert not any(j.metadata.name == "typo-a2" for j in kit.jobs("typo"))


def test_deleting_a_worker_restarts_the_group(kit):
    kit.create(fake_job("lost", nodes=2))
    kit.wait_running("lost")
    kit.core.delete_namespaced_pod(kit.worker("lost", 1, 0).metadata.name, kit.namespace)
    kit.wait_running("lost", restarts=1, attempt=2)


def test_restarts_stop_at_the_backoff_limit(kit):
    kit.create(fake_job("flaky", nodes=1).set("runPolicy.backoffLimit", 1))
    kit.wait_running("flaky")
    kit.fail_worker("flaky", attempt=1, index=0, code=137)
    kit.wait_running("flaky", restarts=1)
    kit.fail_worker("flaky", attempt=2, index=0, code=137)
    failed = kit.wait_status("flaky", phase="Failed", restarts=1)
    assert condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"


def test_no_progress_within_the_deadline_marks_stalled_and_restarts(kit):
    kit.create(fake_job("hung", nodes=1).set("runPolicy.progressDeadlineSeconds", 3).set("runPolicy.backoffLimit", 1))
    stalled = kit.wait_status("hung", restarts=1, timeout=60)
    assert condition(stalled, "Stalled")["reason"] == "ProgressDeadlineExceeded"


def test_operator_killed_during_creation_converges_without_duplicates(kit, operator):  # noqa: F811
    kit.create(fake_job("crash", nodes=2))
    # Kill it as soon as the first child exists: mid-way through creating the rest.
    wait_for(lambda: kit.core.list_namespaced_service_account(kit.namespace, label_selector="kubeforge.io/trainingjob=crash").items,
             timeout=60, message="first child of crash created")
    operator.kill()
    operator.start()
    kit.wait_running("crash", restarts=0)
    assert [j.metadata.name for j in kit.jobs("crash")] == ["crash-a1"]
    assert len(kit.pods("crash")) == 2


def test_a_failure_while_the_operator_is_down_counts_exactly_one_restart(kit, operator):  # noqa: F811
    kit.create(fake_job("down", nodes=2))
    kit.wait_running("down")
    operator.kill()
    kit.fail_worker("down", attempt=1, index=0, code=143)
    wait_for(lambda: any(c.type == "Failed" and c.status == "True" for c in (kit.jobs("down")[0].status.conditions or [])),
             timeout=60, message="attempt 1's Job failed")
    operator.start()
    kit.wait_running("down", restarts=1, attempt=2)
    assert sorted(j.metadata.name for j in kit.jobs("down") if not j.metadata.deletion_timestamp) == ["down-a2"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"nodes": 0}, "spec.nodes"),
        ({"command": ["python", "train.py"]}, "spec.recipe"),
        ({"nodes": 5, "elastic": {"minNodes": 1, "maxNodes": 4}}, "spec.nodes"),
        ({"launcher": "mpi"}, "spec.launcher"),
        ({"output": {"uri": "gs://bucket/model"}}, "spec.output.uri"),
    ],
)
def test_invalid_yaml_is_refused_by_the_api_server_naming_the_field(kit, spec, field):
    manifest = fake_job("bad").obj()
    manifest["metadata"] = {"name": "bad", "namespace": kit.namespace}
    manifest["spec"].update(spec)
    with pytest.raises(KubectlError) as refused:
        kit.cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert field in str(refused.value)


def test_nodes_cannot_change_while_running(kit):
    kit.create(fake_job("fixed", nodes=2))
    kit.wait_running("fixed")
    with pytest.raises(KubectlError) as refused:
        kit.cluster.kubectl("-n", kit.namespace, "patch", "tj", "fixed", "--type=merge", "-p", '{"spec":{"nodes":3}}')
    assert "spec.nodes" in str(refused.value)


def test_the_launcher_is_immutable(kit):
    kit.create(fake_job("ds", nodes=1).set("runPolicy.suspend", True))
    with pytest.raises(KubectlError) as refused:
        kit.cluster.kubectl("-n", kit.namespace, "patch", "tj", "ds", "--type=merge", "-p", '{"spec":{"launcher":"torchrun"}}')
    assert "spec.launcher" in str(refused.value) and "immutable" in str(refused.value)
