"""What bench/scale_bench.py measures with: watch-event timestamps per resource, the operator's RSS/CPU, its /metrics, plots.

Times are taken where the bench's own watches see an event (time.time() on arrival), not from
metadata timestamps, which have one-second resolution.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kubernetes import client, watch

TJ_LABEL, ME_LABEL = "kubeforge.io/trainingjob", "kubeforge.io/modelendpoint"


@dataclass
class Timeline:
    """First times each thing was seen, by owner name."""

    created: dict[str, float] = field(default_factory=dict)  # the create call returned
    child: dict[str, float] = field(default_factory=dict)  # the Job / Deployment appeared
    workers_ready: dict[str, float] = field(default_factory=dict)  # the control plane had every pod Ready
    done: dict[str, float] = field(default_factory=dict)  # status said Running / Ready

    def latencies(self) -> list[dict[str, float]]:
        """Per owner: total, operator's share (create->child, workers ready->status), control plane's share."""
        rows = []
        for name, t0 in sorted(self.created.items(), key=lambda kv: kv[1]):
            if name not in self.done or name not in self.child or name not in self.workers_ready:
                continue
            ready = max(self.workers_ready[name], self.child[name])
            done = max(self.done[name], ready)
            operator = (self.child[name] - t0) + (done - ready)
            rows.append({"name": name, "created": t0, "total": done - t0, "operator": max(0.0, operator),
                         "controlPlane": max(0.0, ready - self.child[name])})
        return rows


class Recorder:
    """Watches one namespace's TrainingJobs, ModelEndpoints, Jobs, Deployments and pods; fills two Timelines."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.jobs, self.endpoints = Timeline(), Timeline()
        self.nodes: dict[str, int] = {}  # TrainingJob -> workers expected
        self._ready_pods: dict[str, set[str]] = defaultdict(set)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> "Recorder":
        custom, core = client.CustomObjectsApi(self.api), client.CoreV1Api(self.api)
        batch, apps = client.BatchV1Api(self.api), client.AppsV1Api(self.api)
        ns = self.namespace
        streams = [
            (lambda **kw: custom.list_namespaced_custom_object("kubeforge.io", "v1alpha1", ns, "trainingjobs", **kw), self._on_tj),
            (lambda **kw: custom.list_namespaced_custom_object("kubeforge.io", "v1alpha1", ns, "modelendpoints", **kw), self._on_me),
            (lambda **kw: batch.list_namespaced_job(ns, label_selector=TJ_LABEL, **kw), self._on_job),
            (lambda **kw: core.list_namespaced_pod(ns, label_selector=TJ_LABEL, **kw), self._on_pod),
            (lambda **kw: apps.list_namespaced_deployment(ns, label_selector=ME_LABEL, **kw), self._on_deployment),
        ]
        for lister, handler in streams:
            threading.Thread(target=self._watch, args=(lister, handler), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, lister: Callable[..., Any], handler: Callable[[dict, float], None]) -> None:
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(lister, timeout_seconds=30, _request_timeout=60):
                    obj = event["object"]
                    obj = obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)
                    with self._lock:
                        handler(obj, time.time())
                    if self._stop.is_set():
                        return
            except Exception:  # a dropped watch: re-list (first-seen times are kept with setdefault)
                time.sleep(0.5)

    def _on_tj(self, obj: dict, now: float) -> None:
        if (obj.get("status") or {}).get("phase") in ("Running", "Succeeded"):
            self.jobs.done.setdefault(obj["metadata"]["name"], now)

    def _on_me(self, obj: dict, now: float) -> None:
        if (obj.get("status") or {}).get("phase") == "Ready":
            self.endpoints.done.setdefault(obj["metadata"]["name"], now)

    def _on_job(self, obj: dict, now: float) -> None:
        self.jobs.child.setdefault(obj["metadata"]["labels"][TJ_LABEL], now)

    def _on_deployment(self, obj: dict, now: float) -> None:
        name = obj["metadata"]["labels"][ME_LABEL]
        self.endpoints.child.setdefault(name, now)
        status = obj.get("status") or {}
        if status.get("readyReplicas", 0) >= max(1, (obj.get("spec") or {}).get("replicas") or 1):
            self.endpoints.workers_ready.setdefault(name, now)

    def _on_pod(self, obj: dict, now: float) -> None:
        owner = obj["metadata"]["labels"][TJ_LABEL]
        conditions = (obj.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            self._ready_pods[owner].add(obj["metadata"]["name"])
            if len(self._ready_pods[owner]) >= self.nodes.get(owner, 1):
                self.jobs.workers_ready.setdefault(owner, now)


class Sampler:
    """The operator process's RSS (MB) and CPU (% of one core) once a second; follows restarts through `pid()`."""

    def __init__(self, pid: Callable[[], int | None]) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []  # (time, rss MB, cpu %)
        self._stop = threading.Event()

    def start(self) -> "Sampler":
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        last: tuple[int | None, float, float] = (None, 0.0, 0.0)
        ticks = 100.0  # USER_HZ on Linux
        while not self._stop.wait(1.0):
            pid = self.pid()
            try:
                rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu_s = (int(fields[11]) + int(fields[12])) / ticks
            except (OSError, AttributeError, TypeError):
                continue
            now = time.time()
            if last[0] == pid:
                self.samples.append((now, rss, 100 * (cpu_s - last[2]) / (now - last[1])))
            last = (pid, now, cpu_s)

    def window(self, start: float, end: float) -> dict[str, float]:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:
            return {"rssMB": 0.0, "rssMaxMB": 0.0, "cpuPercent": 0.0}
        return {"rssMB": round(inside[-1][1], 1), "rssMaxMB": round(max(s[1] for s in inside), 1),
                "cpuPercent": round(sum(s[2] for s in inside) / len(inside), 2)}


def scrape(url: str) -> dict[str, float]:
    """The operator's /metrics as {'name{labels}': value}; {} when it does not answer."""
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def metric_sum(metrics: dict[str, float], name: str) -> float:
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def plot(results: dict, recorder: Recorder, sampler: Sampler, requests: list, t0: float, out: Path,
         others: dict[str, Timeline] | None = None) -> list[str]:
    """scale_latency.png (with `others`: a peer's timelines, by label), scale_rss.png, scale_requests.png; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, timeline in (("TrainingJob", recorder.jobs), ("ModelEndpoint", recorder.endpoints), *(others or {}).items()):
        rows = timeline.latencies()
        if rows:
            xs = [r["created"] - t0 for r in rows]
            ax.scatter(xs, [r["total"] for r in rows], s=8, label=f"{label} total")
            ax.scatter(xs, [r["operator"] for r in rows], s=8, marker="x", label=f"{label} operator's share")
    ax.set(xlabel="created at (s since bench start)", ylabel="create -> Running/Ready (s)", title="Latency over time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scale_latency.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot([s[0] - t0 for s in sampler.samples], [s[1] for s in sampler.samples], label="RSS (MB)")
    ax2 = ax.twinx()
    ax2.plot([s[0] - t0 for s in sampler.samples], [s[2] for s in sampler.samples], color="tab:red", alpha=0.4, label="CPU %")
    for phase in results["phases"]:
        ax.axvline(phase["start"] - t0, color="grey", lw=0.5)
        ax.text(phase["start"] - t0, ax.get_ylim()[1] * 0.95, phase["name"], rotation=90, fontsize=7, va="top")
    ax.set(xlabel="s since bench start", ylabel="RSS (MB)", title="Operator RSS and CPU over time")
    ax2.set_ylabel("CPU (% of one core)")
    fig.tight_layout()
    fig.savefig(out / "scale_rss.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    by_verb: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r in requests:
        by_verb[r.verb][int((r.time - t0) // 5)] += 1
    last = max((max(b) for b in by_verb.values()), default=0)
    for verb, bins in sorted(by_verb.items()):
        xs = range(last + 1)  # empty bins are zeros, not a line drawn across the gap
        ax.plot([x * 5 for x in xs], [bins.get(x, 0) / 5 for x in xs], label=verb)
    ax.set(xlabel="s since bench start (5 s bins)", ylabel="requests/s", title="Operator API requests by verb (audit log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scale_requests.png", dpi=110)
    plt.close(fig)
    return ["scale_latency.png", "scale_rss.png", "scale_requests.png"]
