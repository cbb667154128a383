"""Liveness: a dead watcher task, a kind silent too long, or a dead queue fail /healthz."""

from __future__ import annotations

import pytest

from kubeforge.health import WatchedKind, WatchHealth
from kubeforge.resync import jittered

PODS = WatchedKind("v1", "Pod", "pods", "kubeforge.io/trainingjob")
WATCHER = "watcher for pods.v1@None"


def health(now: list[float]) -> WatchHealth:
    h = WatchHealth(stale_after=100, clock=lambda: now[0])
    h.watch(PODS)
    return h


def test_a_running_watcher_with_recent_evidence_is_healthy():
    now = [0.0]
    h = health(now)
    now[0] = 90
    assert h.problems([WATCHER, "kubeforge-workqueue"]) == []


def test_a_watcher_task_once_seen_and_now_gone_is_a_problem_for_good():
    now = [0.0]
    h = health(now)
    h.problems([WATCHER])
    assert h.problems([]) == [f"{WATCHER} has ended"]
    h.seen("pods")
    assert h.problems([]) == [f"{WATCHER} has ended"]  # kopf never restarts it: only a restart helps


def test_a_kind_without_event_or_list_for_too_long_is_stale_until_seen_again():
    now = [0.0]
    h = health(now)
    now[0] = 101
    assert h.problems([WATCHER]) == ["no watch event or list of pods for 101s"]
    h.seen("pods")
    assert h.problems([WATCHER]) == []


def test_a_dead_queue_is_a_problem():
    assert health([0.0]).problems([WATCHER], queue_alive=False) == ["the work queue task has died"]


def test_the_periodic_relist_is_jittered_by_a_fifth_either_way():
    assert (jittered(100, lambda: 0.0), jittered(100, lambda: 1.0)) == pytest.approx((80, 120))
