"""kubeforge-serve benchmarks, side by side on one machine and one ONNX model (MiniLM-L6 classifier).

(a) server overhead: end-to-end p50 at concurrency 1 minus the raw model p50, as a fraction of model time
(b) throughput at concurrency 32, dynamic batching vs maxBatchSize 1, and the p95 ratio
(c) kubeforge-serve vs KServe's Python model server wrapping the same ONNX Runtime session, concurrency 32
(d) ONNX Runtime vs torch eager, in-process, batch 1 and batch 32

Prints the ratios, writes bench/results/serve_bench.{json,md} and serve_latency_throughput.png.
Usage: python bench/serve_bench.py [--seconds 5] [--kserve-python ~/.cache/kubeforge/venv-kserve/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from loadgen import run_load  # noqa: E402

from tests.waiting import wait_for  # noqa: E402
from tests.workload.serve_fixtures import ServerProcess, build_minilm_model, cached_model, free_port  # noqa: E402

RESULTS = REPO / "bench" / "results"
SENTENCES = [
    "I loved this film, the acting was superb.", "Worst meal I have had in years.",
    "The package arrived on time and works as described.", "I want my money back.",
    "An average book with a predictable ending.", "The support team solved my problem in five minutes!",
    "It broke after two days.", "Quiet neighbourhood, friendly staff, would stay again.",
    "The plot dragged in the middle but the ending made up for it.", "Terrible customer service.",
    "Five stars, would recommend to anyone looking for a reliable laptop.", "Meh.",
]
V1 = [{"instances": [s]} for s in SENTENCES]
V2 = [{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [s]}]} for s in SENTENCES]
SWEEP = (1, 4, 16, 32)


def p50_ms(fn, iterations: int) -> float:
    fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


def in_process(model_dir: Path, runtime: str, quantize: str, cache: Path):
    from kubeforge_workloads.serve.app import build_model
    from kubeforge_workloads.serve.config import load_config
    from kubeforge_workloads.serve.runtime import probe_platform

    model = build_model(load_config(["--model-dir", str(model_dir), "--runtime", runtime, "--quantize", quantize,
                                     "--engine-cache-dir", str(cache)], env={}), probe_platform())
    model.load(1)
    return model


def raw_model_figures(model_dir: Path, cache: Path, scale: float = 1.0) -> dict:
    """Raw model = what one request costs inside the server: tokenize, pad, run, softmax."""
    out = {}
    batch32 = [SENTENCES[i % len(SENTENCES)] for i in range(32)]
    for runtime, quantize in (("onnxruntime", "none"), ("torch", "none"), ("onnxruntime", "int8")):
        model = in_process(model_dir, runtime, quantize, cache)
        runtime += "_int8" if quantize == "int8" else ""
        cycle = iter(range(10**9))
        out[f"{runtime}_b1_p50_ms"] = p50_ms(lambda: model.infer(model.encode([SENTENCES[next(cycle) % 12]])),
                                             max(3, int(300 * scale)))
        out[f"{runtime}_b32_p50_ms"] = p50_ms(lambda: model.infer(model.encode(batch32)), max(1, int(15 * scale)))
        del model
    return out


def kubeforge_server(model_dir: Path, tmp: Path, *flags: str) -> ServerProcess:
    server = ServerProcess(model_dir, tmp / f"kubeforge-{len(flags)}-{time.time_ns()}.log",
                           ["--log-level", "warning", *flags])
    return server.start().wait_ready()


def kserve_server(python: str, model_dir: Path, tmp: Path) -> subprocess.Popen:
    import httpx

    port = free_port()
    log = open(tmp / "kserve.log", "wb")
    proc = subprocess.Popen([python, str(REPO / "bench" / "kserve_server.py"), str(model_dir / "onnx"), str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": ""})
    proc.port = port

    def ready():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/v1/models/model", timeout=2).status_code == 200
        except httpx.TransportError:
            return proc.poll() is not None and (_ for _ in ()).throw(AssertionError("kserve exited"))

    wait_for(ready, 120, "KServe model server", interval=0.1, max_interval=0.5)
    return proc


def interleaved(servers: dict[str, int], concurrencies, seconds: float, warmup: float = 1.0) -> dict[str, list[dict]]:
    """A load point per server in turn at each concurrency, so a noisy neighbour hits all configs alike."""
    points: dict[str, list[dict]] = {name: [] for name in servers}
    for c in concurrencies:
        for name, port in servers.items():
            points[name].append(run_load(port, "/v1/models/model:predict", V1, c, seconds, warmup).summary())
    return points


def median_point(points: list[dict]) -> dict:
    keys = ("throughput_rps", "p50_ms", "p95_ms")
    return {"concurrency": points[0]["concurrency"], "rounds": len(points),
            **{k: round(float(np.median([p[k] for p in points])), 2) for k in keys},
            "errors": sum(p["errors"] for p in points)}


class BlockingPoster:
    """Keep-alive POSTs over one socket with nothing between us and the server (http.client costs ~0.3 ms)."""

    def __init__(self, port: int):
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, path: str, body: bytes) -> int:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.sock.sendall(head + body)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.sock.recv(65536)
        header, _, rest = buf.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        return int(header.split()[1])


def overhead_blocks(model, port: int, rounds: int = 5, block: int = 100) -> dict:
    """Raw in-process p50 vs end-to-end p50 at concurrency 1, in alternating blocks of sequential calls.

    Blocks (not single pairs) keep each path in its steady state (alternating call by call leaves
    the server's caches cold after every raw call); alternating blocks still share the machine's noise.
    """
    client = BlockingPoster(port)
    bodies = [json.dumps(p).encode() for p in V2]
    raw, e2e = [], []
    for r in range(rounds + 1):
        for i in range(block):
            start = time.perf_counter()
            model.infer(model.encode([SENTENCES[i % len(SENTENCES)]]))
            if r:  # round 0 warms both paths up
                raw.append(time.perf_counter() - start)
        for i in range(block):
            start = time.perf_counter()
            status = client.post("/v2/models/model/infer", bodies[i % len(bodies)])
            if r and status == 200:
                e2e.append(time.perf_counter() - start)
    client.sock.close()
    return {"raw_p50_ms": round(float(np.median(raw)) * 1000, 3), "e2e_p50_ms": round(float(np.median(e2e)) * 1000, 3),
            "samples": len(raw), "rounds": rounds}


def at(points: list[dict], concurrency: int) -> dict:
    return next(p for p in points if p["concurrency"] == concurrency)


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        x = [p["throughput_rps"] for p in points]
        (line,) = ax.plot(x, [p["p50_ms"] for p in points], marker="o", label=f"{name} p50")
        ax.plot(x, [p["p95_ms"] for p in points], marker="x", linestyle="--", alpha=0.5, color=line.get_color(),
                label=f"{name} p95")
        for p in points:
            ax.annotate(f"c{p['concurrency']}", (p["throughput_rps"], p["p50_ms"]), fontsize=7)
    ax.set_xlabel("throughput (requests/s, one text each)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title("kubeforge-serve, MiniLM-L6 on ONNX Runtime CPU (2 shared cores)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0, help="measured seconds per load point")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds for the headline figures")
    ap.add_argument("--kserve-python", default=str(Path.home() / ".cache/kubeforge/venv-kserve/bin/python"))
    ap.add_argument("--tiny", action="store_true",
                    help="about a second of load, one round: proves the bench still runs (make test), measures nothing")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    args = ap.parse_args()
    tiny = Tiny() if args.tiny else None
    if tiny:
        args.seconds, args.rounds = tiny.seconds, 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = args.results_dir
    results.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))  # server logs, int8 cache: not results
    model_dir = cached_model("minilm-l6-seq-cls-v3", build_minilm_model)
    res: dict = {"model": "all-MiniLM-L6-v2 + 2-label head (ONNX, fp32)", "cpus": os.cpu_count(),
                 "loadavg_start": os.getloadavg()[0], "seconds_per_point": args.seconds, "rounds": args.rounds}
    res["raw"] = raw_model_figures(model_dir, tmp, tiny.scale if tiny else 1.0)
    started = [kubeforge_server(model_dir, tmp, "--max-batch-size", "32", "--max-delay-ms", "5"),
               kubeforge_server(model_dir, tmp, "--max-batch-size", "1")]
    servers = {"kubeforge_batching": started[0].port, "kubeforge_batch1": started[1].port}
    kserve = kserve_server(args.kserve_python, model_dir, tmp) if Path(args.kserve_python).exists() else None
    if kserve:
        servers["kserve"] = kserve.port
    warmup = tiny.warmup if tiny else 1.0
    try:
        res["overhead"] = overhead_blocks(in_process(model_dir, "onnxruntime", "none", tmp),
                                          servers["kubeforge_batching"], args.rounds, tiny.block if tiny else 100)
        res["curves"] = interleaved(servers, tiny.sweep if tiny else SWEEP, args.seconds, warmup)
        rounds = [interleaved(servers, (32,), args.seconds, warmup) for _ in range(args.rounds)]
        res["c32"] = {name: median_point([r[name][0] for r in rounds]) for name in servers}
    finally:
        for server in started:
            server.terminate()
        if kserve:
            kserve.terminate()
            kserve.wait(30)
    res["loadavg_end"] = os.getloadavg()[0]
    res["figures"] = figures(res)
    plot(res["curves"], results / "serve_latency_throughput.png")
    (results / "serve_bench.json").write_text(json.dumps(res, indent=1))
    report = render(res)
    (results / "serve_bench.md").write_text(report)
    print(report)
    return 0


class Tiny:
    """--tiny: every step of the bench on a sliver of load (for make test); its figures mean nothing."""

    seconds, warmup, scale, block, sweep = 0.15, 0.05, 0.02, 10, (1, 4)


def figures(res: dict) -> dict:
    raw, over, c32 = res["raw"], res["overhead"], res["c32"]
    b32, b1 = c32["kubeforge_batching"], c32["kubeforge_batch1"]
    f = {
        "a_overhead_fraction": (over["e2e_p50_ms"] - over["raw_p50_ms"]) / over["raw_p50_ms"],
        "b_throughput_ratio": b32["throughput_rps"] / b1["throughput_rps"],
        "b_p95_ratio": b32["p95_ms"] / b1["p95_ms"],
        # What the model alone allows: texts/s of one batch-32 call over texts/s of batch-1 calls.
        "b_model_cap": raw["onnxruntime_b1_p50_ms"] * 32 / raw["onnxruntime_b32_p50_ms"],
        "d_ort_vs_torch_b1": raw["torch_b1_p50_ms"] / raw["onnxruntime_b1_p50_ms"],
        "d_ort_vs_torch_b32": raw["torch_b32_p50_ms"] / raw["onnxruntime_b32_p50_ms"],
        "e_int8_vs_fp32_b1": raw["onnxruntime_b1_p50_ms"] / raw["onnxruntime_int8_b1_p50_ms"],
        "e_int8_vs_fp32_b32": raw["onnxruntime_b32_p50_ms"] / raw["onnxruntime_int8_b32_p50_ms"],
    }
    if "kserve" in c32:
        f["c_throughput_vs_kserve"] = b32["throughput_rps"] / c32["kserve"]["throughput_rps"]
        f["c_p95_vs_kserve"] = b32["p95_ms"] / c32["kserve"]["p95_ms"]
    return {k: round(v, 3) for k, v in f.items()}


def render(res: dict) -> str:
    f, raw, over = res["figures"], res["raw"], res["overhead"]
    lines = [
        "# kubeforge-serve bench", "",
        f"model: {res['model']}; {res['cpus']} CPUs; load average {res['loadavg_start']:.1f} -> "
        f"{res['loadavg_end']:.1f}; {res['seconds_per_point']} s per load point; headline figures are medians "
        f"of {res['rounds']} interleaved rounds", "",
        f"(a) overhead: e2e p50 {over['e2e_p50_ms']:.2f} ms vs raw model p50 {over['raw_p50_ms']:.2f} ms "
        f"-> {100 * f['a_overhead_fraction']:.1f} % of model time (goal <= 10 %)",
        f"(b) batching at c32: {f['b_throughput_ratio']:.2f}x throughput, p95 {f['b_p95_ratio']:.2f}x "
        "of maxBatchSize 1 (goal >= 3x at p95 <= 1.5x); the model alone caps it at "
        f"{f['b_model_cap']:.2f}x (32 x raw b1 p50 / raw b32 p50, in-process)",
    ]
    if "c_throughput_vs_kserve" in f:
        lines.append(f"(c) vs KServe at c32: {f['c_throughput_vs_kserve']:.2f}x throughput, "
                     f"p95 {f['c_p95_vs_kserve']:.2f}x of KServe's (goal >= 2x at <= 1x)")
    else:
        lines.append("(c) KServe venv not found: not measured")
    lines += [
        f"(d) ONNX Runtime vs torch eager: {f['d_ort_vs_torch_b1']:.2f}x at batch 1, "
        f"{f['d_ort_vs_torch_b32']:.2f}x at batch 32 (goal >= 1.8x)",
        f"(e) int8 vs fp32 ONNX Runtime (CPU): {f['e_int8_vs_fp32_b1']:.2f}x at batch 1, "
        f"{f['e_int8_vs_fp32_b32']:.2f}x at batch 32", "",
        "| config | c | rps | p50 ms | p95 ms | errors |", "|---|---|---|---|---|---|",
    ]
    for name, points in [*res["curves"].items(), *((f"{n} (median)", [p]) for n, p in res["c32"].items())]:
        for p in points:
            lines.append(f"| {name} | {p['concurrency']} | {p['throughput_rps']} | {p['p50_ms']} | "
                         f"{p['p95_ms']} | {p['errors']} |")
    lines += ["", f"raw model (in-process): {json.dumps({k: round(v, 2) for k, v in raw.items()})}",
              f"overhead: {over['rounds']} alternating blocks of 100 raw calls / 100 sequential HTTP requests",
              "PNG: bench/results/serve_latency_throughput.png", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
