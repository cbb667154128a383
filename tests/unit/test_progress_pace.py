"""kubeforge.trainingjob.progresspace: the per-job interval stretches with the jobs reporting, and a held job's
ConfigMap events wait for the end of its hold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubeforge.trainingjob.controller import _progress_hold
from kubeforge.settings import Settings
from kubeforge.trainingjob.progresspace import ProgressPace

NOW = datetime(2026, 12, 2, 7, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def running(step: int, written: datetime) -> dict:
    return {"phase": "Running", "progress": {"step": step}, "lastProgressTime": written.isoformat().replace("+00:00", "Z")}


def test_the_interval_is_the_per_job_floor_until_the_shared_budget_stretches_it():
    pace = ProgressPace(interval=30, writes_per_second=5)
    for i in range(100):
        pace.reporting(("ns", f"j{i}"), running=True)
    assert pace.interval() == 30  # 100 jobs / 5 per s = 20 s < 30 s
    for i in range(100, 1000):
        pace.reporting(("ns", f"j{i}"), running=True)
    assert pace.interval() == 200  # 1,000 jobs at 5 writes/s: each every 200 s
    for i in range(500):
        pace.forget(("ns", f"j{i}"))
    assert pace.interval() == 100


def test_a_job_that_stops_running_no_longer_counts_and_its_hold_ends():
    clock = Clock()
    pace = ProgressPace(interval=1, writes_per_second=1, clock=clock)
    pace.reporting(("ns", "a"), running=True)
    pace.reporting(("ns", "b"), running=True)
    pace.held(("ns", "a"), 40)
    assert pace.interval() == 2
    pace.reporting(("ns", "a"), running=False)
    assert pace.interval() == 1
    assert pace.delay(("ns", "a"), 2.0) == 2.0
    assert pace.counts == {"reporting": 1, "held": 0}


def test_a_report_during_a_hold_waits_for_its_end_and_one_after_a_write_only_for_the_coalescing_delay():
    clock = Clock()
    pace = ProgressPace(interval=30, writes_per_second=5, clock=clock)
    key = ("ns", "a")
    assert pace.delay(key, 2.0) == 2.0
    pace.held(key, 25)
    clock.now += 5
    assert pace.delay(key, 2.0) == 20
    clock.now += 19.5
    assert pace.delay(key, 2.0) == 2.0  # never sooner than the coalescing delay
    pace.written(key)  # not a running job that reports: its events are not held
    assert pace.delay(key, 2.0) == 2.0


def test_after_a_running_jobs_write_its_reports_wait_for_the_next_write_to_be_due():
    clock = Clock()
    pace = ProgressPace(interval=30, writes_per_second=5, clock=clock)
    key = ("ns", "a")
    pace.reporting(key, running=True)
    pace.written(key)
    clock.now += 10
    assert pace.delay(key, 2.0) == 20  # one pass when the next write is due, not one per report
    pace.reporting(key, running=False)  # finished: nothing held
    assert pace.delay(key, 2.0) == 2.0


def test_zero_interval_writes_every_report_and_a_zero_budget_leaves_the_per_job_floor():
    assert ProgressPace(interval=0, writes_per_second=5).interval() == 0
    pace = ProgressPace(interval=30, writes_per_second=0)
    pace.reporting(("ns", "a"), running=True)
    assert pace.interval() == 30


def test_a_pass_holds_progress_by_the_stretched_interval_and_records_the_hold():
    clock = Clock()
    pace = ProgressPace(interval=30, writes_per_second=1, clock=clock)
    for i in range(59):
        pace.reporting(("ns", f"other{i}"), running=True)
    key = ("ns", "a")
    previous = running(10, NOW - timedelta(seconds=35))
    # 60 jobs at 1 write/s: 60 s apart, 35 s passed, 25 s to go.
    assert _progress_hold(pace, key, previous, running(11, NOW), NOW, Settings()) == 25
    assert pace.delay(key, 2.0) == 25
    # A phase change goes out at once: no hold, and the job leaves the budget.
    assert _progress_hold(pace, key, previous, running(11, NOW) | {"phase": "Succeeded"}, NOW, Settings()) is None
    assert pace.counts["reporting"] == 59


def test_without_a_pace_the_configured_interval_applies():
    previous = running(10, NOW - timedelta(seconds=5))
    assert _progress_hold(None, ("ns", "a"), previous, running(11, NOW), NOW, Settings(progress_write_seconds=30)) == 25
