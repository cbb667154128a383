"""ChildrenApplied: a refused apply claims nothing the API server refused, and turns True once it goes through."""

from __future__ import annotations

from kubeforge import conditions
from kubeforge.apierrors import Refusal
from kubeforge.applystatus import applied, refused

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"
QUOTA = Refusal(403, "Forbidden", 'jobs.batch "x-a1" is forbidden: exceeded quota', "Job x-a1")
CREATED = {"type": "Created", "status": "True", "reason": "JobCreated", "message": "created Job x-a1", "lastTransitionTime": NOW}


def test_a_refused_job_shows_the_api_servers_message_and_drops_the_unconfirmed_created_claim():
    status = refused({"phase": "Pending", "message": "created Job x-a1", "conditions": [CREATED]}, QUOTA, 1, NOW, ("Created",))
    assert conditions.find(status["conditions"], "Created") is None
    cond = conditions.find(status["conditions"], "ChildrenApplied")
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == ("False", "RefusedByAPIServer", 1)
    assert cond["message"] == status["message"] == 'the API server refused Job x-a1 (403 Forbidden): jobs.batch "x-a1" is forbidden: exceeded quota'


def test_a_name_conflict_keeps_its_own_words():
    conflict = Refusal(409, "NameConflict", "Service x already exists and is not controlled by this resource", "Service x")
    cond = conditions.find(refused({}, conflict, 1, NOW)["conditions"], "ChildrenApplied")
    assert cond["reason"] == "NameConflict" and cond["message"].startswith("Service x already exists")


def test_after_a_refusal_a_successful_apply_turns_the_condition_true_and_otherwise_adds_nothing():
    was_refused = refused({}, QUOTA, 1, NOW)
    cond = conditions.find(applied(was_refused, 1, LATER)["conditions"], "ChildrenApplied")
    assert (cond["status"], cond["reason"], cond["lastTransitionTime"]) == ("True", "Applied", LATER)
    untouched = {"phase": "Running", "conditions": [CREATED]}
    assert applied(untouched, 1, LATER) is untouched


def test_an_endpoint_shows_the_refusal_in_its_one_word_reason_column():
    status = refused({"phase": "Pending", "reason": "WaitingForModel"}, QUOTA, 1, NOW, summary="reason")
    assert status["reason"] == "RefusedByAPIServer" and "message" not in status
