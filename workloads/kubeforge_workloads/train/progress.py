"""Progress from your own program (a Ray driver, a command), through the same sinks as the built-in recipe.

    from kubeforge_workloads.train.progress import report_progress
    report_progress(step, total_steps, loss=0.42)

Rank 0's record becomes the TrainingJob's status.progress (the STEP column; through the job's
ConfigMap <job>-progress, throttled to one patch every 10 s) and, locally, a line of
`kubeforge run --local`'s output. Only the process that speaks for the group reports: the
one with NODE_RANK 0 and LOCAL_RANK 0 (for launcher ray, the driver); anywhere else, such as
a Ray task on another node, the call does nothing. Optional: a program that never calls it
runs the same, without progress.
"""

from __future__ import annotations

import os

from kubeforge import contract

from .report import ProgressReporter

_reporter: ProgressReporter | None = None


def speaks_for_group(env: dict) -> bool:
    return env.get(contract.NODE_RANK, "0") == "0" and env.get("LOCAL_RANK", "0") == "0"


def report_progress(step: int, total_steps: int, loss: float | None = None, epoch: float | None = None) -> None:
    """Report `step` of `total_steps`; the last step is always sent, earlier ones as the throttle allows."""
    global _reporter
    env = dict(os.environ)
    if not speaks_for_group(env):
        return
    if _reporter is None:
        _reporter = ProgressReporter(env.get(contract.PROGRESS_FILE, ""), env)
    _reporter.report(contract.progress_record(step, total_steps, loss, epoch), final=step >= total_steps)
