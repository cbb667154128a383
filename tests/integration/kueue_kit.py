"""Real Kueue for integration tests: hack/kueue.sh up/down around a module, LocalQueues and PriorityClasses.

Kueue (built from its Go module by `hack/build-binaries.sh kueue`) runs as a process against the
local cluster; its webhooks are served on 127.0.0.1 (hack/kueue/README.md). The ClusterQueue
`kubeforge` (hack/kueue/queues.yaml) holds the GPU pools' whole capacity.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any, Iterator

import pytest
from kubernetes import client

from tests.integration.clusterkit import REPO, Cluster, cluster_required, wait_for

KUEUE_SH = REPO / "hack" / "kueue.sh"
EXIT_NO_BINARY = 3
GROUP, VERSION = "kueue.x-k8s.io", "v1beta2"
CLUSTER_QUEUE = "kubeforge"


def kueue_sh(verb: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBEFORGE_NO_BUILD="1")
    return subprocess.run([str(KUEUE_SH), verb], env=env, capture_output=True, text=True, timeout=timeout)


def kueue_running(cluster: Cluster) -> Iterator[None]:
    """Starts Kueue for the caller's scope (skips when its binary is not built, unless CI requires it); stops it after."""
    up = kueue_sh("up")
    if up.returncode == EXIT_NO_BINARY and not cluster_required():
        pytest.skip(f"Kueue is not built: {up.stderr.strip().splitlines()[-1]}")
    assert up.returncode == 0, f"hack/kueue.sh up failed:\n{up.stderr}"
    try:
        yield
    finally:
        # Kueue's webhooks answer only while it runs; the other modules' tests must not meet it.
        kueue_sh("down", timeout=60)


class KueueKit:
    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.custom = client.CustomObjectsApi(cluster.api)

    def local_queue(self, name: str, cluster_queue: str = CLUSTER_QUEUE) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LocalQueue", "metadata": {"name": name},
                "spec": {"clusterQueue": cluster_queue}}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "localqueues", body)

    def workloads(self) -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "workloads")["items"]

    def priority_class(self, name: str, value: int) -> None:
        """Cluster-scoped and shared by the tests: created once, never deleted."""
        body = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value,
                "preemptionPolicy": "Never", "description": "kubeforge Kueue tests"}
        try:
            client.SchedulingV1Api(self.cluster.api).create_priority_class(body)
        except client.ApiException as err:
            if err.status != 409:
                raise

    def release_quota(self, delete_jobs) -> None:
        """Deletes the test's TrainingJobs and waits for Kueue to drop their Workloads (the quota they hold)."""
        delete_jobs()
        wait_for(lambda: not self.workloads(), timeout=60, message=f"Workloads in {self.namespace} gone")
