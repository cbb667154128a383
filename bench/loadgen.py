"""A lean closed-loop HTTP/1.1 load generator (asyncio, keep-alive): client overhead stays far below the server's."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: np.ndarray  # seconds, successful requests only
    total: int = 0  # every answer, warm-up included (what the server's CPU counters saw)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        if not len(self.latencies):  # nothing finished inside the window (a --tiny point at high concurrency)
            return float("nan")
        return float(np.percentile(self.latencies, q)) * 1000.0  # ms

    def summary(self) -> dict:
        return {"concurrency": self.concurrency, "requests": self.requests, "errors": self.errors,
                "throughput_rps": round(self.throughput, 1), "p50_ms": round(self.pct(50), 2),
                "p95_ms": round(self.pct(95), 2), "p99_ms": round(self.pct(99), 2), "requests_total": self.total}


class Connection:
    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding":
                chunked = "chunked" in value.lower()  # Ray Serve's proxy streams its answers
        payload = await self._chunks() if chunked else await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    async def _chunks(self) -> bytes:
        parts = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readline()  # the CRLF after each chunk
        await self.reader.readline()  # the CRLF after the last (empty) chunk
        return b"".join(parts)

    def close(self):
        if self.writer:
            self.writer.close()


async def _worker(port, path, bodies, deadline, warm_until, latencies, counts, offset):
    conn = Connection(port)
    await conn.open()
    i = offset
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            status, _ = await conn.post(path, bodies[i % len(bodies)])
            i += 1
            counts["total"] += 1
            if start < warm_until:
                continue
            if status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                counts["errors"] += 1
    finally:
        conn.close()


async def _run(port, path, bodies, concurrency, seconds, warmup):
    latencies: list[float] = []
    counts = {"errors": 0, "total": 0}
    t0 = time.perf_counter()
    warm_until, deadline = t0 + warmup, t0 + warmup + seconds
    await asyncio.gather(*(_worker(port, path, bodies, deadline, warm_until, latencies, counts, k)
                           for k in range(concurrency)))
    measured = time.perf_counter() - warm_until
    return LoadResult(concurrency, len(latencies), counts["errors"], measured, np.array(latencies), counts["total"])


def run_load(port: int, path: str, payloads: list[dict], concurrency: int, seconds: float,
             warmup: float = 1.0) -> LoadResult:
    bodies = [json.dumps(p).encode() for p in payloads]
    return asyncio.run(_run(port, path, bodies, concurrency, seconds, warmup))


async def _grpc_worker(stub, requests, deadline, warm_until, latencies, counts, offset):
    import grpc

    i = offset
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            await stub.ModelInfer(requests[i % len(requests)])
            ok = True
        except grpc.aio.AioRpcError:
            ok = False
        i += 1
        counts["total"] += 1
        if start < warm_until:
            continue
        if ok:
            latencies.append(time.perf_counter() - start)
        else:
            counts["errors"] += 1


async def _run_grpc(port, requests, concurrency, seconds, warmup):
    import grpc

    from kubeforge_workloads.serve.protocol.grpc import inference_pb2_grpc as pb_grpc

    latencies: list[float] = []
    counts = {"errors": 0, "total": 0}
    # One HTTP/2 connection carrying every stream, as one gRPC client channel does.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        t0 = time.perf_counter()
        warm_until, deadline = t0 + warmup, t0 + warmup + seconds
        await asyncio.gather(*(_grpc_worker(stub, requests, deadline, warm_until, latencies, counts, k)
                               for k in range(concurrency)))
        measured = time.perf_counter() - warm_until
    return LoadResult(concurrency, len(latencies), counts["errors"], measured, np.array(latencies), counts["total"])


def infer_request(text: str):
    """A ModelInferRequest for one text, built as tritonclient.grpc builds it (BYTES in raw_input_contents)."""
    from kubeforge_workloads.serve.protocol import v2
    from kubeforge_workloads.serve.protocol.grpc import inference_pb2 as pb

    req = pb.ModelInferRequest(model_name="model")
    req.inputs.add(name="text", datatype="BYTES", shape=[1])
    req.raw_input_contents.append(v2.encode_bytes_tensor([text.encode()]))
    return req


def run_grpc_load(port: int, texts: list[str], concurrency: int, seconds: float, warmup: float = 1.0) -> LoadResult:
    """Closed-loop Open Inference Protocol v2 ModelInfer calls over gRPC, one text each."""
    return asyncio.run(_run_grpc(port, [infer_request(t) for t in texts], concurrency, seconds, warmup))
