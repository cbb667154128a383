"""The Ray head's view of its cluster through the GCS: wait until every node joined, then watch them while the driver runs.

Uses Ray's GCS client (ray._raylet.GcsClient, what `ray status` and the driver use) rather
than `ray status` in a subprocess every second: one Python start per poll would cost more
CPU than the small clusters of a local run.
"""

from __future__ import annotations

import logging
import subprocess
import time

from kubeforge.localprocs import container_exit_code

log = logging.getLogger(__name__)
POLL_S = 1.0
WATCH_EVERY_S = 2.0


class ClusterWatch:
    def __init__(self, gcs_address: str, expected_nodes: int):
        self.gcs_address, self.expected = gcs_address, expected_nodes
        self._client = None

    def alive(self) -> int | None:
        """Nodes the GCS counts alive; None while it does not answer."""
        from ray._raylet import GcsClient
        from ray.core.generated.gcs_pb2 import GcsNodeInfo

        try:
            if self._client is None:
                self._client = GcsClient(address=self.gcs_address)
            return len(self._client.get_all_node_info(timeout=5, state_filter=GcsNodeInfo.GcsNodeState.ALIVE))
        except Exception as exc:  # noqa: BLE001 - the GCS starting up or gone: the caller decides
            log.debug("GCS %s did not answer: %s", self.gcs_address, exc)
            return None

    def wait_for_nodes(self, ray_proc: subprocess.Popen, timeout_s: float) -> str | None:
        """None once every node is alive; else the error (the head's Ray exited, or the join timed out)."""
        deadline = time.monotonic() + timeout_s
        seen = None
        while time.monotonic() < deadline:
            if ray_proc.poll() is not None:
                return f"the Ray head exited with code {ray_proc.returncode} before the cluster formed"
            seen = self.alive()
            if seen is not None and seen >= self.expected:
                return None
            time.sleep(POLL_S)  # nodes join on their own; nothing to wait on but the clock
        return (f"only {seen or 0} of {self.expected} Ray nodes joined within {timeout_s:.0f} s "
                "(spec.ray.joinTimeoutSeconds): see the other pods' logs")

    def supervise(self, driver: subprocess.Popen, ray_proc: subprocess.Popen) -> tuple[int, str | None]:
        """Wait for the driver: (its exit code, None), or (-1, why) when the head's Ray or a node went away first."""
        next_check = time.monotonic() + WATCH_EVERY_S
        while True:
            try:
                return container_exit_code(driver.wait(timeout=POLL_S)), None
            except subprocess.TimeoutExpired:
                pass
            if ray_proc.poll() is not None:
                return -1, f"the Ray head's processes exited (code {ray_proc.returncode}) while the driver ran"
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + WATCH_EVERY_S
                alive = self.alive()
                if alive is not None and alive < self.expected:
                    return -1, f"a Ray node was lost while the driver ran: {alive} of {self.expected} alive"
