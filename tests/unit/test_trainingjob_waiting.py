"""Why a TrainingJob waits, in its own status: pod blockers, a pool that never fits, the schedule deadline, Kueue."""

from __future__ import annotations

from datetime import timedelta

from kubeforge import conditions
from kubeforge.trainingjob import observe
from kubeforge.timestamps import rfc3339
from kubeforge.trainingjob.status import decide
from kubeforge.trainingjob.waiting import Policy
from tests.unit.test_placement import NODES
from tests.unit.test_trainingjob_status import NOW
from tests.unit.trainingjob_wrappers import MakeTrainingJob, worker_job, worker_pod

POLICY = Policy(schedule_deadline_seconds=300)
NO_GPU = "0/9 nodes are available: 4 Insufficient nvidia.com/gpu, 5 node(s) didn't match Pod's node affinity/selector."


def gang(nodes: int = 3, gpus: int = 8, queue: str | None = None) -> MakeTrainingJob:
    job = MakeTrainingJob().nodes(nodes).gpus(gpus).pool("a100")
    return job.queue(queue) if queue else job


def placed(index: int, ready: bool = True) -> dict:
    pod = worker_pod("train", 1, index, ready=ready)
    pod["spec"] = {"nodeName": f"a100-{index}"}
    return pod


def unplaced(index: int, message: str = NO_GPU) -> dict:
    pod = worker_pod("train", 1, index, phase="Pending", ready=False)
    pod["status"] = {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}
    return pod


def workload(*conds: tuple[str, str, str, str], cluster_queue: str | None = None) -> dict:
    status: dict = {"conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conds]}
    if cluster_queue:
        status["admission"] = {"clusterQueue": cluster_queue}
    return {"metadata": {"name": "wl", "labels": {"kueue.x-k8s.io/job-uid": "job-uid-1"}}, "status": status}


ADMITTED = workload(("QuotaReserved", "True", "QuotaReserved", ""), ("Admitted", "True", "Admitted", ""), cluster_queue="kubeforge")
PREEMPTED = workload(("Evicted", "True", "Preempted", "Preempted to accommodate a higher priority workload"),
                     ("QuotaReserved", "False", "Pending", "insufficient unused quota for nvidia.com/gpu in flavor a100"))
QUEUED = workload(("QuotaReserved", "False", "Pending", "couldn't assign flavors to pod set main: insufficient unused quota"))


def once(wrapper: MakeTrainingJob, job_state: str = "Active", pods=(), wl=None, nodes=None, now=NOW, suspend=False, missing=()):
    job = wrapper.model()
    jobs = [] if job_state == "Missing" else [worker_job("train", 1, state="Active", suspend=suspend or job_state == "Suspended")]
    return decide(job, observe.observe(job.name, 1, jobs, list(pods), [wl] if wl else None, nodes, tuple(missing)), now, POLICY)


def then(wrapper: MakeTrainingJob, plan) -> MakeTrainingJob:
    """The job with exactly the status the plan wrote (the controller nulls the keys a plan dropped)."""
    return wrapper.only_status(plan.status)


def cond(plan, type_: str) -> dict:
    return conditions.find(plan.status["conditions"], type_) or {}


def test_the_schedulers_reason_reaches_the_status_and_the_reason_column():
    plan = once(gang(), pods=[placed(0), placed(1), unplaced(2)])
    assert plan.status["reason"] == "InsufficientGPU"
    assert cond(plan, "Running")["message"] == (
        "attempt 1: 2/3 workers ready; 1/3 pods: Insufficient nvidia.com/gpu on 4 of 9 nodes (5 other nodes outside the node selector)")
    assert plan.job_suspend is None and plan.requeue_after == 300


def test_a_gang_that_never_fits_is_released_at_once_and_named():
    plan = once(gang(nodes=6), pods=[placed(i) for i in range(4)] + [unplaced(4), unplaced(5)], nodes=NODES)
    schedulable = cond(plan, "Schedulable")
    assert (schedulable["status"], schedulable["reason"]) == ("False", "ExceedsPoolCapacity")
    assert "6 pods x 8 nvidia.com/gpu" in schedulable["message"] and "holds at most 4" in schedulable["message"]
    assert plan.job_suspend is True and plan.status["reason"] == "ExceedsPoolCapacity"
    assert cond(plan, "Stalled")["status"] == "True"
    assert {"ExceedsPoolCapacity", "WorkersReleased"} <= {e[1] for e in plan.events}
    # Released, it stays suspended while the pool still cannot hold it, even past the retry time.
    later = once(then(gang(nodes=6), plan), job_state="Suspended", nodes=NODES, now=NOW + timedelta(hours=1))
    assert later.job_suspend is None and later.status["phase"] == "Pending" and later.status["reason"] == "ExceedsPoolCapacity"


def test_partly_placed_workers_are_released_after_the_schedule_deadline_and_retried_later():
    pods = [placed(0), placed(1), unplaced(2)]
    first = once(gang(), pods=pods)
    late = NOW + timedelta(seconds=301)
    plan = once(then(gang(), first), pods=pods, now=late)
    assert plan.job_suspend is True
    assert cond(plan, "Stalled")["reason"] == "ScheduleDeadlineExceeded"
    assert "workers not all placed within 300s" in plan.status["message"] and "released the placed workers" in plan.status["message"]
    assert [e[1] for e in plan.events] == ["ScheduleDeadlineExceeded", "WorkersReleased"]
    waiting = once(then(gang(), plan), job_state="Suspended", now=late + timedelta(seconds=10))
    assert waiting.job_suspend is None and waiting.status["phase"] == "Pending"
    retry = once(then(gang(), waiting), job_state="Suspended", now=late + timedelta(seconds=301))
    assert retry.job_suspend is False and "releasedAt" not in retry.status
    # The suspended time is kept out of the job's running time.
    back = once(then(gang(), retry), pods=[placed(0), placed(1), placed(2)], now=late + timedelta(seconds=302))
    assert back.status["suspendedSeconds"] == 302 and back.status["phase"] == "Running"
    assert cond(back, "Stalled")["status"] == "False" and "reason" not in back.status


def test_with_kueue_the_deadline_marks_stalled_but_releases_nothing():
    pods = [placed(0), placed(1), unplaced(2)]
    first = once(gang(queue="team-a"), pods=pods, wl=ADMITTED)
    plan = once(then(gang(queue="team-a"), first), pods=pods, wl=ADMITTED, now=NOW + timedelta(seconds=301))
    assert plan.job_suspend is None and cond(plan, "Stalled")["status"] == "True"


def test_a_container_that_cannot_start_is_a_start_deadline():
    pod = placed(2, ready=False)
    pod["status"]["containerStatuses"] = [{"name": "trainer", "image": "reg/t:1", "ready": False,
                                           "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]
    first = once(gang(), pods=[placed(0), placed(1), pod])
    plan = once(then(gang(), first), pods=[placed(0), placed(1), pod], now=NOW + timedelta(seconds=301))
    assert plan.status["reason"] == "ImagePullError" and plan.job_suspend is None
    assert cond(plan, "Stalled")["reason"] == "StartDeadlineExceeded"


def test_kueue_queues_admits_preempts_and_readmits():
    job = gang(queue="team-a")
    created = once(job, job_state="Missing")
    queued = once(then(job, created), job_state="Suspended", wl=QUEUED)
    assert queued.status["phase"] == "Pending" and queued.status["reason"] == "Queued"
    assert queued.status["admission"]["state"] == "Queued" and "insufficient unused quota" in queued.status["admission"]["message"]
    assert "suspendedSince" in queued.status

    later = NOW + timedelta(seconds=50)
    running = once(then(job, queued), pods=[placed(i) for i in range(3)], wl=ADMITTED, now=later)
    assert running.status["phase"] == "Running" and running.status["suspendedSeconds"] == 50
    assert running.status["admission"]["state"] == "Admitted" and "Admitted" in [e[1] for e in running.events]

    job = then(job, running).status(lastCheckpoint="step-40")
    preempted = once(job, job_state="Suspended", wl=PREEMPTED, now=later + timedelta(seconds=5))
    assert preempted.status["phase"] == "Preempted" and preempted.status["preemptions"] == 1 and preempted.status["restarts"] == 0
    assert cond(preempted, "Running")["reason"] == "Preempted" and "checkpoint step-40" in preempted.status["message"]
    again = once(then(job, preempted), job_state="Suspended", wl=PREEMPTED, now=later + timedelta(seconds=9))
    assert again.status["preemptions"] == 1 and not [e for e in again.events if e[1] == "Preempted"]

    readmitted_at = later + timedelta(seconds=100)
    starting = once(then(job, again), pods=[placed(0, ready=False)], wl=ADMITTED, now=readmitted_at)
    assert "resuming from checkpoint step-40" in starting.status["message"]
    resumed = once(then(job, starting), pods=[placed(i) for i in range(3)], wl=ADMITTED, now=readmitted_at + timedelta(seconds=2))
    assert resumed.status["phase"] == "Running" and resumed.status["lastProgressTime"] == rfc3339(readmitted_at + timedelta(seconds=2))
    assert "resumed from checkpoint step-40 after 1 preemption" in resumed.status["message"]
    assert resumed.status["suspendedSeconds"] == 50 + 95


def test_time_suspended_does_not_count_toward_active_deadline_seconds():
    job = gang().set("runPolicy.activeDeadlineSeconds", 60).status(startTime=rfc3339(NOW - timedelta(seconds=600)), suspendedSeconds=580)
    assert once(job, pods=[placed(i) for i in range(3)]).status["phase"] == "Running"
    assert once(job.status(suspendedSeconds=500), pods=[placed(i) for i in range(3)]).status["phase"] == "Failed"
    while_suspended = job.status(suspendedSeconds=0, suspendedSince=rfc3339(NOW - timedelta(seconds=590)))
    assert once(while_suspended, job_state="Suspended").status["phase"] != "Failed"


def test_flux_kstatus_reads_a_stuck_job_as_failed_and_a_waiting_one_as_current():
    from tests.unit.test_chart_kstatus import kstatus

    def manifest(plan) -> dict:
        return {"metadata": {"name": "train", "generation": 1}, "status": plan.status}

    never = once(gang(nodes=6, queue="team-a"), job_state="Suspended", wl=QUEUED, nodes=NODES)
    assert cond(never, "Stalled")["reason"] == "ExceedsPoolCapacity" and kstatus(manifest(never)) == "Failed"
    assert kstatus(manifest(once(gang(), pods=[placed(0), placed(1), unplaced(2)]))) == "Current"


def test_a_missing_claim_and_a_pool_too_small_are_both_said():
    pvc = '0/9 nodes are available: persistentvolumeclaim "ckpt" not found. preemption: 0/9 nodes are available'
    plan = once(gang(nodes=6), pods=[unplaced(i, pvc) for i in range(6)], nodes=NODES, missing=["ckpt"])
    assert plan.status["reason"] == "ExceedsPoolCapacity"
    message = cond(plan, "Running")["message"]
    assert "never fits: 6 pods x 8 nvidia.com/gpu" in message and 'persistentvolumeclaim "ckpt" not found' in message
    assert message.count("ckpt") == 1
    alone = once(gang(nodes=2), pods=[unplaced(0, pvc), unplaced(1, pvc)], nodes=NODES, missing=["ckpt"])
    assert alone.status["reason"] == "MissingVolume" and alone.job_suspend is None
