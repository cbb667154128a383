"""A TrainingJob on the local cluster: workers on the right pool, wired to each other, running and finishing."""

from __future__ import annotations

import json

import pytest

from tests.integration import fakepods
from tests.integration.clusterkit import wait_for
from tests.integration.trainingjob_kit import SUMMARY, condition, fake_job, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration


def test_workers_land_on_the_chosen_pool_with_the_rendezvous_env_and_dns(kit):
    kit.create(fake_job("bert", nodes=2))
    kit.wait_running("bert")
    pods = sorted(kit.pods("bert", attempt=1), key=lambda p: p.spec.hostname)
    assert [p.spec.hostname for p in pods] == ["bert-a1-0", "bert-a1-1"]
    assert all(p.spec.subdomain == "bert-workers" and p.spec.node_name.startswith("a100-") for p in pods)
    env = {e.name: e for e in pods[0].spec.containers[0].env}
    assert env["MASTER_ADDR"].value == "bert-a1-0.bert-workers" and env["WORLD_SIZE"].value == "2"
    assert env["NODE_RANK"].value_from.field_ref.field_path == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    service = kit.core.read_namespaced_service("bert-workers", kit.namespace)
    assert service.spec.cluster_ip == "None" and service.spec.publish_not_ready_addresses is True


def test_kubectl_get_tj_shows_phase_workers_and_restarts(kit):
    kit.create(fake_job("glance", nodes=2))
    kit.wait_running("glance")
    lines = kit.cluster.kubectl("-n", kit.namespace, "get", "tj").stdout.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "WORKERS", "RESTARTS", "STEP", "AGE"]
    assert lines[1].split()[:4] == ["glance", "Running", "2/2", "0"]


def test_rank_zeros_progress_record_shows_in_status(kit):
    kit.create(fake_job("steps", nodes=2))
    kit.wait_running("steps")
    kit.report_progress("steps", {"step": 7, "totalSteps": 20, "loss": 0.42, "attempt": 1})
    kit.wait_status("steps", progress={"step": 7, "totalSteps": 20, "loss": 0.42})


def test_a_finished_job_succeeds_with_rank_zeros_summary_as_result(kit):
    finish = fakepods.fake_exit(0, after="1s", message=SUMMARY)
    kit.create(fake_job("done", nodes=2).pod_annotations(**finish))
    done = kit.wait_status("done", phase="Succeeded")
    assert done["status"]["result"]["metrics"]["accuracy"] == 0.91
    assert done["status"]["result"]["modelUri"] == "pvc://models/demo"
    assert condition(done, "Succeeded")["status"] == "True"
    assert done["status"]["completionTime"]


def test_ttl_deletes_the_job_after_it_finished(kit):
    finish = fakepods.fake_exit(0, after="1s")
    kit.create(fake_job("short", nodes=1).pod_annotations(**finish).set("runPolicy.ttlSecondsAfterFinished", 2))
    kit.wait_status("short", phase="Succeeded")
    kit.wait_gone("short", timeout=30)


def test_suspend_removes_the_pods_and_resume_brings_them_back(kit):
    kit.create(fake_job("pause", nodes=2))
    kit.wait_running("pause")
    kit.patch_spec("pause", {"runPolicy": {"suspend": True}})
    suspended = kit.wait_status("pause", phase="Suspended")
    assert condition(suspended, "Suspended")["status"] == "True"
    wait_for(lambda: not kit.pods("pause"), timeout=60, message="suspended job's pods removed")
    kit.patch_spec("pause", {"runPolicy": {"suspend": False}})
    resumed = kit.wait_running("pause", restarts=0)
    assert condition(resumed, "Suspended")["reason"] == "Resumed"


def test_the_active_deadline_fails_the_job_and_stops_its_workers(kit):
    kit.create(fake_job("late", nodes=2).set("runPolicy.activeDeadlineSeconds", 3))
    failed = kit.wait_status("late", phase="Failed", timeout=60)
    assert condition(failed, "Failed")["reason"] == "DeadlineExceeded"
    wait_for(lambda: not kit.pods("late"), timeout=60, message="workers of the expired job removed")


def test_any_unicode_the_api_server_accepts_reaches_the_workers_unchanged(kit):
    # Server-side apply's body is YAML: an emoji written as JSON's surrogate escapes, or a raw NEL or
    # U+2028 (line breaks to YAML), once made the API server refuse the Job or change the text.
    text = "naïve 😀 模型 nel\x85 ls\u2028 bom\ufeff c1\x80 tab\t quote\" backslash\\ud83d"
    kit.create(fake_job("unicode", nodes=1).set("env", [{"name": "NOTE", "value": text}]))
    kit.wait_running("unicode")
    env = {e.name: e.value for e in kit.pods("unicode", attempt=1)[0].spec.containers[0].env}
    assert env["NOTE"] == text
    assert not [c for c in kit.get("unicode")["status"]["conditions"] if c["type"] == "ChildrenApplied" and c["status"] == "False"]
