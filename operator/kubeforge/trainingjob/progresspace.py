"""How often a running job's progress reaches its status: a per-job interval that stretches with the number of jobs.

Rank 0 patches its progress ConfigMap every few seconds. Written through at once, 1,000
jobs would be 100 status writes and 100 passes a second. Two limits apply instead:

- per job, progress is written at most once per `interval` (KUBEFORGE_PROGRESS_WRITE_SECONDS);
- all jobs together write progress at most `writes_per_second` times a second
  (KUBEFORGE_PROGRESS_WRITES_PER_SECOND): with N jobs reporting, each job's interval is
  at least N / writes_per_second.

After a running job's status is written, and while its progress is held, its ConfigMap's
events wake nothing before the next write is due (`delay`): the one pass then reads the latest
report. Anything else in the status (phase, workers, a condition) is written at
once and takes the progress along; the events of pods and Jobs are not delayed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Key = tuple[str, str]  # (namespace, name)


class ProgressPace:
    def __init__(self, interval: float, writes_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = interval
        self.writes_per_second = writes_per_second
        self._clock = clock
        self._reporting: set[Key] = set()  # jobs whose status carries progress and that are running
        self._held_until: dict[Key, float] = {}
        self._lock = threading.Lock()  # passes run in worker threads, `delay` on the event loop

    def interval(self) -> float:
        """Seconds between two progress writes of one job, now."""
        with self._lock:
            reporting = len(self._reporting)
        if self.base <= 0:
            return 0.0
        if self.writes_per_second <= 0:
            return self.base
        return max(self.base, reporting / self.writes_per_second)

    def reporting(self, key: Key, running: bool) -> None:
        """A pass saw the job: it counts towards the shared budget while it runs and reports progress."""
        with self._lock:
            if running:
                self._reporting.add(key)
            else:
                self._reporting.discard(key)
                self._held_until.pop(key, None)

    def held(self, key: Key, seconds: float) -> None:
        """The pass held the job's progress back for `seconds`; a pass is scheduled for then."""
        with self._lock:
            self._held_until[key] = self._clock() + seconds

    def written(self, key: Key) -> None:
        """The pass wrote the job's status. A running job's next progress is due an interval later at the
        earliest: its reports until then wake nothing before that (one pass per interval, not one per report
        plus one at the end of a hold)."""
        interval = self.interval()
        with self._lock:
            if key in self._reporting and interval > 0:
                self._held_until[key] = self._clock() + interval
            else:
                self._held_until.pop(key, None)

    def forget(self, key: Key) -> None:
        """The job is gone."""
        self.reporting(key, running=False)

    def delay(self, key: Key, coalesce: float) -> float:
        """How long a ConfigMap event of this job waits before it wakes a pass: at least `coalesce`, and
        until the end of a hold (the pass scheduled then reads the report)."""
        with self._lock:
            until = self._held_until.get(key)
        if until is None:
            return coalesce
        return max(coalesce, until - self._clock())

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"reporting": len(self._reporting), "held": len(self._held_until)}
