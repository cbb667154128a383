"""launcher ray in the trainer: the `ray start` line each node runs, the version check, and the local runner's Ray env."""

from __future__ import annotations

import dataclasses
import importlib.metadata

import pytest

from kubeforge.contract import LaunchEnv, RayEnv
from kubeforge.localrun import LOCAL_RAY_ADDRESS, local_launch_envs
from kubeforge_workloads.train.raynode import ray_start_command, version_mismatch
from tests.unit.trainingjob_wrappers import MakeTrainingJob


def launch(rank: int, **ray) -> LaunchEnv:
    return LaunchEnv(job_name="j", namespace="n", master_addr="j-a1-0.j", nnodes=2, nproc_per_node=1, node_rank=rank,
                     launcher="ray", pod_ip="10.1.0.7", ray=RayEnv(**ray))


def flags(rank: int, **ray) -> list[str]:
    return ray_start_command(launch(rank, **ray), "/tmp/kf-ray-x")[3:]  # after python -m ray.scripts.scripts


def test_rank_0_starts_the_head_on_the_contracts_ports_without_dashboard_or_usage_stats():
    assert flags(0) == ["start", "--block", "--head", "--port=6379", "--ray-client-server-port=10001",
                        "--node-ip-address=10.1.0.7", "--node-manager-port=6380", "--temp-dir=/tmp/kf-ray-x",
                        "--disable-usage-stats", "--include-dashboard=false"]


def test_other_ranks_join_the_head_through_the_headless_service_name():
    argv = flags(1)
    assert "--address=j-a1-0.j:6379" in argv and "--head" not in argv
    assert "--node-ip-address=10.1.0.7" in argv  # the pod's own IP, from the downward API


def test_cpus_and_the_object_store_are_passed_when_known():
    argv = flags(1, num_cpus=4, object_store_memory=2**30)
    assert {"--num-cpus=4", f"--object-store-memory={2**30}"} <= set(argv)


def test_the_dashboard_listens_on_all_pod_addresses_when_asked():
    assert {"--include-dashboard=true", "--dashboard-host=0.0.0.0", "--dashboard-port=8265"} <= set(flags(0, dashboard_port=8265))


def test_a_local_dashboard_stays_on_loopback():
    local = dataclasses.replace(launch(0, dashboard_port=8265), pod_ip=LOCAL_RAY_ADDRESS)
    assert "--dashboard-host=127.0.0.1" in ray_start_command(local, "/tmp/x")


def test_the_users_start_args_win_over_ours_for_the_same_flag():
    argv = flags(1, num_cpus=4, start_args=("--num-cpus=2", "--resources", '{"disk": 1}'))
    assert "--num-cpus=4" not in argv and argv[-3:] == ["--num-cpus=2", "--resources", '{"disk": 1}']


def test_a_version_other_than_the_images_is_named(monkeypatch):
    have = importlib.metadata.version("ray")
    assert version_mismatch(launch(0, version=have)) is None
    assert version_mismatch(launch(0)) is None  # no version asked: no check
    assert version_mismatch(launch(0, version="1.0.0")) == f"spec.ray.version is 1.0.0 but this image has Ray {have}"


@pytest.fixture
def local_ray_envs(tmp_path):
    job = MakeTrainingJob().ray().nodes(2).cpu("16").memory("512Gi").model()
    return local_launch_envs(job, tmp_path, port=29999, cores=2)


def test_a_local_run_puts_every_ray_node_on_the_loopback_address_ray_does_not_rewrite(local_ray_envs):
    assert LOCAL_RAY_ADDRESS != "127.0.0.1" and LOCAL_RAY_ADDRESS.startswith("127.")
    assert {(e.master_addr, e.pod_ip) for e in local_ray_envs} == {(LOCAL_RAY_ADDRESS, LOCAL_RAY_ADDRESS)}


def test_local_ray_nodes_share_the_heads_ports_but_each_has_its_own_raylet_port(local_ray_envs):
    head, worker = (e.ray for e in local_ray_envs)
    assert (head.port, head.client_port) == (worker.port, worker.client_port)
    assert head.node_manager_port != worker.node_manager_port
    assert 6379 not in {head.port, head.node_manager_port, worker.node_manager_port}  # free ports, not the defaults


def test_local_ray_nodes_share_the_cores_and_get_a_small_object_store(local_ray_envs):
    assert {e.ray.num_cpus for e in local_ray_envs} == {1}
    assert {e.ray.object_store_memory for e in local_ray_envs} == {256 * 2**20}  # not 30% of 512Gi


def test_an_explicit_object_store_is_kept_locally(tmp_path):
    job = MakeTrainingJob().ray(objectStoreMemory="100Mi").nodes(2).model()
    assert local_launch_envs(job, tmp_path, port=1, cores=2)[0].ray.object_store_memory == 100 * 2**20


def test_the_progress_helper_reports_from_the_driver_only(tmp_path, monkeypatch):
    import json

    from kubeforge_workloads.train import progress

    monkeypatch.setattr(progress, "_reporter", None)
    monkeypatch.setenv("KUBEFORGE_PROGRESS_FILE", str(tmp_path / "progress.jsonl"))
    monkeypatch.setenv("NODE_RANK", "1")  # a Ray task on another node
    progress.report_progress(1, 10)
    assert not (tmp_path / "progress.jsonl").exists()
    monkeypatch.setenv("NODE_RANK", "0")  # the driver, on the head
    progress.report_progress(2, 10, loss=0.5)
    assert json.loads((tmp_path / "progress.jsonl").read_text()) == {"step": 2, "totalSteps": 10, "loss": 0.5}


def test_every_ray_process_gets_one_explicit_auth_mode(monkeypatch):
    from kubeforge_workloads.train import raynode

    seen = {}
    monkeypatch.setattr(raynode, "version_mismatch", lambda _launch: None)
    monkeypatch.setattr(raynode.RayNode, "run_worker", lambda node: seen.update(node.env) or 0)
    monkeypatch.setattr(raynode.RayNode, "stop", lambda node, grace_s=0: None)
    monkeypatch.setattr(raynode, "_stop_on_signals", lambda node: None)
    monkeypatch.setenv("RAY_AUTH_MODE", "")  # recorded, so the agent's own setting is undone after the test
    monkeypatch.delenv("RAY_AUTH_MODE")
    assert raynode.run_ray_node(launch(1), {}, []) == 0
    assert seen["RAY_AUTH_MODE"] == "disabled"  # not left to a ~/.ray/auth_token on the machine
    raynode.run_ray_node(launch(1), {"RAY_AUTH_MODE": "token"}, [])
    assert seen["RAY_AUTH_MODE"] == "token"  # the job's own env (spec.env) wins


def test_a_local_ray_run_says_where_the_nodes_are_and_where_the_drivers_output_goes(local_ray_envs):
    from kubeforge.localrun import describe

    assert describe(local_ray_envs[0]) == ("2 Ray node(s) on 127.0.0.2 (rank 0 the head, its log node-0.log has the "
                                           "driver's output), 1 CPU(s), 256 MiB object store each")
