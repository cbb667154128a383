"""The real node for e2e tests: its own cluster with kubelet + containerd joined (hack/cluster.sh up --real).

The cluster is `<KUBEFORGE_CLUSTER_NAME>-real`, apart from the kwok cluster the integration tests share,
so the session operator (a local process, cluster-wide) never reconciles what the chart's in-cluster
operator owns here. Where the node cannot run (not root, no cgroups, binaries or images not built) the
tests skip with the reason; KUBEFORGE_REQUIRE_REAL_NODE=1 (.ci/run) turns that skip into a failure.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.chart import helm_binary
from tests.integration.clusterkit import REPO, Cluster, binaries_dir
from tests.waiting import wait_for

NODE = "real-0"
POOL = {"nodeSelector": {"kubeforge.io/pool": "real"},
        "tolerations": [{"key": "kubeforge.io/real-node", "operator": "Exists", "effect": "NoSchedule"}]}
IMAGE_REPO = "ghcr.io/kubeforge"
IMAGES = ("operator", "trainer", "server")
CTR = ["/usr/bin/ctr", "--address", "/run/kubeforge-realnode/containerd.sock", "-n", "k8s.io"]
DOCKER = ["/usr/bin/docker", "-H", "unix:///run/kubeforge-realnode/docker.sock"]
UP_TIMEOUT_S = 900
# The real node is one per machine: `up --real` for another cluster moves it there and removes the
# pods it ran. A test session holds this lock from before `up` until it exits, so a second session
# (another worktree, or CI) waits for it instead of pulling the node from under a running test.
IN_USE_LOCK = Path("/run/kubeforge-realnode/in-use.lock")
IN_USE_WAIT_S = 2400
_held: list = []  # the open lock file, kept for the life of the test process


def required() -> bool:
    return os.environ.get("KUBEFORGE_REQUIRE_REAL_NODE", "0") == "1"


def unavailable(reason: str) -> None:
    if required():
        pytest.fail(f"real node required (KUBEFORGE_REQUIRE_REAL_NODE=1) but {reason}", pytrace=False)
    pytest.skip(f"real node unavailable: {reason} (KUBEFORGE_REQUIRE_REAL_NODE=1 makes this a failure)")


def image_tag() -> str:
    for line in (REPO / "charts/kubeforge/Chart.yaml").read_text().splitlines():
        if line.startswith("appVersion:"):
            return line.split(":", 1)[1].strip().strip('"')
    raise AssertionError("no appVersion in Chart.yaml")


def images() -> list[str]:
    return [f"{IMAGE_REPO}/{name}:{image_tag()}" for name in IMAGES]


def preflight() -> None:
    """Skip (or fail in CI) with the reason when this machine cannot run the real node."""
    if os.geteuid() != 0:
        unavailable("it needs root (cgroups, network namespaces, iptables)")
    if not (Path("/sys/fs/cgroup/memory").is_dir() or Path("/sys/fs/cgroup/cgroup.controllers").exists()):
        unavailable("this machine has no cgroups")
    missing = [b for b in ("kubelet", "kube-proxy", "metrics-server") if not (binaries_dir() / b).exists()]
    if missing:
        unavailable(f"{', '.join(missing)} not built (hack/build-binaries.sh realnode)")
    for image in images():
        if not Path(DOCKER[0]).exists() or subprocess.run([*DOCKER, "image", "inspect", image],
                                                            capture_output=True).returncode != 0:
            unavailable(f"image {image} not built (make images)")


@dataclass(frozen=True)
class RealCluster(Cluster):
    name: str = ""

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def helm(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        done = subprocess.run([helm_binary(), *args], env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
        return done


def hold_the_node(name: str) -> None:
    """Waits (with a deadline) for the machine's real node to be free, then holds it until this process exits."""
    if _held:
        return
    IN_USE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    lock = IN_USE_LOCK.open("a+")

    def taken() -> bool:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise AssertionError(f"held by {lock.read().strip() or 'another session'}") from None
        return True
    wait_for(taken, timeout=IN_USE_WAIT_S, interval=5, max_interval=10,
             message=f"the real node to be free ({IN_USE_LOCK})")
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()} cluster {name} cwd {os.getcwd()} since {time.strftime('%H:%M:%S')}\n")
    lock.flush()
    _held.append(lock)


def start_real_cluster() -> RealCluster:
    from kubernetes import config

    preflight()
    name = f"{os.environ.get('KUBEFORGE_CLUSTER_NAME', 'kubeforge')}-real"
    hold_the_node(name)
    env = dict(os.environ, KUBEFORGE_CLUSTER_NAME=name, KUBEFORGE_NO_BUILD="1")
    done = subprocess.run([str(REPO / "hack/cluster.sh"), "up", "--real"], env=env, capture_output=True, text=True,
                          timeout=UP_TIMEOUT_S)
    if done.returncode != 0:
        pytest.fail(f"hack/cluster.sh up --real exited {done.returncode}:\n{done.stderr[-4000:]}", pytrace=False)
    kubeconfig = done.stdout.strip().splitlines()[-1]
    load = subprocess.run([str(REPO / "hack/realnode/node.sh"), "load-images", *images()], capture_output=True,
                          text=True, timeout=UP_TIMEOUT_S)
    assert load.returncode == 0, load.stderr[-4000:]
    kubectl = str(binaries_dir() / "kubectl")
    return RealCluster(kubeconfig, kubectl, config.new_client_from_config(config_file=kubeconfig), name=name)


def restricted_namespace(cluster: RealCluster, name: str) -> str:
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", timeout=180)
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    return name


def host_path_claim(cluster: RealCluster, namespace: str, claim: str, path: str) -> None:
    """A ReadWriteMany claim bound to a hostPath volume on the one real node, writable by UID 10001."""
    # A volume left by an earlier run still names that run's (deleted) claim: make it afresh.
    cluster.kubectl("delete", "pv", f"{namespace}-{claim}", "--ignore-not-found", "--wait=true", timeout=120)
    host = Path(path)
    subprocess.run(["rm", "-rf", str(host)], check=True)
    host.mkdir(parents=True)
    os.chown(host, 10001, 0)
    host.chmod(0o770)
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{namespace}-{claim}"},
         "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": "",
                  "persistentVolumeReclaimPolicy": "Retain",
                  "claimRef": {"namespace": namespace, "name": claim}, "hostPath": {"path": str(host)}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim, "namespace": namespace},
         "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": f"{namespace}-{claim}",
                  "resources": {"requests": {"storage": "5Gi"}}}},
    ]}))


def container_ids(pod: dict) -> list[str]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return [s["containerID"].split("://", 1)[1] for s in statuses if s.get("containerID")]


def sigkill_container(container_id: str) -> None:
    """A real SIGKILL through the runtime (containerd), as the OOM killer or a crash would deliver."""
    subprocess.run([*CTR, "tasks", "kill", "--signal", "SIGKILL", container_id], check=True, capture_output=True)


def runtime_process_user(container_id: str) -> tuple[int, dict]:
    """The UID the runtime started the container's process as, and its OCI security bits."""
    info = json.loads(subprocess.run([*CTR, "containers", "info", container_id], check=True, capture_output=True,
                                     text=True).stdout)
    process = info["Spec"]["process"]
    return process["user"]["uid"], process


def client_pod(cluster: RealCluster, namespace: str, name: str, script: str, image: str) -> dict:
    """A restricted pod on the real node that runs a Python script (the server image has Python) and exits."""
    spec = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"restartPolicy": "Never", **POOL,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "client", "image": image, "imagePullPolicy": "Never",
                                     "command": ["python", "-c", script],
                                     "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(spec))
    return spec


def pod_result(cluster: RealCluster, namespace: str, name: str, timeout: float = 180) -> tuple[str, str]:
    """(phase, logs) once the pod finished."""
    def finished():
        phase = cluster.json("-n", namespace, "get", "pod", name)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None
    phase = wait_for(finished, timeout=timeout, message=f"pod {name} to finish", interval=1)
    return phase, cluster.kubectl("-n", namespace, "logs", name).stdout


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.0f}s"
