"""What rank 0 tells the outside world: progress (a JSON-lines file and/or its pod's annotation) and the final summary.

Progress goes to the pod annotation `kubeforge.io/progress` with a merge-patch through
the API server, because the operator already watches pods: no extra port, no sidecar,
and it works the same when the operator runs outside the cluster. Reporting never
fails a training run; errors are logged and the next report tries again.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Callable

from kubeforge import contract

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
ANNOTATE_EVERY_S = 10.0


def annotation_request(host: str, port: str, namespace: str, pod: str, record: dict, token: str) -> urllib.request.Request:
    """The merge-patch that sets the progress annotation on the trainer's own pod."""
    host = f"[{host}]" if ":" in host else host  # an IPv6 service host needs brackets in a URL
    body = {"metadata": {"annotations": {contract.PROGRESS_ANNOTATION: json.dumps(record, sort_keys=True)}}}
    return urllib.request.Request(
        f"https://{host}:{port}/api/v1/namespaces/{namespace}/pods/{pod}",
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json", "Authorization": f"Bearer {token}"},
    )


class ProgressReporter:
    """Rank 0's progress sink: every record to the progress file, throttled ones to the pod annotation."""

    def __init__(self, progress_file: str, env: dict, clock: Callable[[], float] = time.monotonic,
                 account_dir: Path = SERVICE_ACCOUNT_DIR):
        self.progress_file = progress_file
        self.clock = clock
        self.next_annotation = float("-inf")
        self.pod = env.get(contract.POD_NAME, "")
        self.namespace = env.get(contract.POD_NAMESPACE) or env.get(contract.NAMESPACE, "default")
        self.api = (env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "443"))
        self.account_dir = account_dir

    @property
    def in_pod(self) -> bool:
        return bool(self.pod and self.api[0] and (self.account_dir / "token").is_file())

    def report(self, record: dict, final: bool = False) -> None:
        if self.progress_file:
            with open(self.progress_file, "a") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
        now = self.clock()
        if self.in_pod and (final or now >= self.next_annotation):
            self.next_annotation = now + ANNOTATE_EVERY_S
            self._annotate(record)

    def _annotate(self, record: dict) -> None:
        try:
            token = (self.account_dir / "token").read_text().strip()
            request = annotation_request(self.api[0], self.api[1], self.namespace, self.pod, record, token)
            context = ssl.create_default_context(cafile=str(self.account_dir / "ca.crt"))
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                response.read()
        except Exception as exc:  # noqa: BLE001 - progress is best effort, training goes on
            log.warning("could not annotate pod %s/%s with progress: %s", self.namespace, self.pod, exc)


def summary_message(summary: dict, limit: int = contract.TERMINATION_MESSAGE_LIMIT) -> str:
    """The termination message: the summary as JSON, shortened to fit the kubelet's 4096-byte cap."""
    text = json.dumps(summary, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) <= limit:
        return text
    # Keep what the operator needs for status.result; drop the rest, then cut the metrics.
    core = {k: summary[k] for k in ("modelUri", "steps", "resumedFromStep", "error") if k in summary}
    core["metrics"] = {k: v for k, v in summary.get("metrics", {}).items() if k in ("accuracy", "f1")}
    return json.dumps(core, sort_keys=True, separators=(",", ":"))[:limit]


def write_termination_message(path: str, summary: dict) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(summary_message(summary))
    except OSError as exc:
        log.warning("could not write the termination message to %s: %s", path, exc)

