"""One training process of the built-in recipe: join the process group, train, and (rank 0) export and summarise.

Started by the node agent (launcher deepspeed) or by torchrun; either way the
torch.distributed env (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) is set.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from kubeforge import storage
from kubeforge.contract import LaunchEnv

from .failures import exit_code_for, leave_note

log = logging.getLogger("kubeforge.train")
# Long enough for rank 0's checkpoint writes, short enough that a lost peer fails the pod
# (and the operator restarts the group) instead of hanging until activeDeadlineSeconds.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=10)
PR_SET_PDEATHSIG = 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kubeforge-train worker")
    # DeepSpeed's own launcher passes --local_rank; accept it, the env is the truth.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None)
    return parser.parse_known_args(argv)[0]


def init_process_group():
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # before DeepSpeed is first imported
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend=backend, timeout=PROCESS_GROUP_TIMEOUT)
    return device


def die_with_parent() -> None:
    """Linux: get SIGKILL when the agent (or torchrun) dies, instead of training on as an orphan."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return


def main(argv: list[str] | None = None) -> int:
    parse_args(sys.argv[1:] if argv is None else argv)
    die_with_parent()
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s rank{rank} %(levelname)s %(name)s: %(message)s")
    launch = LaunchEnv.from_env(dict(os.environ))
    started = time.monotonic()
    try:
        summary = train_and_export(launch, dict(os.environ))
    except Exception as exc:
        code = exit_code_for(exc)
        log.exception("training failed (exit code %d%s)", code, ", a peer was lost" if code != 1 else "")
        leave_note(code)
        if speaks_for_group(launch):
            from .report import write_termination_message

            write_termination_message(launch.termination_log, {"error": f"{type(exc).__name__}: {exc}"[:3000]})
        return code
    if summary is not None:
        from .report import write_termination_message

        summary["durationSeconds"] = round(time.monotonic() - started, 3)
        write_termination_message(launch.termination_log, summary)
        log.info("summary: %s", summary)
    return 0


def speaks_for_group(launch: LaunchEnv) -> bool:
    """The process whose progress and summary the operator reads: local rank 0 of the pod with index 0.

    That is global rank 0 with a static rendezvous; an elastic one may put global rank 0
    on another pod, but the operator reads the pod with completion index 0.
    """
    return launch.node_rank == 0 and int(os.environ.get("LOCAL_RANK", "0")) == 0


def train_and_export(launch: LaunchEnv, env: dict) -> dict | None:
    """Train on every rank; global rank 0 writes the model; the speaker returns the summary, the others None."""
    import torch.distributed as dist

    from .loop import build_run, timed_training
    from .recipe import parse_recipe

    device = init_process_group()
    try:
        run = build_run(launch, parse_recipe(launch.recipe), device, env, reports=speaks_for_group(launch))
        numbers = timed_training(run)  # every rank holds the same metrics and step counts
        weights = run.engine.full_state_dict()  # collective under ZeRO-3, so before the group goes
    finally:
        dist.destroy_process_group()
    digest = write_model(run, weights, launch) if weights is not None else None
    if not speaks_for_group(launch):
        return None
    summary = {"metrics": run.metrics, "modelUri": launch.output_uri or launch.output_dir, **numbers}
    if digest:
        summary["modelDigest"] = digest  # the files manifest's sha256: what a ModelEndpoint insists on serving
    return summary


def write_model(run, weights: dict, launch: LaunchEnv) -> str | None:
    """Export on global rank 0; for an s3:// output.uri upload it with its files manifest and return that manifest's digest."""
    from transformers import AutoModelForSequenceClassification

    from .export import export_model
    from .recipe import resolve_model_path

    if not launch.output_dir:
        log.warning("no output directory (KUBEFORGE_OUTPUT_DIR) set: the model is not exported")
        return None
    remote = storage.is_object_uri(launch.output_uri)
    if remote:
        shutil.rmtree(launch.output_dir, ignore_errors=True)  # the staging copy holds this export only
    # A fresh copy: under ZeRO-3 the engine's module holds only this rank's partition.
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_path(run.recipe.model), num_labels=len(run.train_set.label_names))
    model.load_state_dict(weights)
    manifest = export_model(model, run.tokenizer, Path(launch.output_dir), run.train_set.label_names,
                            run.recipe.max_seq_length, extra={"metrics": run.metrics, "steps": run.step})
    log.info("model written to %s (ONNX max |diff| vs torch %s)", launch.output_dir, manifest["onnxMaxAbsDiff"])
    if not remote:
        return None
    from kubeforge import servecontract

    from .. import objectstore

    name, prefix = objectstore.split_uri(launch.output_uri)
    started = time.monotonic()
    digest = objectstore.commit_tree(objectstore.open_bucket(name), Path(launch.output_dir), prefix,
                                     servecontract.MODEL_FILES_MANIFEST)
    log.info("model uploaded to %s in %.1f s (%s)", launch.output_uri, time.monotonic() - started, digest)
    return digest


if __name__ == "__main__":
    sys.exit(main())
