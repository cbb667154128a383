"""The operator's log: each line once, and watch-handler heartbeats below INFO (run in a fresh interpreter:
pytest's own log capture sits on the root logger of this one)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging
from kubeforge import logsetup
logsetup.configure(verbose={verbose})
logsetup.configure(verbose={verbose})  # a second call replaces, never adds
logging.getLogger("kubeforge.trainingjob.controller").info("TrainingJob ns/a: Pending -> Running: 2/2 workers running")
objects = logging.getLogger("kopf.objects")
for handler in ("enqueue-TrainingJob", "enqueue-ModelEndpoint-for-pods", "wake-modelendpoints", "configure"):
    objects.info("Handler '%s' succeeded.", handler)
"""


def operator_log(verbose: bool = False) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(verbose=verbose)], capture_output=True, text=True, check=True)
    return (done.stdout + done.stderr).splitlines()


def test_each_line_is_printed_once_in_one_format():
    lines = [ln for ln in operator_log() if "Pending -> Running" in ln]
    assert len(lines) == 1
    assert lines[0].endswith(" INFO kubeforge.trainingjob.controller: TrainingJob ns/a: Pending -> Running: 2/2 workers running")


def test_watch_handler_successes_are_debug_not_info():
    succeeded = [ln for ln in operator_log() if "succeeded" in ln]
    assert len(succeeded) == 1 and "'configure'" in succeeded[0]
    verbose = [ln for ln in operator_log(verbose=True) if "succeeded" in ln]
    assert len(verbose) == 4 and sum(" DEBUG " in ln for ln in verbose) == 3
