"""The TrainingJob -> ModelEndpoint index that lets a job's events wake exactly its endpoints."""

from __future__ import annotations

from kubeforge.modelendpoint.refindex import RefIndex


def test_a_job_wakes_the_endpoints_that_reference_it_in_its_namespace_only():
    index = RefIndex()
    index.set("ml", "a", "train")
    index.set("ml", "b", "train")
    index.set("ml", "c", "other")
    index.set("team-b", "d", "train")
    assert index.endpoints_for("ml", "train") == ["a", "b"]


def test_an_endpoint_that_moved_to_a_uri_or_was_deleted_is_forgotten():
    index = RefIndex()
    index.set("ml", "a", "train")
    index.set("ml", "a", None)
    assert index.endpoints_for("ml", "train") == []


def test_an_endpoint_that_switched_jobs_follows_the_new_one():
    index = RefIndex()
    index.set("ml", "a", "train")
    index.set("ml", "a", "train-v2")
    assert (index.endpoints_for("ml", "train"), index.endpoints_for("ml", "train-v2")) == ([], ["a"])
