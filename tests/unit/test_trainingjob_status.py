"""The TrainingJob state machine: status and actions computed from the children's state and the clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from kubeforge import conditions
from kubeforge.api.trainingjob import TrainingJob
from kubeforge.trainingjob import observe
from kubeforge.timestamps import rfc3339
from kubeforge.trainingjob.status import decide
from tests.unit.trainingjob_wrappers import MakeTrainingJob, worker_job, worker_pod

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=timezone.utc)


def reconcile_once(wrapper: MakeTrainingJob, jobs=(), pods=(), now=NOW, progress=None):
    """One decision on what the children show; `progress`: rank 0's record in the progress ConfigMap."""
    job = wrapper.model()
    progress_map = {"data": {"progress": json.dumps(progress)}} if progress is not None else None
    return decide(job, observe.observe(job.name, job.status.attempt, list(jobs), list(pods), progress_map=progress_map), now)


def then(wrapper: MakeTrainingJob, plan) -> MakeTrainingJob:
    """The same job with the status the plan wrote, for the next pass."""
    return wrapper.status(**plan.status)


def condition(plan, type_: str) -> dict:
    return conditions.find(plan.status["conditions"], type_)


def running_pods(name="train", attempt=1, n=2, **kw):
    return [worker_pod(name, attempt, i, **kw) for i in range(n)]


def test_a_new_job_creates_attempt_one_and_is_pending():
    plan = reconcile_once(MakeTrainingJob().nodes(2))
    assert plan.create_job == 1 and plan.create_suspended is False
    assert plan.status["phase"] == "Pending" and plan.status["restarts"] == 0
    assert condition(plan, "Created")["status"] == "True"
    assert [e[1] for e in plan.events] == ["JobCreated"]


def test_workers_not_all_ready_keep_it_pending():
    pods = [worker_pod("train", 1, 0), worker_pod("train", 1, 1, phase="Pending", ready=False)]
    plan = reconcile_once(MakeTrainingJob().nodes(2), [worker_job("train", 1)], pods)
    assert plan.status["phase"] == "Pending" and plan.create_job is None
    assert plan.status["workers"] == {"summary": "1/2", "total": 2, "ready": 1, "succeeded": 0, "failed": 0}


def test_all_workers_ready_is_running():
    plan = reconcile_once(MakeTrainingJob().nodes(2), [worker_job("train", 1)], running_pods())
    assert plan.status["phase"] == "Running"
    assert condition(plan, "Running")["reason"] == "AllWorkersReady"


def test_rank_zeros_progress_record_becomes_status_progress():
    progress = {"step": 40, "totalSteps": 100, "loss": 0.5, "checkpoint": "step-40", "attempt": 1}
    plan = reconcile_once(MakeTrainingJob().nodes(2), [worker_job("train", 1)], running_pods(), progress=progress)
    assert plan.status["progress"] == {"step": 40, "totalSteps": 100, "loss": 0.5}
    assert plan.status["lastCheckpoint"] == "step-40"
    assert plan.status["lastProgressTime"] == rfc3339(NOW)


def test_a_progress_record_left_by_an_earlier_attempt_is_ignored():
    stale = {"step": 40, "totalSteps": 100, "attempt": 1}
    plan = reconcile_once(MakeTrainingJob().nodes(2).status(attempt=2), [worker_job("train", 2)], running_pods(attempt=2), progress=stale)
    assert "progress" not in plan.status


def test_a_completed_job_succeeds_with_rank_zeros_summary():
    summary = {"metrics": {"accuracy": 0.9}, "steps": 4}
    pods = [worker_pod("train", 1, 0, phase="Succeeded", exit_code=0, message=json.dumps(summary)),
            worker_pod("train", 1, 1, phase="Succeeded", exit_code=0)]
    wrapper = MakeTrainingJob().nodes(2).output("pvc://models/m")
    plan = reconcile_once(wrapper, [worker_job("train", 1, "Complete")], pods)
    assert plan.status["phase"] == "Succeeded" and plan.status["completionTime"] == rfc3339(NOW)
    assert plan.status["result"] == {**summary, "modelUri": "pvc://models/m"}
    assert condition(plan, "Succeeded")["status"] == "True"


def test_a_permanent_exit_code_fails_at_once_naming_pod_and_code():
    pods = [worker_pod("train", 1, 0, deleted=True, phase="Failed", exit_code=143),
            worker_pod("train", 1, 1, phase="Failed", exit_code=1)]
    plan = reconcile_once(MakeTrainingJob().nodes(2), [worker_job("train", 1, "Failed")], pods)
    failed = condition(plan, "Failed")
    assert plan.status["phase"] == "Failed" and plan.create_job is None and plan.status["restarts"] == 0
    assert failed["reason"] == "PermanentExitCode"
    assert "worker 1 (pod train-a1-1-xyz) exited with code 1" in failed["message"]


def test_a_retryable_exit_code_restarts_the_group_as_the_next_attempt():
    pods = [worker_pod("train", 1, 0, phase="Failed", exit_code=137), worker_pod("train", 1, 1)]
    plan = reconcile_once(MakeTrainingJob().nodes(2), [worker_job("train", 1, "FailureTarget")], pods)
    assert plan.status["phase"] == "Restarting"
    assert (plan.status["attempt"], plan.status["restarts"], plan.create_job) == (2, 1, 2)
    assert plan.delete_jobs == ["train-a1"]
    assert plan.events[-1][:2] == ("Warning", "Restarting") and "code 137" in plan.events[-1][2]


def test_a_deleted_worker_restarts_the_group():
    plan = reconcile_once(MakeTrainingJob().nodes(2), [worker_job("train", 1, "Failed")], [worker_pod("train", 1, 1, deleted=True)])
    assert plan.create_job == 2 and "was deleted" in plan.status["message"]


def test_restarts_stop_at_the_backoff_limit():
    wrapper = MakeTrainingJob().set("runPolicy.backoffLimit", 1).status(attempt=2)
    pods = [worker_pod("train", 2, 0, phase="Failed", exit_code=137)]
    plan = reconcile_once(wrapper, [worker_job("train", 2, "Failed")], pods)
    assert plan.status["phase"] == "Failed" and plan.create_job is None
    assert condition(plan, "Failed")["reason"] == "BackoffLimitExceeded"
    assert plan.status["restarts"] == 1


def test_a_job_created_by_a_pass_that_died_before_its_status_write_is_marked_created_once():
    plan = reconcile_once(MakeTrainingJob().nodes(2), [worker_job("train", 1)])
    assert plan.create_job is None and condition(plan, "Created")["status"] == "True"
    assert [e[1] for e in plan.events] == ["JobCreated"]
    assert reconcile_once(then(MakeTrainingJob().nodes(2), plan), [worker_job("train", 1)]).events == []


def test_the_newest_attempts_job_is_adopted_after_a_crash_before_the_status_write():
    plan = reconcile_once(MakeTrainingJob().nodes(2).status(attempt=1), [worker_job("train", 1, "Failed"), worker_job("train", 2)], running_pods(attempt=2))
    assert (plan.status["attempt"], plan.status["restarts"], plan.create_job) == (2, 1, None)
    assert plan.delete_jobs == ["train-a1"]


def test_suspend_stops_the_running_job_and_keeps_it():
    plan = reconcile_once(MakeTrainingJob().set("runPolicy.suspend", True), [worker_job("train", 1)], running_pods(n=1))
    assert plan.job_suspend is True and plan.status["phase"] == "Suspended"
    assert condition(plan, "Suspended")["status"] == "True"


def test_a_suspended_new_job_creates_nothing():
    plan = reconcile_once(MakeTrainingJob().set("runPolicy.suspend", True))
    assert plan.create_job is None and "startTime" not in plan.status


def test_resume_unsuspends_the_job():
    suspended = MakeTrainingJob().set("runPolicy.suspend", True)
    first = reconcile_once(suspended, [worker_job("train", 1)])
    resumed = then(suspended, first).set("runPolicy.suspend", False)
    plan = reconcile_once(resumed, [worker_job("train", 1, suspend=True)])
    assert plan.job_suspend is False and condition(plan, "Suspended")["reason"] == "Resumed"


def test_a_kueue_job_is_created_suspended_and_waits_for_admission():
    wrapper = MakeTrainingJob().queue("team-a")
    assert reconcile_once(wrapper).create_suspended is True
    plan = reconcile_once(wrapper, [worker_job("train", 1, suspend=True)])
    assert plan.job_suspend is None and condition(plan, "Running")["reason"] == "WaitingForAdmission"


def test_the_active_deadline_fails_the_job_and_stops_the_workers():
    wrapper = MakeTrainingJob().set("runPolicy.activeDeadlineSeconds", 60).status(startTime=rfc3339(NOW - timedelta(seconds=61)))
    plan = reconcile_once(wrapper, [worker_job("train", 1)], running_pods(n=1))
    assert condition(plan, "Failed")["reason"] == "DeadlineExceeded"
    assert "train-a1" in plan.delete_jobs


def test_before_the_deadline_the_reconciler_wakes_up_when_it_is_due():
    wrapper = MakeTrainingJob().set("runPolicy.activeDeadlineSeconds", 60).status(startTime=rfc3339(NOW - timedelta(seconds=15)))
    assert reconcile_once(wrapper, [worker_job("train", 1)], running_pods(n=1)).requeue_after == 45


def test_no_progress_within_the_deadline_marks_stalled_and_restarts():
    wrapper = MakeTrainingJob().set("runPolicy.progressDeadlineSeconds", 30).nodes(1)
    running = reconcile_once(wrapper, [worker_job("train", 1)], running_pods(n=1))
    assert running.requeue_after == 30
    plan = reconcile_once(then(wrapper, running), [worker_job("train", 1)], running_pods(n=1), now=NOW + timedelta(seconds=31))
    assert condition(plan, "Stalled")["status"] == "True" and plan.create_job == 2


def test_ttl_deletes_the_job_after_it_finished():
    finished = rfc3339(NOW - timedelta(seconds=100))
    wrapper = MakeTrainingJob().set("runPolicy.ttlSecondsAfterFinished", 60).status(phase="Succeeded", completionTime=finished)
    assert reconcile_once(wrapper, [worker_job("train", 1, "Complete")]).delete_self is True
    early = wrapper.set("runPolicy.ttlSecondsAfterFinished", 300)
    plan = reconcile_once(early, [worker_job("train", 1, "Complete")])
    assert plan.delete_self is False and plan.requeue_after == 200


def test_a_second_pass_over_the_same_world_changes_nothing():
    wrapper = MakeTrainingJob().nodes(2)
    world = ([worker_job("train", 1)], running_pods())
    first = reconcile_once(wrapper, *world)
    second = reconcile_once(then(wrapper, first), *world, now=NOW + timedelta(seconds=5))
    assert second.status == first.status and second.events == [] and second.create_job is None


def test_the_status_parses_back_into_the_model():
    plan = reconcile_once(MakeTrainingJob().nodes(2), [worker_job("train", 1)], running_pods())
    assert TrainingJob.from_manifest({**MakeTrainingJob().obj(), "status": plan.status}).status.phase == "Running"


def test_an_elastic_job_keeps_running_while_min_nodes_remain():
    wrapper = MakeTrainingJob().nodes(3).set("elastic", {"minNodes": 2, "maxNodes": 3}).status(phase="Running")
    pods = [worker_pod("train", 1, 0), worker_pod("train", 1, 1), worker_pod("train", 1, 2, phase="Failed", exit_code=137)]
    plan = reconcile_once(wrapper, [worker_job("train", 1)], pods)
    assert plan.create_job is None and plan.status["restarts"] == 0


def test_an_elastic_job_below_min_nodes_restarts_the_group():
    wrapper = MakeTrainingJob().nodes(3).set("elastic", {"minNodes": 2, "maxNodes": 3}).status(phase="Running")
    pods = [worker_pod("train", 1, 0)] + [worker_pod("train", 1, i, phase="Failed", exit_code=137) for i in (1, 2)]
    plan = reconcile_once(wrapper, [worker_job("train", 1)], pods)
    assert plan.create_job == 2 and "fewer than elastic.minNodes" in plan.status["message"]


def test_stalled_clears_only_when_the_step_moves():
    wrapper = MakeTrainingJob().set("runPolicy.progressDeadlineSeconds", 30).nodes(1)
    running = reconcile_once(wrapper, [worker_job("train", 1)], running_pods(n=1))
    stalled = reconcile_once(then(wrapper, running), [worker_job("train", 1)], running_pods(n=1), now=NOW + timedelta(seconds=31))
    restarted = then(wrapper, stalled)
    again = reconcile_once(restarted, [worker_job("train", 2)], running_pods(attempt=2, n=1), now=NOW + timedelta(seconds=35))
    assert condition(again, "Stalled")["status"] == "True"
    moved = {"step": 1, "totalSteps": 10}
    pods = [worker_pod("train", 2, 0)]
    advancing = reconcile_once(then(restarted, again), [worker_job("train", 2)], pods, now=NOW + timedelta(seconds=40), progress=moved)
    assert condition(advancing, "Stalled")["reason"] == "Progressing"


def queued(**settings):
    """A fresh queued one-node job per pass: `then` merges into one wrapper, and these passes drop keys."""
    def with_status(plan=None):
        wrapper = MakeTrainingJob().queue("team-a").nodes(1)
        for path, value in settings.items():
            wrapper.set(path.replace("__", "."), value)
        return wrapper.status(**plan.status) if plan else wrapper
    return with_status


def test_time_suspended_by_kueue_does_not_count_toward_the_active_deadline():
    job = queued(runPolicy__activeDeadlineSeconds=60)
    running = reconcile_once(job(), [worker_job("train", 1)], running_pods(n=1))
    # Kueue preempts the workload 30 s in: the Job is suspended, for far longer than the deadline.
    preempted = reconcile_once(job(running), [worker_job("train", 1, suspend=True)], [], now=NOW + timedelta(seconds=30))
    assert preempted.status["suspendedSince"] == rfc3339(NOW + timedelta(seconds=30))
    still = reconcile_once(job(preempted), [worker_job("train", 1, suspend=True)], [], now=NOW + timedelta(seconds=600))
    assert still.status["phase"] != "Failed" and still.job_suspend is None  # waits for Kueue, deadline paused
    # Readmitted at 601 s after 571 s suspended: the deadline is now due at 60 + 571 = 631 s.
    resumed = reconcile_once(job(still), [worker_job("train", 1)], running_pods(n=1), now=NOW + timedelta(seconds=601))
    assert resumed.status["suspendedSeconds"] == 571 and "suspendedSince" not in resumed.status
    assert resumed.status["phase"] == "Running" and resumed.requeue_after == 30
    late = reconcile_once(job(resumed), [worker_job("train", 1)], running_pods(n=1), now=NOW + timedelta(seconds=632))
    assert condition(late, "Failed")["reason"] == "DeadlineExceeded"


def test_a_kueue_suspension_longer_than_the_progress_deadline_is_not_a_stall():
    job = queued(runPolicy__progressDeadlineSeconds=30)
    running = reconcile_once(job(), [worker_job("train", 1)], running_pods(n=1))
    preempted = reconcile_once(job(running), [worker_job("train", 1, suspend=True)], [], now=NOW + timedelta(seconds=5))
    resumed = reconcile_once(job(preempted), [worker_job("train", 1)], running_pods(n=1), now=NOW + timedelta(seconds=300))
    assert resumed.status["phase"] == "Running" and condition(resumed, "Stalled") is None
    assert resumed.status["lastProgressTime"] == rfc3339(NOW + timedelta(seconds=300))
