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

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000.0  # ms

    def summary(self) -> dict:
        return {"concurrency": self.concurrency, "requests": self.requests, "errors": self.errors,
                "throughput_rps": round(self.throughput, 1), "p50_ms": round(self.pct(50), 2),
                "p95_ms": round(self.pct(95), 2), "p99_ms": round(self.pct(99), 2)}


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
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

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
    counts = {"errors": 0}
    t0 = time.perf_counter()
    warm_until, deadline = t0 + warmup, t0 + warmup + seconds
    await asyncio.gather(*(_worker(port, path, bodies, deadline, warm_until, latencies, counts, k)
                           for k in range(concurrency)))
    measured = time.perf_counter() - warm_until
    return LoadResult(concurrency, len(latencies), counts["errors"], measured, np.array(latencies))


def run_load(port: int, path: str, payloads: list[dict], concurrency: int, seconds: float,
             warmup: float = 1.0) -> LoadResult:
    bodies = [json.dumps(p).encode() for p in payloads]
    return asyncio.run(_run(port, path, bodies, concurrency, seconds, warmup))
