"""The node agent's env and commands: what each local process and torchrun get from the LaunchEnv."""

import sys

from kubeforge.contract import LaunchEnv
from kubeforge_workloads.train.launch import (WORKER_MODULE, base_env, node_omp_threads, process_env, target_command,
                                              torchrun_command)


def launch_env(**overrides) -> LaunchEnv:
    values = dict(job_name="bert", namespace="ml", master_addr="bert-0.bert", nnodes=2, nproc_per_node=2, node_rank=1,
                  master_port=29500, attempt=3)
    values.update(overrides)
    return LaunchEnv(**values)


def test_each_local_process_gets_its_global_rank_and_the_rendezvous():
    env = process_env(launch_env(), {}, local_rank=1)
    assert {k: env[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")} == {
        "RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "bert-0.bert", "MASTER_PORT": "29500"}


def test_omp_threads_share_the_cores_unless_the_operator_set_them():
    assert node_omp_threads({"OMP_NUM_THREADS": "7"}, local_procs=4) == "7"
    assert int(node_omp_threads({}, local_procs=10**6)) == 1


def test_on_cpu_deepspeed_is_told_to_use_its_cpu_accelerator_and_the_hub_is_off():
    env = base_env(launch_env(), {}, has_gpu=False)
    assert (env["DS_ACCELERATOR"], env["HF_HUB_OFFLINE"]) == ("cpu", "1")
    assert "DS_ACCELERATOR" not in base_env(launch_env(), {}, has_gpu=True)


def test_without_a_command_each_process_runs_the_recipe_worker():
    assert target_command([]) == [sys.executable, "-m", WORKER_MODULE]
    assert target_command(["python", "train.py"]) == ["python", "train.py"]


def test_torchrun_gets_a_static_rendezvous_for_a_fixed_size_group():
    cmd = torchrun_command(launch_env(), [])
    assert cmd[3:] == ["--nproc-per-node=2", "--nnodes=2", "--node-rank=1", "--master-addr=bert-0.bert",
                       "--master-port=29500", "-m", WORKER_MODULE]


def test_elastic_torchrun_gets_a_node_range_and_a_c10d_rendezvous_per_attempt():
    cmd = torchrun_command(launch_env(min_nodes=1, max_nodes=4), ["python", "train.py"])
    assert "--nnodes=1:4" in cmd and "--rdzv-backend=c10d" in cmd and "--rdzv-id=bert-3" in cmd
    assert cmd[-3:] == ["--no-python", "python", "train.py"]


def test_the_jobs_deepspeed_config_wins_and_the_recipe_fills_only_the_gaps():
    from kubeforge_workloads.train.engines import deepspeed_config

    config = deepspeed_config({"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": "auto",
                               "gradient_clipping": 0.5}, batch_size=16, zero_stage=2, bf16=False)
    assert config["zero_optimization"] == {"stage": 3}
    assert (config["train_micro_batch_size_per_gpu"], config["gradient_clipping"], config["bf16"]) == (16, 0.5, {"enabled": False})


def test_zero_2_overlaps_gradient_reduction_with_backward_unless_told_otherwise():
    from kubeforge_workloads.train.engines import deepspeed_config

    assert deepspeed_config({}, 16, 2, False)["zero_optimization"]["overlap_comm"] is True
    assert deepspeed_config({"zero_optimization": {"overlap_comm": False}}, 16, 2, False)["zero_optimization"]["overlap_comm"] is False
