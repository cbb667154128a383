"""The kopf index of ModelEndpoints by trainingJobRef, which lets a TrainingJob's events wake exactly its endpoints."""

from __future__ import annotations

import asyncio

from kubeforge.modelendpoint import refindex
from kubeforge.workqueue import WorkQueue


def indexed(namespace: str, name: str, model: dict) -> dict:
    return refindex.endpoints_by_trainingjob(namespace=namespace, name=name, spec={"model": model})


def test_an_endpoint_is_indexed_under_its_namespace_and_training_job():
    assert indexed("ml", "a", {"trainingJobRef": {"name": "train"}}) == {("ml", "train"): "a"}


def test_an_endpoint_serving_a_uri_is_indexed_under_nothing_as_an_empty_mapping():
    # Not None: kopf keeps an object's previous entries when the index function returns None.
    result = indexed("ml", "a", {"uri": "pvc://models/a"})
    assert result == {} and result is not None


def test_a_job_wakes_the_endpoints_that_reference_it_in_its_namespace_only():
    index = {("ml", "train"): ["b", "a"], ("ml", "other"): ["c"], ("team-b", "train"): ["d"]}
    assert refindex.endpoints_for(index, "ml", "train") == ["a", "b"]
    assert refindex.endpoints_for(index, "ml", "nobody") == []


def test_a_training_job_event_enqueues_each_endpoint_the_index_names():
    queue = WorkQueue()
    index = {("ml", "train"): ["a", "b"], ("ml", "other"): ["c"]}
    asyncio.run(refindex.waker(queue)(namespace="ml", name="train", **{refindex.INDEX_ID: index}))
    assert queue.depth == 2
