"""The built-in text-classification recipe's training loop: resume, train, checkpoint, evaluate, export, summarise."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from kubeforge import contract, storage
from kubeforge.contract import LaunchEnv

from .. import objectstore
from . import checkpoint
from .checkpoint_store import CheckpointStore, merge_shard_lists
from .data import Examples, epoch_batches, load_examples, train_eval_split
from .evaluate import evaluate
from .recipe import Recipe, resolve_model_path
from .report import ProgressReporter

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One attempt's moving parts; rank 0 is the one that reports and exports."""

    launch: LaunchEnv
    recipe: Recipe
    device: torch.device
    engine: object
    tokenizer: object
    train_set: Examples
    eval_set: Examples
    steps_per_epoch: int
    total_steps: int
    reporter: ProgressReporter | None
    step: int = 0
    resumed_from: int = 0
    metrics: dict = field(default_factory=dict)
    evaluated_at: int = -1
    saved_at: int = -1
    checkpoint_store: CheckpointStore | None = None  # set when checkpoint_dir is an s3:// URI

    @property
    def rank(self) -> int:
        return dist.get_rank()

    @property
    def world(self) -> int:
        return dist.get_world_size()

    def tokenize(self, texts: list[str], labels: list[int], device: torch.device) -> dict:
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.recipe.max_seq_length, return_tensors="pt")
        batch = {k: v.to(device) for k, v in encoded.items()}
        batch["labels"] = torch.tensor(labels, device=device)
        return batch


def train_epochs(run: Run) -> None:
    """Train from `run.step` to the last step, checkpointing and evaluating on the way."""
    every = run.launch.checkpoint_every_steps or 0
    while run.step < run.total_steps:
        epoch, offset = divmod(run.step, run.steps_per_epoch)
        batches = epoch_batches(len(run.train_set.texts), run.recipe.batch_size, run.rank, run.world, run.recipe.seed, epoch)
        for rows in batches[offset:]:
            loss = run.engine.train_step(run.tokenize([run.train_set.texts[i] for i in rows], [run.train_set.labels[i] for i in rows], run.device))
            run.step += 1
            report_progress(run, mean_over_ranks(loss))
            if every and run.step % every == 0:
                save_checkpoint(run)
            if run.step >= run.total_steps:
                break
        if run.step % run.steps_per_epoch == 0:
            run_eval(run, f"epoch {run.step // run.steps_per_epoch}")


def mean_over_ranks(loss: torch.Tensor) -> float:
    value = loss.detach().float().reshape(1).clone()
    dist.all_reduce(value)
    return float(value.item()) / dist.get_world_size()


def report_progress(run: Run, loss: float) -> None:
    if run.reporter is None:
        return
    epoch = run.step / run.steps_per_epoch
    record = contract.progress_record(run.step, run.total_steps, loss, epoch)
    if run.saved_at > 0:
        record["checkpoint"] = checkpoint.final_name(run.saved_at)  # the operator shows it as status.lastCheckpoint
    run.reporter.report(record, final=run.step == run.total_steps)
    if run.step == 1 or run.step % 10 == 0 or run.step == run.total_steps:
        log.info("step %d/%d loss %.4f", run.step, run.total_steps, loss)


def run_eval(run: Run, label: str) -> None:
    run.metrics = evaluate(run.engine.module, run.tokenize, run.eval_set, run.device, max(32, run.recipe.batch_size))
    run.evaluated_at = run.step
    if run.rank == 0:
        log.info("eval (%s, step %d): %s", label, run.step, run.metrics)


def save_checkpoint(run: Run) -> None:
    if not run.launch.checkpoint_dir or run.saved_at == run.step:
        return
    if run.checkpoint_store is not None:
        save_to_store(run, run.checkpoint_store)
    else:
        save_to_volume(run)
    run.saved_at = run.step


def save_to_volume(run: Run) -> None:
    """All ranks write into a temp directory; rank 0 seals and publishes it (needs a shared volume across nodes)."""
    root = Path(run.launch.checkpoint_dir)
    if run.rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        checkpoint.prune(root)  # also clears a temp directory a crashed attempt left behind
    dist.barrier()
    run.engine.save(root, checkpoint.temp_name(run.step))
    dist.barrier()
    if run.rank == 0:
        checkpoint.write_manifest(root / checkpoint.temp_name(run.step), checkpoint_state(run))
        checkpoint.publish(root, run.step)
        checkpoint.prune(root)
        log.info("checkpoint saved at step %d", run.step)
    dist.barrier()


def save_to_store(run: Run, store: CheckpointStore) -> None:
    """Every node stages its ranks' shards locally and uploads them; rank 0 commits the manifest once all succeeded."""
    tag, scratch = checkpoint.final_name(run.step), node_scratch(run) / "save"
    if run.rank == 0:
        store.prune()  # also drops the uploads a crashed attempt never committed
    if local_rank() == 0:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
    dist.barrier()
    run.engine.save(scratch, tag)
    dist.barrier()
    uploaded: dict = {}
    if local_rank() == 0:
        try:
            uploaded = store.upload_shards(scratch / tag, tag)
        except objectstore.ObjectStoreError as exc:
            uploaded = {"error": {"reason": exc.reason, "uri": exc.uri, "detail": exc.detail}}
    per_node: list = [None] * run.world
    dist.all_gather_object(per_node, uploaded)
    errors = [files["error"] for files in per_node if files and isinstance(files.get("error"), dict)]
    if errors:  # no manifest: this step never counts, the previous checkpoint stays the newest; every rank stops alike
        raise objectstore.ObjectStoreError(errors[0]["reason"], errors[0]["uri"],
                                           f"checkpoint {store.uri(tag)} not committed: {errors[0]['detail']}")
    if run.rank == 0:
        digest = store.commit(tag, checkpoint_state(run), merge_shard_lists(per_node))
        store.prune()
        log.info("checkpoint saved at step %d to %s (%s)", run.step, store.uri(tag), digest)
    dist.barrier()
    if local_rank() == 0:
        shutil.rmtree(scratch, ignore_errors=True)


def checkpoint_state(run: Run) -> dict:
    return {"step": run.step, "epoch": run.step // run.steps_per_epoch, "batchInEpoch": run.step % run.steps_per_epoch,
            "worldSize": run.world, "attempt": run.launch.attempt}


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def node_scratch(run: Run) -> Path:
    """This node's staging directory (an emptyDir in pods; per node, so local "nodes" never share one)."""
    root = Path(run.launch.staging_dir or Path(tempfile.gettempdir()) / "kubeforge-staging")
    return root / f"{run.launch.job_name}-node-{run.launch.node_rank}"


def resume(run: Run) -> None:
    """Continue from the newest complete checkpoint (every rank reads the same one), if there is one."""
    if run.checkpoint_store is not None:
        resume_from_store(run, run.checkpoint_store)
        return
    found = None
    if run.rank == 0 and run.launch.checkpoint_dir:
        found = checkpoint.newest_complete(Path(run.launch.checkpoint_dir))
    choice = [(found[0].name, found[1]) if found else None]
    dist.broadcast_object_list(choice, src=0)  # rank 0 decides, so ranks never load different steps
    if choice[0] is None:
        return
    name, state = choice[0]
    directory = Path(run.launch.checkpoint_dir) / name
    run.engine.load(directory.parent, directory.name)
    run.step = run.resumed_from = run.saved_at = int(state["step"])
    log.info("resumed from %s (step %d of %d)", directory, run.step, run.total_steps)


def resume_from_store(run: Run, store: CheckpointStore) -> None:
    """Rank 0 lists the complete checkpoints; each node downloads the newest (verified), else the next one."""
    box = [store.complete() if run.rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    target = node_scratch(run) / "resume"
    for tag, manifest in box[0] or []:
        ok = 1
        if local_rank() == 0:
            shutil.rmtree(target, ignore_errors=True)
            try:
                store.download(tag, manifest, target)
            except objectstore.ObjectStoreError as exc:
                if exc.reason not in (objectstore.DIGEST_MISMATCH, objectstore.MISSING_OBJECT):
                    raise  # the store is unreachable or refuses us: starting over would lose the progress
                log.warning("ignoring checkpoint %s: %s", store.uri(tag), exc)
                ok = 0
        verdict = torch.tensor([ok])
        dist.all_reduce(verdict, op=dist.ReduceOp.MIN)  # every node got it, or all try the next one
        if verdict.item():
            run.engine.load(target, tag)
            run.step = run.resumed_from = run.saved_at = int(manifest["state"]["step"])
            log.info("resumed from %s (step %d of %d)", store.uri(tag), run.step, run.total_steps)
            dist.barrier()
            if local_rank() == 0:
                shutil.rmtree(target, ignore_errors=True)
            return


def build_run(launch: LaunchEnv, recipe: Recipe, device: torch.device, env: dict, reports: bool) -> Run:
    """Data, model, optimizer and engine for this attempt."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(recipe.seed)
    train_set, eval_set = train_eval_split(load_examples(recipe.dataset), recipe.dataset.eval_fraction, recipe.seed)
    world = dist.get_world_size()
    steps_per_epoch = len(train_set.texts) // world // recipe.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_set.texts)} training rows are too few for batch size {recipe.batch_size} x {world} processes")
    total = recipe.max_steps or recipe.epochs * steps_per_epoch
    path = resolve_model_path(recipe.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(train_set.label_names)).to(device)
    # The fused kernel (CPU and CUDA): one vectorised pass instead of a dozen tensor ops per step.
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, total // 10), total)
    engine = make_engine(launch, recipe, model, optimizer, scheduler, device)
    reporter = ProgressReporter(launch.progress_file, env) if reports else None
    store = CheckpointStore.from_uri(launch.checkpoint_dir) if storage.is_object_uri(launch.checkpoint_dir) else None
    return Run(launch, recipe, device, engine, tokenizer, train_set, eval_set, steps_per_epoch, total, reporter,
               checkpoint_store=store)


def use_bf16(recipe: Recipe, device: torch.device) -> bool:
    if recipe.bf16 is not None:
        return bool(recipe.bf16)
    # Auto: GPUs that have it; on CPUs bf16 training is slower unless the core has AMX.
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def make_engine(launch: LaunchEnv, recipe: Recipe, model, optimizer, scheduler, device: torch.device):
    from .engines import DDPEngine, DeepSpeedEngine, deepspeed_config, load_deepspeed_config

    bf16 = use_bf16(recipe, device)
    if launch.launcher == "deepspeed":
        config = deepspeed_config(load_deepspeed_config(launch.deepspeed_config), recipe.batch_size, launch.zero_stage, bf16)
        return DeepSpeedEngine(model, optimizer, scheduler, config)
    return DDPEngine(model, optimizer, scheduler, device, bf16)


def timed_training(run: Run) -> dict:
    """Resume, train, final checkpoint and eval; returns the numbers the summary reports."""
    resume(run)
    started, first_step = time.monotonic(), run.step
    train_epochs(run)
    seconds = time.monotonic() - started
    save_checkpoint(run)
    if run.evaluated_at != run.step:
        run_eval(run, "final")
    samples = (run.step - first_step) * run.recipe.batch_size * run.world
    return {"steps": run.step, "resumedFromStep": run.resumed_from, "samplesPerSecond": round(samples / max(seconds, 1e-9), 3),
            "trainSeconds": round(seconds, 3)}
