"""The launcher env contract round-trips and refuses bad values with the variable's name."""

import pytest

from kubeforge import contract
from kubeforge.contract import LaunchEnv


def make_env(**overrides) -> LaunchEnv:
    base = dict(job_name="bert", namespace="ml", master_addr="bert-0.bert", nnodes=4, nproc_per_node=8)
    base.update(overrides)
    return LaunchEnv(**base)


def test_world_size_is_nodes_times_procs():
    assert make_env().world_size == 32
    assert make_env().to_env()[contract.WORLD_SIZE] == "32"


def test_node_rank_is_left_to_the_downward_api_when_unset():
    assert contract.NODE_RANK not in make_env().to_env()
    assert make_env(node_rank=3).to_env()[contract.NODE_RANK] == "3"


def test_env_round_trips_through_from_env():
    launch = make_env(node_rank=1, recipe={"task": "text-classification", "epochs": 2}, omp_num_threads=4, checkpoint_every_steps=50)
    assert LaunchEnv.from_env(launch.to_env()) == launch


def test_missing_master_addr_is_named():
    env = make_env(node_rank=0).to_env()
    del env[contract.MASTER_ADDR]
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        LaunchEnv.from_env(env)


def test_non_integer_node_rank_is_named():
    env = make_env(node_rank=0).to_env() | {contract.NODE_RANK: "zero"}
    with pytest.raises(ValueError, match="NODE_RANK must be an integer"):
        LaunchEnv.from_env(env)


@pytest.mark.parametrize(
    "cpu, procs, expected",
    [(None, 1, None), (8, 2, 4), (8, 8, 1), (1, 4, 1), (3.5, 1, 3)],
)
def test_omp_threads_share_the_cpu_limit(cpu, procs, expected):
    assert contract.omp_threads(cpu, procs) == expected


def test_progress_record_has_the_annotated_keys():
    assert contract.progress_record(10, 100, 0.1234567) == {"step": 10, "totalSteps": 100, "loss": 0.123457}
