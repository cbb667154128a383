"""Waiting on a condition with a deadline: the one polling helper every test layer uses."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, message: str = "condition",
             interval: float = 0.2, max_interval: float = 1.0) -> T:
    """Polls predicate until it returns something truthy, and returns that.

    While the condition does not hold the predicate returns a falsy value or
    raises AssertionError (whose text describes what it saw). Past the
    deadline an AssertionError names `message` and the last observed state.
    The interval grows by half each poll up to `max_interval`: two cores serve
    the API server, the workloads and the tests alike.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except AssertionError as seen:
            last = str(seen) or repr(seen)
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message}: not reached within {timeout:g}s; last observed: {last}")
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
        interval = min(interval * 1.5, max(interval, max_interval))
