"""Kill and restart one process of the local cluster (kube-apiserver, etcd), as an outage would.

kwokctl (binary runtime) has no per-component restart, so this reads the component's command
line, working directory and environment from /proc, SIGKILLs it, and starts the same command
again, appending to the same log and recording the new pid where kwokctl keeps it (so
`hack/cluster.sh down` still stops it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.waiting import wait_for

# A restarted component still running this long after its start counts as started.
EARLY_EXIT_S = 5.0


def workdir() -> Path:
    name = os.environ.get("KUBEFORGE_CLUSTER_NAME", "kubeforge")
    return Path(os.environ.get("KWOK_WORKDIR", Path.home() / ".kwok")) / "clusters" / name


def _pid(component: str) -> int:
    return int((workdir() / "pids" / f"{component}.pid").read_text().strip())


def kill(component: str) -> tuple[list[str], str, dict[str, str]]:
    """SIGKILL the component; returns what it takes to start it again (argv, cwd, env)."""
    pid = _pid(component)
    proc = Path(f"/proc/{pid}")
    argv = [a for a in (proc / "cmdline").read_bytes().decode().split("\0") if a]
    assert str(workdir()) in " ".join(argv) or component in argv[0], f"pid {pid} is not our {component}: {argv[:2]}"
    cwd = os.readlink(proc / "cwd")
    env = dict(line.split("=", 1) for line in (proc / "environ").read_bytes().decode().split("\0") if "=" in line)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not proc.exists() or "zombie" in (proc / "status").read_text().lower() or "(Z)" in (proc / "stat").read_text(),
             timeout=10, message=f"{component} gone")
    return argv, cwd, env


def start(component: str, argv: list[str], cwd: str, env: dict[str, str], attempts: int = 3) -> float:
    """Start it again; one that exits within its first seconds (a port not yet free, seen once in a loaded
    run: the API server never answered again) is started anew, and the third such exit fails with its log.
    Returns when the process that stayed up was started (monotonic)."""
    path = workdir() / "logs" / f"{component}.log"
    for attempt in range(1, attempts + 1):
        offset = path.stat().st_size if path.exists() else 0
        started = time.monotonic()
        with open(path, "ab") as log:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        (workdir() / "pids" / f"{component}.pid").write_text(str(proc.pid))
        try:
            code = proc.wait(timeout=EARLY_EXIT_S)
        except subprocess.TimeoutExpired:
            return started  # still running: started
        with open(path, "rb") as log:
            log.seek(offset)
            said = log.read().decode(errors="replace")[-3000:]
        print(f"{component} exited with {code} at start (attempt {attempt}):\n{said}")
    raise AssertionError(f"{component} exited {attempts} times within {EARLY_EXIT_S:g} s of its start; last words:\n{said}")


def outage(component: str, down_for: float = 0.0) -> float:
    """Kill `component`, keep it down `down_for` seconds, start it again; returns when it was started (monotonic)."""
    spec = kill(component)
    if down_for:
        time.sleep(down_for)  # the outage itself, not a synchronisation
    return start(component, *spec)
