"""A lean closed-loop load generator, HTTP/1.1 keep-alive (asyncio protocol) and gRPC: the client shares the cores."""

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


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection as a bare protocol: a request is one write of prebuilt bytes, the
    answer is complete once its headers and Content-Length bytes (or a chunked body's last chunk) are in.
    The client shares the machine's two cores with the server, so it parses nothing it does not need."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None

    @classmethod
    async def open(cls, port: int) -> Connection:
        _, conn = await asyncio.get_running_loop().create_connection(cls, "127.0.0.1", port)
        return conn

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        status = self._complete()
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def _complete(self) -> int | None:
        """The status code once the whole answer is buffered (and drop it from the buffer), else None."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            done = end + 4 + int(head[at + 17:stop if stop >= 0 else len(head)])
            if len(self.buf) < done:
                return None
        elif self.buf.endswith(b"0\r\n\r\n"):  # chunked (Ray Serve's proxy): the last, empty chunk is in
            done = len(self.buf)
        else:
            return None
        del self.buf[:done]
        return int(head[9:12])

    async def post(self, request: bytes) -> int:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if self.transport:
            self.transport.close()


def http_request(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _worker(port, requests, deadline, warm_until, latencies, counts, offset):
    conn = await Connection.open(port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            status = await conn.post(requests[i % len(requests)])
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


async def _run(port, requests, concurrency, seconds, warmup):
    latencies: list[float] = []
    counts = {"errors": 0, "total": 0}
    t0 = time.perf_counter()
    warm_until, deadline = t0 + warmup, t0 + warmup + seconds
    await asyncio.gather(*(_worker(port, requests, deadline, warm_until, latencies, counts, k)
                           for k in range(concurrency)))
    measured = time.perf_counter() - warm_until
    return LoadResult(concurrency, len(latencies), counts["errors"], measured, np.array(latencies), counts["total"])


def run_load(port: int, path: str, payloads: list[dict], concurrency: int, seconds: float,
             warmup: float = 1.0) -> LoadResult:
    requests = [http_request(path, json.dumps(p).encode()) for p in payloads]
    return asyncio.run(_run(port, requests, concurrency, seconds, warmup))


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
