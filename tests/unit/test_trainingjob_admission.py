"""Kueue's Workload, read as the TrainingJob's admission state: queued, inadmissible, admitted, preempted."""

from __future__ import annotations

import pytest

from kubeforge.trainingjob.admission import Admission, admission, newly_preempted, workload_of


def workload(*conditions: tuple[str, str, str, str], cluster_queue: str | None = None, uid: str = "job-uid") -> dict:
    status: dict = {"conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions]}
    if cluster_queue:
        status["admission"] = {"clusterQueue": cluster_queue, "podSetAssignments": []}
    return {"metadata": {"name": "job-train-a1-abcde", "labels": {"kueue.x-k8s.io/job-uid": uid}}, "status": status}


QUOTA_PENDING = ("QuotaReserved", "False", "Pending",
                 "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor a100, 16 more needed")
ADMITTED = (("QuotaReserved", "True", "QuotaReserved", ""), ("Admitted", "True", "Admitted", "The workload is admitted"))
PREEMPTED = ("Evicted", "True", "Preempted", "Preempted to accommodate a workload (UID: x, JobUID: y) due to prioritization in the ClusterQueue")


@pytest.mark.parametrize(("the_workload", "expected"), [
    pytest.param(None, Admission("team-a", "Queued", "waiting for Kueue to admit the workload (queue team-a)"), id="no-workload-yet"),
    pytest.param(workload(QUOTA_PENDING), Admission("team-a", "Queued", "queued in team-a: " + QUOTA_PENDING[3]), id="no-quota"),
    pytest.param(workload(("QuotaReserved", "False", "Inadmissible", "LocalQueue team-a doesn't exist")),
                 Admission("team-a", "Inadmissible", "LocalQueue team-a doesn't exist"), id="no-local-queue"),
    pytest.param(workload(*ADMITTED, cluster_queue="kubeforge"),
                 Admission("team-a", "Admitted", "admitted by ClusterQueue kubeforge", "kubeforge"), id="admitted"),
    pytest.param(workload(PREEMPTED, ("Admitted", "False", "NoReservation", ""), QUOTA_PENDING),
                 Admission("team-a", "Preempted", "preempted by Kueue: " + PREEMPTED[3] + "; queued again"), id="preempted"),
    pytest.param(workload(("Evicted", "True", "PodsReadyTimeout", "Exceeded the PodsReady timeout"), QUOTA_PENDING),
                 Admission("team-a", "Evicted", "evicted by Kueue: Exceeded the PodsReady timeout; queued again"), id="evicted"),
    pytest.param(workload(("Evicted", "False", "Preempted", ""), *ADMITTED, cluster_queue="kubeforge"),
                 Admission("team-a", "Admitted", "admitted by ClusterQueue kubeforge", "kubeforge"), id="readmitted"),
])
def test_the_workloads_conditions_become_an_admission_state(the_workload, expected):
    assert admission("team-a", the_workload) == expected


def test_a_preemption_is_counted_once():
    now = admission("team-a", workload(PREEMPTED))
    assert newly_preempted({"state": "Admitted"}, now)
    assert not newly_preempted({"state": "Preempted"}, now)
    assert not newly_preempted({"state": "Preempted"}, admission("team-a", workload(*ADMITTED)))


def test_the_workload_is_found_by_the_jobs_uid():
    mine, other = workload(uid="u1"), workload(uid="u2")
    owned = {"metadata": {"name": "x", "ownerReferences": [{"uid": "u3"}]}}
    assert workload_of("u2", [mine, other]) is other
    assert workload_of("u3", [mine, owned]) is owned
    assert workload_of("u9", [mine]) is None and workload_of(None, [mine]) is None


def test_the_wire_form_names_the_cluster_queue_only_once_admitted():
    assert Admission("q", "Queued", "m").to_wire() == {"queue": "q", "state": "Queued", "message": "m"}
    assert Admission("q", "Admitted", "m", "cq").to_wire()["clusterQueue"] == "cq"
