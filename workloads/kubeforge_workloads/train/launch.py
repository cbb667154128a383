"""The node agent: from the LaunchEnv, start this pod's local processes with the torch.distributed env, and supervise them.

launcher `deepspeed` and `command`: the agent starts NPROC_PER_NODE processes itself,
each with RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT (no SSH, no
pdsh: every pod starts its own). launcher `torchrun`: torch.distributed.run does it,
elastic (`--nnodes=min:max`, c10d rendezvous) when the job sets min/max nodes.
launcher `ray`: one Ray node per pod instead, the command as the driver (raynode.py).
If one local process fails, the agent stops the others and fails the pod, so the
operator restarts the whole group from the last checkpoint.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile

from kubeforge import contract
from kubeforge.contract import LaunchEnv, threads_per_process
from kubeforge.localhost import usable_cores
from kubeforge.localprocs import stop_processes

from .failures import EXIT_NOTE_DIR, noted_exit_code

log = logging.getLogger(__name__)
WORKER_MODULE = "kubeforge_workloads.train.worker"


def node_omp_threads(env: dict, local_procs: int) -> str:
    """OMP threads per local process: the operator's value, else this node's cores shared out (contract.threads_per_process)."""
    if env.get(contract.OMP_NUM_THREADS):
        return env[contract.OMP_NUM_THREADS]
    return str(threads_per_process(usable_cores(), local_procs))


def base_env(launch: LaunchEnv, env: dict, has_gpu: bool) -> dict:
    """The env every local process (or torchrun) inherits."""
    out = dict(env)
    out[contract.OMP_NUM_THREADS] = node_omp_threads(env, launch.nproc_per_node)
    out.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local path; never reach for the Hub
    out.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not has_gpu:
        out.setdefault("DS_ACCELERATOR", "cpu")  # DeepSpeed then uses gloo on its own
    return out


def process_env(launch: LaunchEnv, base: dict, local_rank: int) -> dict:
    """The torch.distributed env of local process `local_rank` on this node."""
    env = dict(base)
    env.update({
        "RANK": str(launch.node_rank * launch.nproc_per_node + local_rank),
        "LOCAL_RANK": str(local_rank),
        "WORLD_SIZE": str(launch.world_size),
        "LOCAL_WORLD_SIZE": str(launch.nproc_per_node),
        "GROUP_RANK": str(launch.node_rank),
        "MASTER_ADDR": launch.master_addr,
        "MASTER_PORT": str(launch.master_port),
    })
    return env


def target_command(user_command: list[str]) -> list[str]:
    """What each process runs: the user's command, or the built-in recipe worker."""
    return list(user_command) if user_command else [sys.executable, "-m", WORKER_MODULE]


def torchrun_command(launch: LaunchEnv, user_command: list[str]) -> list[str]:
    """torch.distributed.run for this node; elastic with a c10d rendezvous when min/max nodes are set."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={launch.nproc_per_node}"]
    if launch.min_nodes or launch.max_nodes:
        low, high = launch.min_nodes or launch.nnodes, launch.max_nodes or launch.nnodes
        cmd += [f"--nnodes={low}:{high}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={launch.master_addr}:{launch.master_port}",
                f"--rdzv-id={launch.job_name}-{launch.attempt}", "--max-restarts=0"]
    else:
        cmd += [f"--nnodes={launch.nnodes}", f"--node-rank={launch.node_rank}",
                f"--master-addr={launch.master_addr}", f"--master-port={launch.master_port}"]
    if user_command:
        return cmd + ["--no-python"] + list(user_command)
    return cmd + ["-m", WORKER_MODULE]


def has_gpu() -> bool:
    # Without importing torch in the agent: the device files exist where a GPU is mounted.
    visible = os.environ.get("NVIDIA_VISIBLE_DEVICES", "")
    return os.path.exists("/dev/nvidia0") or visible not in ("", "void", "none")


def run_node(launch: LaunchEnv, env: dict, user_command: list[str]) -> int:
    """Start this node's processes, wait for them, and return the exit code the pod should have."""
    if launch.launcher == "ray":
        from .raynode import run_ray_node

        return run_ray_node(launch, env, user_command)
    with tempfile.TemporaryDirectory(prefix="kubeforge-exit-") as notes:
        base = {**base_env(launch, env, has_gpu()), EXIT_NOTE_DIR: notes}
        if launch.launcher == "torchrun":
            procs = [subprocess.Popen(torchrun_command(launch, user_command), env=base)]
        else:
            target = target_command(user_command)
            procs = [subprocess.Popen(target, env=process_env(launch, base, r)) for r in range(launch.nproc_per_node)]
        log.info("node %s/%s: started %d process(es), launcher %s, attempt %s",
                 launch.node_rank, launch.nnodes, len(procs), launch.launcher, launch.attempt)
        _forward_stop_signals(procs)
        code = supervise(procs)
        # torchrun reports 1 for any failed worker; the workers' own verdict is in their notes.
        return (noted_exit_code(notes) or code) if code else 0


def supervise(procs: list[subprocess.Popen], poll_s: float = 0.2) -> int:
    """Wait for all processes; on the first failure stop the rest and return its exit code."""
    running = list(procs)
    while running:
        for proc in list(running):
            code = proc.poll()
            if code is None:
                continue
            running.remove(proc)
            if code != 0:
                log.error("process %s exited with %s; stopping the others", proc.pid, code)
                stop(running)
                return code if code > 0 else 128 - code
        if running:
            try:
                running[0].wait(timeout=poll_s)
            except subprocess.TimeoutExpired:
                pass
    return 0


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM, a grace period (waited on, not slept), then SIGKILL."""
    stop_processes(procs)


def _forward_stop_signals(procs: list[subprocess.Popen]) -> None:
    # The kubelet sends SIGTERM to the container's PID 1 (this agent) only.
    def handler(signum, _frame):
        stop(procs)
        sys.exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
