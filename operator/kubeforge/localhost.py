"""What this machine offers processes started locally: a free TCP port on 127.0.0.1, the CPU cores this process may use.

Shared by `kubeforge run --local`, the trainer's node agent and the tests that start
real servers or workers.
"""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's cpuset), not the host's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
