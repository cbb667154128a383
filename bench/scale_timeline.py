"""Where a TrainingJob's create -> Running went, by the API server's own clock: its audit log, request by request.

The scale bench times each step where its own watches see it; with 1,000 jobs on a loaded machine
those watches fall behind (run 4: p50 626 s by the watches, 375 s by the API server). This reads
the audit log the bench's cluster writes (hack/kwok/audit-policy.yaml) and splits each job of one
namespace into: the operator's queue (CR created -> its first request for the job), its children
(-> the Job applied), the control plane (-> every pod bound, -> every pod's status set by kwok),
and the operator again (-> its last status write). scale_bench.py records it for its TrainingJob phase
(`apiServerClock`); to read a kept log again, run the bench with --keep-cluster, then:

    python bench/scale_timeline.py ~/.kwok/clusters/<name>-scale/logs/audit.log scale-<suffix>
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from datetime import datetime

STEPS = ("queue", "children", "to_bind", "bind_to_ready", "ready_to_status", "total", "op_requests", "op_reads", "status_writes")


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def requests_by_job(path: str, namespace: str, offset: int = 0) -> dict[str, list[tuple]]:
    """(received, completed, user agent, verb, resource, code) of each request on a job or its children, by job."""
    by_job: dict[str, list[tuple]] = defaultdict(list)
    with open(path, "rb") as log:
        log.seek(offset)
        for line in log:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            ref = e.get("objectRef") or {}
            match = re.match(r"(tj-\d+)", ref.get("name") or "")
            if e.get("stage") != "ResponseComplete" or ref.get("namespace") != namespace or not match:
                continue
            resource = ref.get("resource", "") + ("/" + ref["subresource"] if ref.get("subresource") else "")
            by_job[match.group(1)].append((stamp(e["requestReceivedTimestamp"]), stamp(e["stageTimestamp"]),
                                           e.get("userAgent", ""), e["verb"], resource, (e.get("responseStatus") or {}).get("code")))
    return by_job


def split(requests: list[tuple]) -> dict[str, float] | None:
    requests.sort()
    created = next((done for _, done, _, verb, res, _ in requests if res == "trainingjobs" and verb == "create"), None)
    ours = [r for r in requests if r[2].startswith("kubeforge-operator/")]
    job = next((done for _, done, _, verb, res, code in ours if res == "jobs" and verb == "patch" and code in (200, 201)), None)
    binds = [done for _, done, _, _, res, _ in requests if res == "pods/binding"]
    ready = [done for _, done, agent, _, res, _ in requests if res == "pods/status" and agent.startswith("kwok")]
    status = [done for _, done, _, _, res, _ in ours if res == "trainingjobs/status"]
    if None in (created, job) or not (ours and binds and ready and status):
        return None
    first = min(r[0] for r in ours)
    return {"queue": first - created, "children": job - first, "to_bind": max(binds) - job, "bind_to_ready": max(ready) - max(binds),
            "ready_to_status": status[-1] - max(ready), "total": status[-1] - created, "op_requests": len(ours),
            "op_reads": sum(r[3] in ("get", "list") for r in ours), "status_writes": len(status)}


def summary(path: str, namespace: str, offset: int = 0) -> dict[str, object]:
    """{"count": jobs split, step: {"p50", "p90", "p99", "max"}} for the jobs tj-NNNNN of `namespace` (what scale_bench records)."""
    rows = [row for row in map(split, requests_by_job(path, namespace, offset).values()) if row]
    out: dict[str, object] = {"count": len(rows)}
    for step in STEPS if rows else ():
        values = sorted(r[step] for r in rows)
        at = lambda q: round(values[min(len(values) - 1, int(q * len(values)))], 3)  # noqa: E731
        out[step] = {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(values[-1], 3)}
    return out


def main(path: str, namespace: str) -> None:
    result = summary(path, namespace)
    print(f"{result.pop('count')} jobs")
    for step, q in result.items():
        print(f"{step:16s} p50 {q['p50']:9.3f}  p90 {q['p90']:9.3f}  p99 {q['p99']:9.3f}  max {q['max']:9.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
