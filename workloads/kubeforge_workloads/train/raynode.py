"""launcher ray: this pod's Ray node. Rank 0 starts the head, waits for every node, then runs the user's command as the driver.

The other ranks join the head at <MASTER_ADDR>:<KUBEFORGE_RAY_PORT> (worker 0's name under
the headless Service) and wait; when the head goes away they stop their Ray node and exit 0,
so the Indexed Job completes. The pod's exit code is the driver's; a node lost before or
while the driver runs is PEER_LOST_EXIT_CODE (retryable): the operator restarts the group
and the driver runs again. Ray runs as `ray start --block`, so its processes are children
of this agent (a pod's container, or a local run's process group, takes them all).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubeforge import contract
from kubeforge.contract import LaunchEnv, RayEnv
from kubeforge.localhost import free_port
from kubeforge.localprocs import descendants

from .report import write_termination_message

log = logging.getLogger(__name__)
RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]
POLL_S = 1.0
HEAD_GONE_CHECKS = 3  # consecutive refused connections before a worker takes the head for gone
RAY_STOP_GRACE_S = 10.0  # inside kubeforge run --local's 15 s, and the pod's default 30 s
# Once the head is gone a worker's Ray only waits out its drain trying to reach the GCS: no grace worth giving.
ORPHAN_STOP_GRACE_S = 2.0
# Ray 2.60's `ray start --head` switches token auth on by itself when ~/.ray/auth_token exists and
# RAY_AUTH_MODE is unset, while joining nodes and drivers stay off and are refused: one explicit mode
# for every process of the job. Off by default (the job's pods are the cluster, as with KubeRay's
# default); spec.env RAY_AUTH_MODE=token with RAY_AUTH_TOKEN from a Secret turns it on everywhere.
DEFAULT_AUTH_MODE = "disabled"


def node_ip(launch: LaunchEnv) -> str:
    """The address this Ray node advertises: the pod's IP, or the local run's loopback address."""
    return launch.pod_ip or launch.master_addr


def ray_start_command(launch: LaunchEnv, temp_dir: str) -> list[str]:
    """`ray start --block` for this node; the head (rank 0) with --head. The user's start args win for the same flag."""
    ray = launch.ray or RayEnv()
    ip = node_ip(launch)
    ours = [f"--node-ip-address={ip}", f"--node-manager-port={ray.node_manager_port}", f"--temp-dir={temp_dir}",
            "--disable-usage-stats"]
    if launch.node_rank == 0:
        ours = ["--head", f"--port={ray.port}", f"--ray-client-server-port={ray.client_port}", *ours]
        if ray.dashboard_port:
            host = "127.0.0.1" if is_loopback(ip) else "0.0.0.0"  # kubectl port-forward dials the pod's localhost
            ours += ["--include-dashboard=true", f"--dashboard-host={host}", f"--dashboard-port={ray.dashboard_port}"]
        else:
            ours.append("--include-dashboard=false")
    else:
        ours.append(f"--address={launch.master_addr}:{ray.port}")
    if ray.num_cpus:
        ours.append(f"--num-cpus={ray.num_cpus}")
    if ray.object_store_memory:
        ours.append(f"--object-store-memory={ray.object_store_memory}")
    users = list(ray.start_args)
    taken = {_flag(arg) for arg in users if arg.startswith("--")}
    return [*RAY_CLI, "start", "--block", *[a for a in ours if _flag(a) not in taken], *users]


def _flag(arg: str) -> str:
    return arg.split("=", 1)[0]


def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


def ray_process_env(env: dict, ip: str) -> dict:
    """What Ray's own processes get: no usage stats; on a loopback address (a local run, several runs on one
    machine) the autoscaler's metrics port is a free one instead of the fixed 44217."""
    out = {**env, "RAY_USAGE_STATS_ENABLED": "0"}
    if is_loopback(ip) and "AUTOSCALER_METRIC_PORT" not in env:
        out["AUTOSCALER_METRIC_PORT"] = str(free_port())
    return out


def version_mismatch(launch: LaunchEnv) -> str | None:
    """The error to report when the image's Ray is not spec.ray.version (read without importing ray)."""
    wanted = launch.ray.version if launch.ray else ""
    try:
        have = importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        return "launcher ray needs Ray in the image (pip install 'kubeforge[train]' or ray itself)"
    if wanted and have != wanted:
        return f"spec.ray.version is {wanted} but this image has Ray {have}"
    return None


def run_ray_node(launch: LaunchEnv, env: dict, user_command: list[str]) -> int:
    """This pod's Ray node, to the end: the driver's exit code on the head, 0 on a worker once the head is gone."""
    error = version_mismatch(launch)
    if error:
        return fail(launch, error, 1)
    if launch.node_rank == 0 and not user_command:
        return fail(launch, "launcher ray runs spec.command as the Ray driver, and none was given", 2)
    env = {**env, "RAY_AUTH_MODE": env.get("RAY_AUTH_MODE") or DEFAULT_AUTH_MODE}
    os.environ["RAY_AUTH_MODE"] = env["RAY_AUTH_MODE"]  # this agent's own GCS client, on the head
    temp_dir = tempfile.mkdtemp(prefix="kf-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)  # short: socket paths
    node = RayNode(launch, env, temp_dir)
    _stop_on_signals(node)
    try:
        return node.run_head(user_command) if launch.node_rank == 0 else node.run_worker()
    finally:
        node.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


def fail(launch: LaunchEnv, error: str, code: int) -> int:
    log.error("%s", error)
    if launch.node_rank == 0:
        write_termination_message(launch.termination_log, {"error": error})
    return code


class RayNode:
    """One `ray start --block` and, on the head, the driver; stop() ends both."""

    def __init__(self, launch: LaunchEnv, env: dict, temp_dir: str):
        self.launch, self.env, self.temp_dir = launch, env, temp_dir
        self.ray = launch.ray or RayEnv()
        self.head_address = (launch.master_addr, self.ray.port)
        self.proc: subprocess.Popen | None = None
        self.driver: subprocess.Popen | None = None

    def start(self) -> None:
        command = ray_start_command(self.launch, self.temp_dir)
        log.info("node %s/%s: %s", self.launch.node_rank, self.launch.nnodes, " ".join(command[2:]))
        self.proc = subprocess.Popen(command, env=ray_process_env(self.env, node_ip(self.launch)))

    def run_head(self, user_command: list[str]) -> int:
        started = time.monotonic()
        self.start()
        from .raycluster import ClusterWatch

        watch = ClusterWatch(f"{node_ip(self.launch)}:{self.ray.port}", self.launch.nnodes)
        error = watch.wait_for_nodes(self.proc, self.ray.join_timeout_s)
        if error:
            return fail(self.launch, error, contract.PEER_LOST_EXIT_CODE)
        cluster_s = time.monotonic() - started
        log.info("all %d Ray nodes joined in %.1f s; starting the driver: %s", self.launch.nnodes, cluster_s, user_command)
        message = Path(self.launch.termination_log)
        driver_env = {**self.env, "RAY_ADDRESS": f"{node_ip(self.launch)}:{self.ray.port}"}
        self.driver = subprocess.Popen(user_command, env=driver_env)
        code, error = watch.supervise(self.driver, self.proc)
        if error:
            self.stop_driver()
            return fail(self.launch, error, contract.PEER_LOST_EXIT_CODE)
        if not (message.exists() and message.stat().st_size):  # the driver's own summary wins
            write_termination_message(str(message), {
                "driverExitCode": code, "rayNodes": self.launch.nnodes, "rayVersion": importlib.metadata.version("ray"),
                "clusterStartSeconds": round(cluster_s, 3), "durationSeconds": round(time.monotonic() - started, 3)})
        return code

    def run_worker(self) -> int:
        if not wait_reachable(self.head_address, self.ray.join_timeout_s, lambda: False):
            return fail(self.launch, f"the Ray head {self.head_address[0]}:{self.head_address[1]} did not come up "
                                     f"within {self.ray.join_timeout_s} s", contract.PEER_LOST_EXIT_CODE)
        self.start()
        gone = 0
        while True:
            try:
                code = self.proc.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                gone = 0 if reachable(self.head_address) else gone + 1
                if gone >= HEAD_GONE_CHECKS:
                    log.info("the Ray head is gone: the driver ended, this node leaves")
                    self.stop(ORPHAN_STOP_GRACE_S)
                    return 0
                continue
            if not reachable(self.head_address):
                return 0  # the cluster ended under our Ray node
            log.error("this node's Ray processes exited (code %s) while the head is up", code)
            return contract.PEER_LOST_EXIT_CODE

    def stop_driver(self) -> None:
        _stop(self.driver, RAY_STOP_GRACE_S)

    def stop(self, grace_s: float = RAY_STOP_GRACE_S) -> None:
        """The driver, then Ray: SIGTERM to `ray start --block` drains and stops its processes; SIGKILL what remains."""
        self.stop_driver()
        if self.proc is None:
            return
        children = descendants(self.proc.pid)  # before they are orphaned and reparented
        _stop(self.proc, grace_s)
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone(children)  # before the temp dir is removed: a dying raylet still writes its logs there


def _wait_gone(pids: list[int], timeout_s: float = 5.0) -> None:
    """Until no pid is alive (a zombie counts as gone: init reaps Ray's orphans), or the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)  # other processes' deaths: nothing to wait on but the clock


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _stop(proc: subprocess.Popen | None, grace_s: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def reachable(address: tuple[str, int], timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:  # refused, unreachable, or a name the headless Service does not publish yet
        return False


def wait_reachable(address: tuple[str, int], timeout_s: float, given_up) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not given_up():
        if reachable(address):
            return True
        time.sleep(POLL_S)  # polling a TCP port: nothing to wait on but the clock
    return False


def _stop_on_signals(node: RayNode) -> None:
    # The kubelet (or kubeforge run --local) sends SIGTERM to this agent only.
    def handler(signum, _frame):
        node.stop()
        sys.exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
