"""What rank 0 tells the outside world: progress (a JSON-lines file and/or the job's progress ConfigMap) and the final summary.

Progress goes to key `progress` of the ConfigMap `<job>-progress` with a merge-patch through
the API server. The job's ServiceAccount may patch that one ConfigMap and nothing else
(a Role with resourceNames, built by the operator): user code runs with this token, so it
must not be able to touch pods, other jobs' progress or anything else in the namespace.
The operator watches the ConfigMap, so no extra port or sidecar is needed, and it works
the same when the operator runs outside the cluster. Writes are throttled (one per
REPORT_EVERY_S, plus the final one): a thousand jobs reporting stay a light load on the
API server. Reporting never fails a training run; errors are logged and the next report
tries again.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from pathlib import Path
from typing import Callable

from kubeforge import contract

from .. import apireport
from ..apireport import SERVICE_ACCOUNT_DIR

log = logging.getLogger(__name__)

REPORT_EVERY_S = 10.0


def progress_request(host: str, port: str, namespace: str, job: str, record: dict, token: str) -> urllib.request.Request:
    """The merge-patch that sets the progress key of the job's own progress ConfigMap."""
    return apireport.configmap_key_request(host, port, namespace, contract.progress_config_map(job), contract.PROGRESS_KEY,
                                           record, token)


class ProgressReporter:
    """Rank 0's progress sink: every record to the progress file, throttled ones to the progress ConfigMap."""

    def __init__(self, progress_file: str, env: dict, clock: Callable[[], float] = time.monotonic,
                 account_dir: Path = SERVICE_ACCOUNT_DIR):
        self.progress_file = progress_file
        self.clock = clock
        self.next_report = float("-inf")
        self.job = env.get(contract.JOB_NAME, "")
        self.attempt = env.get(contract.ATTEMPT, "")
        self.namespace = env.get(contract.POD_NAMESPACE) or env.get(contract.NAMESPACE, "default")
        self.api = (env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "443"))
        self.account_dir = account_dir

    @property
    def in_pod(self) -> bool:
        return bool(self.job and self.api[0] and (self.account_dir / "token").is_file())

    def report(self, record: dict, final: bool = False) -> None:
        if self.progress_file:
            with open(self.progress_file, "a") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
        now = self.clock()
        if self.in_pod and (final or now >= self.next_report):
            self.next_report = now + REPORT_EVERY_S
            # The attempt lets the operator ignore a record an earlier attempt left behind.
            self._send({**record, "attempt": int(self.attempt)} if self.attempt.isdigit() else record)

    def _send(self, record: dict) -> None:
        try:
            apireport.send(lambda token: progress_request(self.api[0], self.api[1], self.namespace, self.job, record, token),
                           self.account_dir)
        except Exception as exc:  # noqa: BLE001 - progress is best effort, training goes on
            log.warning("could not report progress of %s/%s: %s", self.namespace, self.job, exc)


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

