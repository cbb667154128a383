"""A Ray driver that keeps its two nodes busy and reports progress: on attempt 1 until it is stopped, on a rerun 3 steps."""

import os
import time
from pathlib import Path

import ray

from kubeforge_workloads.train.progress import report_progress

attempt = os.environ["KUBEFORGE_ATTEMPT"]
ray.init()
(Path(os.environ["RESULT_DIR"]) / f"attempt-{attempt}.started").write_text(str(os.getpid()))


@ray.remote(num_cpus=1)
def tick(i):
    time.sleep(0.5)
    return i


steps = 600 if attempt == "1" else 3
for step in range(1, steps + 1):
    ray.get([tick.remote(i) for i in range(2)])
    report_progress(step, steps)
print(f"driver finished attempt {attempt} after {steps} steps")
