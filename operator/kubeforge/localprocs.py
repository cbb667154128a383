"""Stopping local worker processes the way the kubelet stops a container: SIGTERM, a grace period, then SIGKILL.

Shared by `kubeforge run --local` (which stops node agents) and the trainer's node agent
(which stops its training processes); torch-free, like the rest of the kubeforge package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

DEFAULT_GRACE_S = 15.0


def stop_processes(procs: list[subprocess.Popen], grace_s: float = DEFAULT_GRACE_S, kill_group: bool = False) -> None:
    """SIGTERM to each live process, wait out one shared grace period (not slept), then SIGKILL the rest.

    kill_group: SIGKILL the process's whole session (it was started with start_new_session),
    so the grandchildren a node agent started die with it.
    """
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if kill_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()
