"""kubeforge-serve against the servers people pick, side by side in one run, one ONNX model (MiniLM-L6 classifier).

Servers, all started here, all answering {"instances": [text]} with the same model and ONNX Runtime options:
  kubeforge         kubeforge-serve, dynamic batching (maxBatchSize 32, maxDelayMs 5), HTTP; the same
                    process also serves gRPC (kubeforge_grpc: Open Inference Protocol v2 ModelInfer)
  kubeforge_batch1  kubeforge-serve with maxBatchSize 1 (what batching buys)
  kserve            KServe's Python model server (no batching of its own)
  ray               Ray Serve, @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
  bentoml           BentoML, adaptive batching (max_batch_size=32)
Peers run in venvs of their own that bench/servers.py makes; a peer that cannot run stops the bench.

Beside them, model_alone: the same model in this process at batch min(concurrency, 32), back to back (texts/s),
in the same interleaved turns: the ceiling for the batching efficiency, measured under the same load.

Measured: cold start (process start to the first answer, no load running) and idle RSS per server;
then all running: throughput and p50/p95/p99 at concurrency 1, 4, 16, 32, 64 (load points interleaved
across servers, so a noisy neighbour hits all alike), headline medians of --rounds rounds at c1 and
c32 with peak RSS under c32; the overhead at c1 against the server's own model-call time (its
kubeforge_model_call_seconds histogram) with a per-stage breakdown; in-process model figures.
Writes bench/results/serve_bench.{json,md} and serve_latency_throughput.png (see serve_report.py).

    python bench/serve_bench.py [--seconds 2] [--rounds 5]
    python bench/serve_bench.py --tiny --results-dir DIR     # seconds of everything (make test)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "workloads"), str(REPO / "operator")]

import serve_report  # noqa: E402
from loadgen import LoadResult, run_grpc_load, run_load  # noqa: E402
from servers import PEERS, PeakRss, Server, kubeforge_launch, peer_launch  # noqa: E402

from tests.workload.serve_fixtures import build_minilm_model, cached_model  # noqa: E402

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
SWEEP = (1, 4, 16, 32, 64)
MAX_BATCH = 32
BATCHING = ("--max-batch-size", str(MAX_BATCH), "--max-delay-ms", "5")
MODEL_ALONE = "model_alone"  # the in-process model, a row of its own beside the servers


class Plan:
    """How much of everything: the full bench, or --tiny (every step on a sliver of load, for make test)."""

    def __init__(self, args):
        tiny = args.tiny
        self.seconds = 0.15 if tiny else args.seconds
        self.warmup = 0.05 if tiny else 1.0
        self.rounds = 1 if tiny else args.rounds
        self.sweep = (1, 4) if tiny else SWEEP
        self.scale = 0.02 if tiny else 1.0  # of the in-process iteration counts
        self.block = 10 if tiny else 100  # sequential calls per overhead block


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


def raw_model_figures(model_dir: Path, cache: Path, scale: float) -> dict:
    """Raw model = what one request costs inside the server: tokenize, pad, run, softmax."""
    out = {}
    batch32 = [SENTENCES[i % len(SENTENCES)] for i in range(32)]
    # (runtime, quantize, batch-1 calls, batch-32 calls): torch is a side figure, and slow on a busy machine.
    for runtime, quantize, n1, n32 in (("onnxruntime", "none", 300, 15), ("torch", "none", 60, 5),
                                       ("onnxruntime", "int8", 300, 15)):
        model = in_process(model_dir, runtime, quantize, cache)
        runtime += "_int8" if quantize == "int8" else ""
        cycle = iter(range(10**9))
        out[f"{runtime}_b1_p50_ms"] = p50_ms(lambda: model.infer(model.encode([SENTENCES[next(cycle) % 12]])),
                                             max(3, int(n1 * scale)))
        out[f"{runtime}_b32_p50_ms"] = p50_ms(lambda: model.infer(model.encode(batch32)), max(1, int(n32 * scale)))
        del model
    return out


class BlockingPoster:
    """Keep-alive POSTs over one socket with nothing between us and the server (http.client costs ~0.3 ms).

    One per block of calls: uvicorn closes a connection idle for 5 s (its keep-alive timeout).
    """

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
            buf += self._recv()
        header, _, rest = buf.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            rest += self._recv()
        return int(header.split()[1])

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data


def stage_calls(model) -> dict:
    """One request's server-side stages, called as the v2 handler calls them (serve/hotpath.py v2_infer)."""
    from kubeforge_workloads.serve.dataplane import Prediction
    from kubeforge_workloads.serve.protocol import v2

    bodies = [json.dumps(p).encode() for p in V2]
    parsed = [v2.parse_request(b, None) for b in bodies]
    texts = [v2.request_texts(req, binary) for req, binary in parsed]
    encoded = [model.encode(t) for t in texts]
    probs = model.infer(encoded[0])
    preds = [Prediction(model.labels[int(p.argmax())], float(p.max()), p) for p in probs]
    return {
        "parse_ms": lambda i: v2.request_texts(*v2.parse_request(bodies[i], None)),
        "tokenize_ms": lambda i: model.encode(texts[i]),
        "model_ms": lambda i: model.infer(encoded[i]),
        "respond_ms": lambda i: v2.build_response("model", parsed[i][0], preds, len(model.labels)),
    }


def model_call_totals(port: int) -> tuple[float, float]:
    """The server's own model-call histogram (kubeforge_model_call_seconds): (sum of seconds, count)."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("kubeforge_model_call_seconds_"))
    return float(values["kubeforge_model_call_seconds_sum"]), float(values["kubeforge_model_call_seconds_count"])


def overhead_blocks(model, port: int, rounds: int, block: int) -> dict:
    """The server's overhead at concurrency 1: blocks of sequential HTTP requests, each block's mean round
    trip against the server's own timing of the model calls of those same requests (its model-call
    histogram, read before and after the block). Same requests, same moment: a busy neighbour slows both.

    Also, as before, blocks of raw in-process calls alternate with the HTTP blocks (raw_ms: tokenize + model in
    this process); on a shared machine that comparison crosses two processes' CPU shares (it once came out
    negative), so it is reported, not graded. The server-side stages are timed in-process the same way;
    what the round trip spends beyond them and the model call is the transport: socket, HTTP parsing,
    the ASGI app, the batcher's hand-off.
    """
    bodies = [json.dumps(p).encode() for p in V2]
    stages = stage_calls(model)
    times: dict[str, list[float]] = {name: [] for name in ("raw_ms", "e2e_ms", *stages)}
    e2e_means, model_means = [], []

    def timed(name, fn, i, keep):
        start = time.perf_counter()
        fn(i % len(SENTENCES))
        if keep:  # round 0 warms every path up
            times[name].append(time.perf_counter() - start)

    for r in range(rounds + 1):
        for i in range(block):
            timed("raw_ms", lambda k: model.infer(model.encode([SENTENCES[k]])), i, r)
        client = BlockingPoster(port)
        before = model_call_totals(port)
        for i in range(block):
            timed("e2e_ms", lambda k: client.post("/v2/models/model/infer", bodies[k]), i, r)
        after = model_call_totals(port)
        client.sock.close()
        if r:
            e2e_means.append(float(np.mean(times["e2e_ms"][-block:])))
            model_means.append((after[0] - before[0]) / max(1.0, after[1] - before[1]))
        for name, fn in stages.items():
            for i in range(block):
                timed(name, fn, i, r)
    p50 = {name: round(float(np.median(t)) * 1000, 3) for name, t in times.items()}
    fractions = [(e - m) / m for e, m in zip(e2e_means, model_means)]
    e2e_mean, model_mean = float(np.median(e2e_means)) * 1000, float(np.median(model_means)) * 1000
    stages_ms = p50["parse_ms"] + p50["tokenize_ms"] + p50["respond_ms"]
    return {**p50, "e2e_mean_ms": round(e2e_mean, 3), "server_model_ms": round(model_mean, 3),
            "overhead_fraction": round(float(np.median(fractions)), 4),
            "overhead_fraction_blocks": [round(f, 4) for f in fractions],
            "transport_ms": round(e2e_mean - model_mean - stages_ms, 3), "samples": len(times["raw_ms"]),
            "rounds": rounds, "block": block}


def model_alone(model):
    """fn(concurrency, seconds, warmup) -> summary: the model in this process, back to back at batch
    min(concurrency, 32) (tokenize, pad, run, softmax), in texts/s: what a server that batched perfectly
    and cost nothing would do. It runs in the same interleaved turns as the servers, so the batching
    efficiency compares figures taken under the same load."""
    def run(concurrency: int, seconds: float, warmup: float) -> dict:
        texts = [SENTENCES[i % len(SENTENCES)] for i in range(min(concurrency, MAX_BATCH))]
        latencies, calls, t0 = [], 0, time.perf_counter()
        warm_until, deadline = t0 + warmup, t0 + warmup + seconds
        while time.perf_counter() < deadline or not latencies:
            start = time.perf_counter()
            model.infer(model.encode(texts))
            calls += 1
            if start >= warm_until:
                latencies.append(time.perf_counter() - start)
        measured = time.perf_counter() - warm_until
        return LoadResult(concurrency, len(latencies) * len(texts), 0, measured, np.array(latencies),
                          calls * len(texts)).summary()
    return run


def load_targets(servers: dict[str, Server]) -> dict:
    """Name -> fn(concurrency, seconds, warmup) -> summary: what the interleaved load points call."""
    targets = {}
    for name, server in servers.items():
        launch = server.launch
        targets[name] = (lambda c, s, w, port=launch.port, path=launch.path:
                         run_load(port, path, V1, c, s, w).summary())
        if launch.grpc_port:
            targets[f"{name}_grpc"] = (lambda c, s, w, port=launch.grpc_port:
                                       run_grpc_load(port, SENTENCES, c, s, w).summary())
    return targets


def interleaved(targets: dict, servers: dict[str, Server], concurrencies, plan: Plan) -> dict[str, list[dict]]:
    """A load point per target in turn at each concurrency, each with its server's peak RSS and where the
    CPU went per request (over every request of the point, warm-up included, as CPU counters see them):
    the server's process tree, its main thread (kubeforge-serve's event loop), and this process (the
    load generator)."""
    points: dict[str, list[dict]] = {name: [] for name in targets}
    for c in concurrencies:
        for name, run in targets.items():
            if name == MODEL_ALONE:  # no server: this process's CPU is the model's
                points[name].append(run(c, plan.seconds, plan.warmup))
                continue
            server = servers[name.removesuffix("_grpc")]
            cpu0, client0 = server.cpu_seconds(), time.process_time()
            with PeakRss(server) as rss:
                point = run(c, plan.seconds, plan.warmup)
            cpu1, client1 = server.cpu_seconds(), time.process_time()
            sent = max(1, point["requests_total"])
            points[name].append({**point, "peak_rss_mb": round(rss.peak, 1),
                                 "server_cpu_ms_per_req": round(1000 * (cpu1["tree"] - cpu0["tree"]) / sent, 3),
                                 "main_thread_cpu_ms_per_req": round(1000 * (cpu1["main_thread"] - cpu0["main_thread"]) / sent, 3),
                                 "client_cpu_ms_per_req": round(1000 * (client1 - client0) / sent, 3)})
    return points


def start_alone(launches: dict, log_dir: Path, servers: dict[str, Server]) -> dict:
    """Servers started one after another, each timed from process start to first answer while no load
    runs (those already up sit idle), then its RSS read idle after a few requests; they stay up for the
    load. Ray goes last: its idle helpers use more CPU than the other servers."""
    out = {}
    for name in sorted(launches, key=lambda n: n == "ray"):
        launch = launches[name]
        servers[name] = server = Server(launch, log_dir)
        server.wait_answering()
        run_load(launch.port, launch.path, V1, 1, 0.5, 0.0)
        time.sleep(1.0)  # let the post-load allocations settle before reading idle memory
        out[name] = {"cold_start_s": round(server.cold_start_s, 2), "idle_rss_mb": round(server.rss_mb(), 1)}
        print(f"[serve bench] {name}: ready in {out[name]['cold_start_s']} s, idle {out[name]['idle_rss_mb']} MiB",
              flush=True)
    return out


def median_point(points: list[dict]) -> dict:
    keys = ("throughput_rps", "p50_ms", "p95_ms", "p99_ms")
    out = {"concurrency": points[0]["concurrency"], "rounds": len(points),
           **{k: round(float(np.median([p[k] for p in points])), 2) for k in keys},
           "errors": sum(p["errors"] for p in points)}
    if "peak_rss_mb" in points[0]:
        out["peak_rss_mb"] = max(p["peak_rss_mb"] for p in points)
    for key in ("server_cpu_ms_per_req", "main_thread_cpu_ms_per_req", "client_cpu_ms_per_req"):
        if key in points[0]:
            out[key] = round(float(np.median([p[key] for p in points])), 3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="measured seconds per load point")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds for the headline figures")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers (default: all)")
    ap.add_argument("--tiny", action="store_true", help="seconds of everything: proves the bench still runs")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers started here are stopped
    plan = Plan(args)
    peers = [p for p in args.peers.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        raise SystemExit(f"unknown peers {sorted(unknown)}; known: {PEERS}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))  # server logs, int8 cache: not results
    began = time.perf_counter()
    model_dir = cached_model("minilm-l6-seq-cls-v3", build_minilm_model)
    res: dict = {"model": "all-MiniLM-L6-v2 + 2-label head (ONNX, fp32)", "cpus": os.cpu_count(),
                 "loadavg_start": os.getloadavg(), "seconds_per_point": plan.seconds, "rounds": plan.rounds,
                 "tiny": args.tiny}
    res["raw"] = raw_model_figures(model_dir, tmp, plan.scale)
    launches = {"kubeforge": kubeforge_launch("kubeforge", model_dir, *BATCHING, grpc=True),
                **{p: peer_launch(p, model_dir / "onnx", tmp) for p in peers},
                "kubeforge_batch1": kubeforge_launch("kubeforge_batch1", model_dir, "--max-batch-size", "1")}
    servers: dict[str, Server] = {}
    try:
        res["startup"] = start_alone(launches, tmp, servers)
        model = in_process(model_dir, "onnxruntime", "none", tmp)
        targets = {**load_targets(servers), MODEL_ALONE: model_alone(model)}
        res["overhead"] = overhead_blocks(model, servers["kubeforge"].port, plan.rounds, plan.block)
        res["curves"] = interleaved(targets, servers, plan.sweep, plan)
        headline = [interleaved(targets, servers, (1, 32), plan) for _ in range(plan.rounds)]
        res["c1"] = {name: median_point([r[name][0] for r in headline]) for name in targets}
        res["c32"] = {name: median_point([r[name][1] for r in headline]) for name in targets}
        # Each round's kubeforge c32 throughput over the model alone's, measured seconds apart.
        res["batching_efficiency_rounds"] = [round(r["kubeforge"][1]["throughput_rps"] /
                                                   r[MODEL_ALONE][1]["throughput_rps"], 3) for r in headline]
    finally:
        for server in servers.values():
            server.stop()
    res["loadavg_end"] = os.getloadavg()
    res["bench_seconds"] = round(time.perf_counter() - began, 1)
    res["figures"] = serve_report.figures(res, peers)
    serve_report.write(res, args.results_dir)
    print((args.results_dir / "serve_bench.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
