"""Local worker processes as the kubelet treats a container: stopped with SIGTERM, a grace period, then SIGKILL; exit codes as it reports them.

Shared by `kubeforge run --local` (which stops node agents) and the trainer's node agent
(which stops its training processes); torch-free, like the rest of the kubeforge package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

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


def container_exit_code(returncode: int | None) -> int:
    """A Popen return code as a container's exit code: killed by signal N is 128+N (None, still running: 0)."""
    if returncode is None:
        return 0
    return 128 - returncode if returncode < 0 else returncode


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (children first found, grandchildren after); Linux only."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found
