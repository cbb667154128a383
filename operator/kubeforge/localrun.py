"""`kubeforge run FILE --local`: a TrainingJob's workers as local processes on 127.0.0.1, with the env the operator injects.

The env comes from the operator's own builder (kubeforge.trainingjob.env.launch_env);
only what cannot hold on a laptop is replaced: the rendezvous address (127.0.0.1 and a
free port), each worker's rank (the Job controller's completion index in a cluster),
the volume paths (under a local work directory) and, so that N "nodes" do not
oversubscribe one machine, the OMP threads per process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

from kubeforge.api.trainingjob import KIND, TrainingJob
from kubeforge.contract import LaunchEnv
from kubeforge.localprocs import stop_processes
from kubeforge.trainingjob.env import launch_env
from kubeforge.trainingjob.pod import deepspeed_config_json

TRAINER_MODULE = "kubeforge_workloads.train.cli"
STOP_GRACE_S = 15.0


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
    threads = max(1, cores // procs)
    model_dir = Path(output).resolve() if output else workdir / "model"
    shared = dataclasses.replace(
        base,
        master_addr="127.0.0.1",
        master_port=port,
        omp_num_threads=min(base.omp_num_threads or threads, threads),
        deepspeed_config=str(workdir / "ds_config.json") if base.deepspeed_config else "",
        checkpoint_dir=str(workdir / "checkpoints") if base.checkpoint_dir else "",
        output_dir=str(model_dir) if base.output_dir or output else "",
        output_uri=f"file://{model_dir}" if base.output_dir or output else "",
        progress_file=str(workdir / "progress.jsonl"),
    )
    return [dataclasses.replace(shared, node_rank=rank, termination_log=str(workdir / f"termination-{rank}.json"))
            for rank in range(base.nnodes)]


def worker_command(job: TrainingJob) -> list[str]:
    """kubeforge-train with the pod's arguments (the user's command after --, as the pod builder passes it)."""
    spec = job.spec
    args = ["--", *spec.command, *(spec.args or [])] if spec.command else list(spec.args or [])
    return [sys.executable, "-m", TRAINER_MODULE, *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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


def start_workers(envs: list[LaunchEnv], command: list[str], workdir: Path) -> list[subprocess.Popen]:
    procs = []
    for launch in envs:
        env = {**os.environ, **launch.to_env(), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        log = open(workdir / f"node-{launch.node_rank}.log", "w")
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each node agent (as the kubelet does), a grace period, then SIGKILL its whole session."""
    stop_processes(procs, STOP_GRACE_S, kill_group=True)


class ProgressPrinter:
    """Prints rank 0's progress records as they arrive in the progress file."""

    def __init__(self, path: Path, out: TextIO, every_s: float = 2.0):
        self.path, self.out, self.every_s = path, out, every_s
        self.offset, self.last_print, self.last, self.printed = 0, float("-inf"), None, None

    def poll(self, force: bool = False) -> None:
        if self.path.exists():
            with open(self.path) as handle:
                handle.seek(self.offset)
                text = handle.read()
            complete = text[:text.rfind("\n") + 1]  # a line still being written waits for the next poll
            self.offset += len(complete.encode())
            records = [json.loads(line) for line in complete.splitlines() if line.strip()]
            self.last = records[-1] if records else self.last
        fresh = self.last is not None and self.last is not self.printed
        if fresh and (force or time.monotonic() - self.last_print >= self.every_s):
            self.last_print, self.printed = time.monotonic(), self.last
            loss = f"  loss {self.last['loss']:.4f}" if "loss" in self.last else ""
            print(f"  step {self.last['step']}/{self.last['totalSteps']}{loss}", file=self.out, flush=True)


def wait_for_workers(procs: list[subprocess.Popen], printer: ProgressPrinter, poll_s: float = 0.5) -> int:
    """Wait for every node; the first failure stops the others (the operator restarts groups, never one node)."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            stop_workers(procs)
            return failed[0][1]
        if all(c == 0 for c in codes):
            printer.poll(force=True)
            return 0
        printer.poll()
        try:
            procs[codes.index(None)].wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            pass


def run_local(path: str, over: Overrides, workdir: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Train the TrainingJob in `path` on this machine; prints progress, metrics and where the model went."""
    job = apply_overrides(load_trainingjob(path), over, has_gpu=os.path.exists("/dev/nvidia0"))
    workdir = (workdir or Path("kubeforge-local") / job.name).resolve()
    prepare_workdir(job, workdir, over.resume)
    envs = local_launch_envs(job, workdir, free_port(), local_cores(), over.output)
    first = envs[0]
    print(f"kubeforge: running TrainingJob {job.name} locally: {first.nnodes} node(s) x {first.nproc_per_node} "
          f"process(es), launcher {first.launcher}, {first.omp_num_threads} thread(s) each; logs in {workdir}",
          file=out, flush=True)
    procs = start_workers(envs, worker_command(job), workdir)
    try:
        code = wait_for_workers(procs, ProgressPrinter(workdir / "progress.jsonl", out))
    except KeyboardInterrupt:
        stop_workers(procs)
        return 130
    print_result(workdir, code, out)
    return code


def print_result(workdir: Path, code: int, out: TextIO) -> None:
    summary_path = workdir / "termination-0.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if code != 0:
        print(f"kubeforge: training failed (exit code {code}): {summary.get('error', 'see the logs')}", file=out)
        for log in sorted(workdir.glob("node-*.log")):
            print(f"--- last lines of {log} ---\n" + "\n".join(log.read_text().splitlines()[-15:]), file=out)
        return
    metrics = summary.get("metrics", {})
    print(f"kubeforge: done in {summary.get('durationSeconds', 0):.0f} s, {summary.get('steps')} steps "
          f"(resumed from step {summary.get('resumedFromStep', 0)}), {summary.get('samplesPerSecond', 0):.1f} samples/s", file=out)
    if metrics:
        print(f"  eval accuracy {metrics.get('accuracy', 0):.4f}  macro F1 {metrics.get('f1', 0):.4f}"
              f"  ({metrics.get('evalSamples', '?')} samples)", file=out)
    model_uri = summary.get("modelUri")
    if model_uri:
        model_dir = model_uri.removeprefix("file://")
        print(f"  model: {model_uri}\n    Hugging Face: {model_dir}/hf\n    ONNX:         {model_dir}/onnx/model.onnx", file=out)
    out.flush()
