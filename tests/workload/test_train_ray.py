"""launcher ray, as real processes: a 2-node Ray cluster on loopback runs a plain Ray program, Ray Train and Ray Data
unchanged under `kubeforge run --local`, and a lost node restarts the group and reruns the driver.

Each cluster is kept small for a shared 2-core machine: 1 CPU and a 100 MiB object store per
node, no dashboard, no usage stats. One cluster at a time (each test runs its own).
"""

from __future__ import annotations

import csv
import ipaddress
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kubeforge import contract
from kubeforge.localprocs import descendants
from tests.waiting import wait_for

from .train_fixtures import Group

pytestmark = pytest.mark.workload
PROGRAMS = Path(__file__).resolve().parent / "ray_programs"


def run_local(tmp_path: Path, program: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    """`kubeforge run job.yaml --local` of a 2-node launcher-ray job whose driver is `program`."""
    job = tmp_path / "job.yaml"
    env_yaml = ", ".join(f"{{name: {k}, value: {json.dumps(v)}}}" for k, v in env.items())
    job.write_text(textwrap.dedent(f"""
        apiVersion: kubeforge.io/v1alpha1
        kind: TrainingJob
        metadata: {{name: {Path(program).stem.replace('_', '-')}}}
        spec:
          launcher: ray
          nodes: 2
          ray: {{objectStoreMemory: 100Mi}}
          env: [{env_yaml}]
          command: [{sys.executable!r}, {str(PROGRAMS / program)!r}]
        """))
    workdir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "kubeforge.cli", "run", str(job), "--local", "--workdir", str(workdir)],
                            capture_output=True, text=True, timeout=420)
    return result, workdir


def driver_output(workdir: Path) -> str:
    return (workdir / "node-0.log").read_text()


def test_a_plain_ray_program_squares_on_both_nodes(tmp_path):
    result, workdir = run_local(tmp_path, "squares.py", {"UNUSED": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    out = driver_output(workdir)
    assert "[0, 1, 4, 9]\n" in out
    assert "nodes used: 2 of 2" in out  # the four tasks ran on both Ray nodes
    assert "exit codes: node 0: 0, node 1: 0" in result.stdout
    summary = json.loads((workdir / "termination-0.json").read_text())
    assert (summary["driverExitCode"], summary["rayNodes"]) == (0, 2)


def test_ray_train_fits_a_torch_model_with_one_worker_on_each_node(tmp_path):
    result, workdir = run_local(tmp_path, "torch_trainer.py", {"RESULT_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    out = driver_output(workdir)
    assert "world size 2, final loss 0.0000" in out and "weights [1.0, 1.0, 1.0, 1.0]" in out
    nodes = {(tmp_path / f"rank-{rank}.node").read_text() for rank in (0, 1)}
    assert len(nodes) == 2  # DDP across two Ray nodes, not two processes of one


def test_ray_data_maps_batches_over_a_csv(tmp_path):
    rows = [{"id": i, "price": 1.5 * (i % 7) + 1, "quantity": i % 5 + 1} for i in range(100)]
    with open(tmp_path / "sales.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "price", "quantity"])
        writer.writeheader()
        writer.writerows(rows)
    result, workdir = run_local(tmp_path, "data_csv.py", {"CSV_PATH": str(tmp_path / "sales.csv")})
    assert result.returncode == 0, result.stdout + result.stderr
    revenue = sum(r["price"] * r["quantity"] for r in rows)
    assert f"rows 100 revenue {revenue}" in driver_output(workdir)


def ray_sockets(group: Group) -> list:
    """Every TCP socket of the group's processes (agents, Ray, driver, Ray workers)."""
    import psutil

    pids = {pid for proc in group.procs for pid in [proc.pid, *descendants(proc.pid)]}
    return [c for c in psutil.net_connections(kind="tcp") if c.pid in pids]


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return (address.ipv4_mapped or address).is_loopback if address.version == 6 else address.is_loopback


def test_a_lost_node_restarts_the_group_and_the_driver_runs_again(tmp_path):
    env = {"RESULT_DIR": str(tmp_path)}
    command = [sys.executable, str(PROGRAMS / "until_killed.py")]
    first = Group(tmp_path, launcher="ray", recipe={}, command=command, env=env).start()
    try:
        wait_for(lambda: (tmp_path / "attempt-1.started").exists() and first.progress(), timeout=240,
                 message="the attempt-1 driver started and reported progress")
        sockets = ray_sockets(first)
        assert sockets and not [c for c in sockets if c.raddr and not loopback(c.raddr.ip)]  # dialled: loopback only
        first.kill_node(1, signal.SIGKILL)  # the pod of rank 1 is lost
        head = first.procs[0].wait(timeout=120)
    finally:
        first.kill_all()
    assert head == contract.PEER_LOST_EXIT_CODE, first.logs()  # retryable: the operator restarts the group
    assert "a Ray node was lost" in first.summary(0)["error"]

    second = Group(tmp_path, launcher="ray", recipe={}, command=command, env=env, attempt=2).start()
    assert second.wait(timeout=300) == [0, 0], second.logs()
    assert (tmp_path / "attempt-2.started").exists()
    assert "driver finished attempt 2 after 3 steps" in second.logs(tail=100_000)
    assert second.progress()[-1] == {"step": 3, "totalSteps": 3}
