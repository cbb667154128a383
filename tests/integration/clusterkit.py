"""The local cluster as tests see it: start or reuse it, talk to it, wait on it.

The cluster itself is hack/cluster.sh (kwokctl with the locally built
binaries); this module only calls it, so `make cluster-up` and the tests share
one cluster, one kubeconfig and one set of fake node pools.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_for  # noqa: F401  (re-exported: integration tests import it from here)

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "hack" / "cluster.sh"
# hack/cluster.sh exits with this when the binaries are not built (and it was
# told not to build them): the one "cannot start" that may skip.
EXIT_NO_BINARIES = 3
# `up` on a running cluster takes seconds; a cold create well under a minute,
# but parallel sessions wait for each other's `up` behind a lock.
UP_TIMEOUT_S = 600


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries its stderr."""


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its kubeconfig, an API client and kubectl."""

    kubeconfig: str  # a path; str so it drops straight into env={"KUBECONFIG": ...}
    kubectl_binary: str
    api: Any  # kubernetes.client.ApiClient

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Runs the cluster's kubectl (v1.34, built with it) with this kubeconfig."""
        cmd = [self.kubectl_binary, "--kubeconfig", self.kubeconfig, *args]
        done = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done


def binaries_dir() -> Path:
    versions = dict(
        line.split("=", 1) for line in (REPO / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = Path(os.environ.get("KUBEFORGE_CACHE", Path.home() / ".cache" / "kubeforge"))
    return cache / f"k8s-{versions['K8S_VERSION'].strip()}" / "bin"


def cluster_required() -> bool:
    """CI sets KUBEFORGE_REQUIRE_CLUSTER=1: a cluster that cannot start fails the run."""
    return os.environ.get("KUBEFORGE_REQUIRE_CLUSTER", "0") == "1"


def start_cluster(name: str | None = None, profile: str | None = None) -> Cluster:
    """Brings the cluster up (or reuses it) and connects; skips or fails if it cannot.

    `name` and `profile` (hack/cluster.sh's KUBEFORGE_CLUSTER_NAME and KUBEFORGE_CLUSTER_PROFILE):
    another cluster than the test suite's, e.g. bench/scale_bench.py's with production client limits.
    KUBEFORGE_KUBECONFIG points the tests at a cluster someone else runs
    (e.g. kind on a workstation); the fake-pod annotations of hack/kwok then
    do nothing, so tests that rely on them will not pass there.
    """
    from kubernetes import config

    kubectl = binaries_dir() / "kubectl"
    kubectl_binary = str(kubectl) if kubectl.exists() else (shutil.which("kubectl") or str(kubectl))
    external = os.environ.get("KUBEFORGE_KUBECONFIG")
    kubeconfig = external or _cluster_up(name, profile)
    return Cluster(kubeconfig, kubectl_binary, config.new_client_from_config(config_file=kubeconfig))


def _cluster_up(name: str | None = None, profile: str | None = None) -> str:
    env = {**os.environ, "KUBEFORGE_NO_BUILD": "1", **cluster_env(name, profile)}
    try:
        done = subprocess.run([str(CLUSTER_SH), "up"], env=env, capture_output=True, text=True,
                              timeout=UP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hack/cluster.sh up did not finish in {UP_TIMEOUT_S}s")
    if done.returncode == EXIT_NO_BINARIES and not cluster_required():
        pytest.skip(f"local cluster unavailable: {done.stderr.strip().splitlines()[-1]} "
                    "(KUBEFORGE_REQUIRE_CLUSTER=1 turns this skip into a failure)")
    if done.returncode != 0:
        pytest.fail(f"hack/cluster.sh up exited {done.returncode}:\n{done.stderr[-4000:]}", pytrace=False)
    return done.stdout.strip().splitlines()[-1]


def cluster_env(name: str | None = None, profile: str | None = None) -> dict[str, str]:
    """hack/cluster.sh's environment for a cluster other than the default one (empty: the default)."""
    env = {"KUBEFORGE_CLUSTER_NAME": name} if name else {}
    return {**env, "KUBEFORGE_CLUSTER_PROFILE": profile} if profile else env


def delete_cluster(name: str) -> None:
    """hack/cluster.sh down for cluster `name` (one a bench made for itself)."""
    subprocess.run([str(CLUSTER_SH), "down"], env={**os.environ, **cluster_env(name)}, capture_output=True, text=True,
                   timeout=UP_TIMEOUT_S, check=True)


def namespace_name(test_name: str) -> str:
    """A fresh, valid namespace name that still says which test made it."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{secrets.token_hex(3)}"


