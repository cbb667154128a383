"""`kubeforge run FILE --local`: a TrainingJob's workers as local processes on 127.0.0.1, with the env the operator injects.

The env comes from the operator's own builder (kubeforge.trainingjob.env.launch_env);
only what cannot hold on a laptop is replaced: the rendezvous address (127.0.0.1 and a
free port; for launcher ray the loopback address LOCAL_RAY_ADDRESS and free Ray ports),
each worker's rank (the Job controller's completion index in a cluster), the volume
paths (under a local work directory) and, so that N "nodes" do not oversubscribe one
machine, the OMP threads (and Ray CPUs) per process. s3:// checkpoints and outputs
stay where the job says: the workers reach the store with spec.storage's settings, unless
this shell sets its own (AWS_ENDPOINT_URL, ...), and with the shell's access keys.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

from kubeforge import podspec, storage
from kubeforge.api.trainingjob import KIND, TrainingJob
from kubeforge.contract import LaunchEnv, threads_per_process
from kubeforge.localhost import free_port, usable_cores
from kubeforge.localprocs import container_exit_code, stop_processes
from kubeforge.localreport import NodeResults, ProgressPrinter, print_result
from kubeforge.trainingjob.env import launch_env
from kubeforge.trainingjob.pod import deepspeed_config_json, trainer_args

TRAINER_MODULE = "kubeforge_workloads.train.cli"
# Ray rewrites 127.0.0.1 and localhost to this machine's interface address (resolve_ip_for_localhost in
# `ray start` and ray.init), which a local run must never dial; another loopback address it leaves alone.
LOCAL_RAY_ADDRESS = "127.0.0.2"
LOCAL_OBJECT_STORE = 256 * 2**20  # a laptop run of a 512Gi job must not ask for a 150 GiB object store


@dataclass(frozen=True)
class Overrides:
    """What the command line changes in the job for a local run (None: keep the job's value)."""

    nodes: int | None = None
    procs_per_node: int | None = None
    max_steps: int | None = None
    epochs: int | None = None
    output: str | None = None
    resume: bool = False  # keep the work directory's checkpoints and continue from them


def load_trainingjob(path: str) -> TrainingJob:
    """The first TrainingJob in a (possibly multi-document) YAML file, parsed by the API model."""
    with open(path) as handle:
        for doc in yaml.safe_load_all(handle):
            if isinstance(doc, dict) and doc.get("kind") == KIND:
                return TrainingJob.from_manifest(doc)
    raise ValueError(f"{path}: no document of kind {KIND}")


def apply_overrides(job: TrainingJob, over: Overrides, has_gpu: bool = False) -> TrainingJob:
    spec = job.spec
    procs = over.procs_per_node or (None if has_gpu or spec.procs_per_node else 1)
    # Without a GPU here, one process per node: the job's "one per GPU" default would start
    # gpus x nodes CPU processes on one machine.
    changes = {k: v for k, v in {"nodes": over.nodes, "procs_per_node": procs}.items() if v is not None}
    if spec.recipe is not None:
        recipe = {k: v for k, v in {"max_steps": over.max_steps, "epochs": over.epochs}.items() if v is not None}
        changes["recipe"] = spec.recipe.model_copy(update=recipe)
    if spec.elastic is not None and "nodes" in changes:
        changes["elastic"] = None  # a local run is a fixed group of the size asked for
    return job.model_copy(update={"spec": spec.model_copy(update=changes)})


def local_launch_envs(job: TrainingJob, workdir: Path, port: int, cores: int, output: str | None = None,
                      attempt: int = 1) -> list[LaunchEnv]:
    """One LaunchEnv per worker: the operator's, with local addresses, paths and thread counts."""
    base = launch_env(job, attempt)
    procs = base.nnodes * base.nproc_per_node
    threads = threads_per_process(cores, procs)
    model_dir = Path(output).resolve() if output else workdir / "model"
    remote_output = not output and storage.is_object_uri(base.output_uri)
    shared = dataclasses.replace(
        base,
        master_addr="127.0.0.1",
        master_port=port,
        omp_num_threads=min(base.omp_num_threads or threads, threads),
        deepspeed_config=str(workdir / "ds_config.json") if base.deepspeed_config else "",
        checkpoint_dir=local_checkpoint_dir(base.checkpoint_dir, workdir),
        output_dir=str(model_dir) if base.output_dir or output else "",
        output_uri=base.output_uri if remote_output else f"file://{model_dir}" if base.output_dir or output else "",
        staging_dir=str(workdir / "staging") if base.staging_dir else "",
        progress_file=str(workdir / "progress.jsonl"),
    )
    envs = [dataclasses.replace(shared, node_rank=rank, termination_log=str(workdir / f"termination-{rank}.json"))
            for rank in range(base.nnodes)]
    return local_ray_envs(job, envs, cores) if base.ray else envs


def local_ray_envs(job: TrainingJob, envs: list[LaunchEnv], cores: int) -> list[LaunchEnv]:
    """launcher ray on one machine: every node on LOCAL_RAY_ADDRESS with free ports of its own, the cores shared
    out, and a small object store unless the job sets one."""
    base = envs[0].ray
    explicit = job.spec.ray is not None and job.spec.ray.object_store_memory is not None
    shared = dataclasses.replace(
        base, port=free_port(), client_port=free_port(),
        dashboard_port=free_port() if base.dashboard_port else None,
        num_cpus=min(base.num_cpus or cores, max(1, cores // len(envs))),
        object_store_memory=base.object_store_memory if explicit else min(base.object_store_memory or LOCAL_OBJECT_STORE,
                                                                          LOCAL_OBJECT_STORE))
    return [dataclasses.replace(env, master_addr=LOCAL_RAY_ADDRESS, pod_ip=LOCAL_RAY_ADDRESS,
                                ray=dataclasses.replace(shared, node_manager_port=free_port())) for env in envs]


def describe(first: LaunchEnv) -> str:
    """What the run starts, in words, for its first line."""
    if first.ray:
        store = f", {first.ray.object_store_memory // 2**20} MiB object store" if first.ray.object_store_memory else ""
        return (f"{first.nnodes} Ray node(s) on {first.pod_ip} (rank 0 the head, its log node-0.log has the driver's "
                f"output), {first.ray.num_cpus} CPU(s){store} each")
    return (f"{first.nnodes} node(s) x {first.nproc_per_node} process(es), launcher {first.launcher}, "
            f"{first.omp_num_threads} thread(s) each")


def local_checkpoint_dir(checkpoint_dir: str, workdir: Path) -> str:
    """An s3:// checkpoint stays in the store (a resumed local run finds it there); a volume becomes a local directory."""
    if not checkpoint_dir or storage.is_object_uri(checkpoint_dir):
        return checkpoint_dir
    return str(workdir / "checkpoints")


def storage_env(job: TrainingJob) -> dict[str, str]:
    """spec.storage's endpoint, region and TLS settings; the keys come from this shell, never from the cluster's Secret."""
    return {e["name"]: e["value"] for e in podspec.object_storage_env(job.spec.storage) if "value" in e}


def worker_command(job: TrainingJob) -> list[str]:
    """kubeforge-train with the pod's arguments (the user's command after --, as the pod builder passes it)."""
    return [sys.executable, "-m", TRAINER_MODULE, *trainer_args(job.spec)]


def prepare_workdir(job: TrainingJob, workdir: Path, resume: bool = False) -> None:
    """Fresh progress and summaries; checkpoints only with `resume` (a rerun is a new job, a resumed one a restarted group)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in [workdir / "progress.jsonl", *workdir.glob("termination-*.json")]:
        stale.unlink(missing_ok=True)
    if not resume:
        shutil.rmtree(workdir / "checkpoints", ignore_errors=True)
    config = deepspeed_config_json(job)
    if config is not None:
        (workdir / "ds_config.json").write_text(config)


def user_env(job: TrainingJob) -> dict[str, str]:
    """spec.env's literal values (valueFrom needs a pod: left out, as a laptop has no Secrets or downward API)."""
    return {e["name"]: str(e["value"]) for e in job.spec.env if "name" in e and "value" in e}


def start_workers(envs: list[LaunchEnv], command: list[str], workdir: Path, extra: dict[str, str] | None = None,
                  defaults: dict[str, str] | None = None) -> list[subprocess.Popen]:
    """One node agent per env; `extra` (the job's own env) under the contract's, whose local values make the run work.

    `defaults` (spec.storage's settings) sit under this shell's env: its own AWS_* win, as with any AWS tool run here.
    """
    procs = []
    for launch in envs:
        env = {**(defaults or {}), **os.environ, **(extra or {}), **launch.to_env(),
               "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        log = open(workdir / f"node-{launch.node_rank}.log", "w")
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each node agent (as the kubelet does), a grace period, then SIGKILL its whole session."""
    stop_processes(procs, kill_group=True)


def wait_for_workers(procs: list[subprocess.Popen], printer: ProgressPrinter, poll_s: float = 0.5) -> NodeResults:
    """Wait for every node; the first failure stops the others (the operator restarts groups, never one node)."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [rank for rank, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            stop_workers(procs)
            return NodeResults([container_exit_code(p.returncode) for p in procs], first_failed=failed[0])
        if all(c == 0 for c in codes):
            printer.poll(force=True)
            return NodeResults([0] * len(procs))
        printer.poll()
        try:
            procs[codes.index(None)].wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            pass


def run_local(path: str, over: Overrides, workdir: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Run the TrainingJob in `path` on this machine; prints progress, then the result (see kubeforge.localreport)."""
    job = apply_overrides(load_trainingjob(path), over, has_gpu=os.path.exists("/dev/nvidia0"))
    workdir = (workdir or Path("kubeforge-local") / job.name).resolve()
    prepare_workdir(job, workdir, over.resume)
    envs = local_launch_envs(job, workdir, free_port(), usable_cores(), over.output)
    print(f"kubeforge: running TrainingJob {job.name} locally: {describe(envs[0])}; logs in {workdir}", file=out, flush=True)
    started = time.monotonic()
    procs = start_workers(envs, worker_command(job), workdir, user_env(job), storage_env(job))
    try:
        results = wait_for_workers(procs, ProgressPrinter(workdir / "progress.jsonl", out))
    except KeyboardInterrupt:
        stop_workers(procs)
        return 130
    print_result(workdir, results, time.monotonic() - started, out)
    return results.code
