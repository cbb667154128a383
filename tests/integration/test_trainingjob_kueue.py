"""Gang admission with real Kueue: all workers or none, one job after the other, preemption by priority."""

from __future__ import annotations

import pytest

from tests.integration import fakepods
from tests.integration.clusterkit import wait_for
from tests.integration.kueue_kit import CLUSTER_QUEUE, KueueKit, kueue_running
from tests.integration.trainingjob_kit import PLURAL, TrainingJobKit, condition, fake_job, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration

FULL_POOL = 4  # a100: 4 nodes x 8 GPUs, all of the ClusterQueue's a100 quota


@pytest.fixture(scope="module")
def kueue(cluster):
    yield from kueue_running(cluster)


@pytest.fixture
def queues(cluster, namespace, kit, kueue):  # noqa: F811
    """LocalQueues in the test's namespace; afterwards its TrainingJobs go and Kueue releases their quota."""
    queues = KueueKit(cluster, namespace)
    yield queues
    queues.release_quota(lambda: kit.custom.delete_collection_namespaced_custom_object("kubeforge.io", "v1alpha1", namespace, PLURAL))


def gang(name: str, nodes: int, queue: str = "team-a"):
    return fake_job(name, nodes=nodes).gpus(8).queue(queue)


def admission(kit: TrainingJobKit, name: str) -> dict:
    return kit.get(name).get("status", {}).get("admission") or {}


def test_a_queued_job_waits_suspended_until_kueue_admits_it_then_all_workers_start(kit, queues):
    kit.create(gang("queued", nodes=3))
    # No LocalQueue yet: Kueue holds the workload, the Job stays suspended, no worker exists.
    wait_for(lambda: admission(kit, "queued").get("state") == "Inadmissible", timeout=60, message="inadmissible without a LocalQueue")
    (job,) = kit.jobs("queued")
    assert job.spec.suspend is True and job.metadata.labels["kueue.x-k8s.io/queue-name"] == "team-a"
    assert not kit.pods("queued")
    waiting = kit.get("queued")["status"]
    assert waiting["phase"] == "Pending" and condition(kit.get("queued"), "Running")["reason"] == "WaitingForAdmission"
    assert "team-a" in waiting["admission"]["message"]
    assert kit.wide("queued")[1:3] == ["Pending", "Inadmissible"]

    queues.local_queue("team-a")
    running = kit.wait_running("queued", timeout=90)["status"]
    assert running["workers"]["ready"] == 3
    assert running["admission"] == {"queue": "team-a", "state": "Admitted", "clusterQueue": CLUSTER_QUEUE,
                                    "message": f"admitted by ClusterQueue {CLUSTER_QUEUE}"}
    (workload,) = queues.workloads()
    (pod_set,) = workload["spec"]["podSets"]
    assert pod_set["count"] == 3 and pod_set["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "8"


def test_two_jobs_that_do_not_fit_together_run_one_after_the_other(kit, queues):
    queues.local_queue("team-a")
    kit.create(gang("first", nodes=FULL_POOL))
    kit.wait_running("first", timeout=90)
    kit.create(gang("second", nodes=2))
    queued = wait_for(lambda: admission(kit, "second").get("state") == "Queued" and "quota" in admission(kit, "second")["message"]
                      and admission(kit, "second"), timeout=60, message="second queued for quota")
    assert "nvidia.com/gpu" in queued["message"], queued
    assert not kit.pods("second"), "no worker of the second job may hold a GPU while the first runs"
    assert kit.get("second")["status"]["phase"] == "Pending"
    assert kit.wide("second")[1:3] == ["Pending", "Queued"]

    for pod in kit.pods("first"):
        kit.annotate_pod(pod.metadata.name, fakepods.fake_exit(0))
    kit.wait_status("first", phase="Succeeded", timeout=60)
    second = kit.wait_running("second", timeout=90)["status"]
    assert second["workers"]["ready"] == 2 and second["admission"]["state"] == "Admitted"


def test_a_higher_priority_job_preempts_a_running_one_which_resumes_from_its_checkpoint(kit, queues):
    queues.local_queue("team-a")
    queues.priority_class("kubeforge-test-low", 100)
    queues.priority_class("kubeforge-test-high", 1000)
    # Deadlines shorter than the time it will spend preempted: suspended time must count toward neither.
    low = gang("low", nodes=FULL_POOL).set("scheduling.priorityClassName", "kubeforge-test-low")
    low.set("runPolicy.activeDeadlineSeconds", 60).set("runPolicy.progressDeadlineSeconds", 45)
    kit.create(low)
    kit.wait_running("low", timeout=90)
    kit.report_progress("low", {"step": 40, "totalSteps": 100, "checkpoint": "step-40", "attempt": 1})
    kit.wait_status("low", lastCheckpoint="step-40")

    kit.create(gang("high", nodes=2).set("scheduling.priorityClassName", "kubeforge-test-high")
               .pod_annotations(**fakepods.fake_exit(0, after="70s")))
    preempted = kit.wait_status("low", phase="Preempted", timeout=90)["status"]
    assert preempted["preemptions"] == 1 and preempted["restarts"] == 0
    assert preempted["admission"]["state"] == "Preempted"
    assert condition(kit.get("low"), "Running")["reason"] == "Preempted"
    assert kit.jobs("low")[0].spec.suspend is True
    assert kit.wide("low")[1:3] == ["Preempted", "Preempted"]
    wait_for(lambda: not kit.pods("low"), timeout=60, message="the preempted job's workers are gone")
    kit.wait_running("high", timeout=90)

    # The high job ends after 70 s; Kueue readmits the low one, which resumes from its newest checkpoint.
    resumed = kit.wait_running("low", timeout=180)["status"]
    assert resumed["preemptions"] == 1 and resumed["restarts"] == 0 and resumed["attempt"] == 1
    assert "step-40" in resumed["message"], resumed["message"]
    assert resumed["suspendedSeconds"] >= 60
    # Past its activeDeadlineSeconds and progressDeadlineSeconds in wall time, yet neither fired.
    for pod in kit.pods("low"):
        kit.annotate_pod(pod.metadata.name, fakepods.fake_exit(0))
    done = kit.wait_status("low", phase="Succeeded", timeout=60)
    assert not any(c["type"] == "Stalled" and c["status"] == "True" for c in done["status"]["conditions"])
    reasons = [e.reason for e in kit.events("low")]
    assert "Preempted" in reasons and "Admitted" in reasons, reasons
