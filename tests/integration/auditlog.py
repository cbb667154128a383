"""The local cluster's audit log (hack/kwok/audit-policy.yaml): each request the API server served, with its user agent.

apiserver_request_total counts by verb and resource but not by client, so the operator's own
requests are counted here: the operator sends `kubeforge-operator/<version> (<identity>)`
(kubeforge.identity). Used by the quiet-window and HA tests and by bench/scale_bench.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

OPERATOR_AGENT = "kubeforge-operator/"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Request:
    time: float  # epoch seconds the API server received it
    verb: str
    resource: str  # "trainingjobs", "pods/status", ...
    namespace: str
    name: str
    user_agent: str
    code: int
    uri: str  # path and query, e.g. /api/v1/pods?labelSelector=...&watch=true

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS


def audit_log_path(kubeconfig: str | Path) -> Path:
    """hack/cluster.sh keeps the kubeconfig and logs/ side by side in the cluster's directory."""
    return Path(kubeconfig).parent / "logs" / "audit.log"


class AuditLog:
    """Reads the log from a mark on: `mark()` before the window, `requests()` after it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    @property
    def enabled(self) -> bool:
        return self.path.exists()

    def mark(self) -> "AuditLog":
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        return self

    def requests(self, agent: str = OPERATOR_AGENT) -> list[Request]:
        """Requests whose user agent starts with `agent` (every one: ""), each counted once."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        # A line the API server is still writing is left for the next read.
        return [r for r in map(_parse, data.split(b"\n")[:-1]) if r is not None and r.user_agent.startswith(agent)]


def _parse(line: bytes) -> Request | None:
    try:
        e = json.loads(line)
    except ValueError:
        return None
    # A watch logs ResponseStarted when it opens and ResponseComplete when it ends; count its start.
    if e.get("stage") != ("ResponseStarted" if e.get("verb") == "watch" else "ResponseComplete"):
        return None
    ref = e.get("objectRef") or {}
    resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    received = datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
    return Request(received, e["verb"], resource, ref.get("namespace", ""), ref.get("name", ""),
                   e.get("userAgent", ""), (e.get("responseStatus") or {}).get("code", 0), e.get("requestURI", ""))
