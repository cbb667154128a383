"""Exit-code policy: which worker failures restart the group and which fail the job at once."""

from __future__ import annotations

import pytest

from kubeforge.api.trainingjob import RunPolicy
from kubeforge.trainingjob.exitcodes import DELETED, EVICTED, LOST, attempt_failure, is_retryable, pod_failure
from tests.unit.trainingjob_wrappers import worker_pod

DEFAULT = RunPolicy()


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(1, False), (2, False), (126, False), (127, False), (128, False), (139, False),
     (130, True), (137, True), (143, True), (134, True), (3, False), (255, True)],
)
def test_default_policy_classifies_exit_codes(code, retryable):
    assert is_retryable(code, DEFAULT) is retryable


def test_the_users_lists_override_the_defaults():
    policy = RunPolicy(retryable_exit_codes=[1], permanent_exit_codes=[137])
    assert is_retryable(1, policy) and not is_retryable(137, policy)


def test_a_running_pod_has_not_failed():
    assert pod_failure(worker_pod("t", 1, 0), DEFAULT) is None


def test_a_failed_pod_reports_its_index_and_code():
    failure = pod_failure(worker_pod("t", 1, 2, phase="Failed", exit_code=1), DEFAULT)
    assert (failure.index, failure.exit_code, failure.retryable) == (2, 1, False)
    assert failure.describe() == "worker 2 (pod t-a1-2-xyz) exited with code 1"


def test_an_evicted_pod_is_retryable_whatever_its_code():
    failure = pod_failure(worker_pod("t", 1, 0, phase="Failed", exit_code=1, evicted=True), DEFAULT)
    assert (failure.how, failure.retryable) == (EVICTED, True)


def test_a_deleted_pod_is_retryable():
    failure = pod_failure(worker_pod("t", 1, 0, deleted=True), DEFAULT)
    assert (failure.how, failure.retryable) == (DELETED, True)


def test_a_permanent_failure_wins_over_the_workers_stopped_after_it():
    pods = [
        worker_pod("t", 1, 0, phase="Failed", exit_code=143, deleted=True, finished_at="2026-01-01T00:00:01Z"),
        worker_pod("t", 1, 1, phase="Failed", exit_code=1, finished_at="2026-01-01T00:00:05Z"),
    ]
    assert attempt_failure(pods, DEFAULT).index == 1


def test_the_first_worker_to_fail_is_the_cause_among_retryable_ones():
    pods = [
        worker_pod("t", 1, 0, phase="Failed", exit_code=143, deleted=True, finished_at="2026-01-01T00:00:01Z"),
        worker_pod("t", 1, 1, phase="Failed", exit_code=137, finished_at="2026-01-01T00:00:03Z"),
        worker_pod("t", 1, 2, phase="Failed", exit_code=137, finished_at="2026-01-01T00:00:02Z"),
    ]
    assert attempt_failure(pods, DEFAULT).index == 2


def test_a_failed_attempt_with_no_pod_left_was_a_lost_worker():
    failure = attempt_failure([worker_pod("t", 1, 0)], DEFAULT)
    assert (failure.how, failure.retryable) == (LOST, True)
