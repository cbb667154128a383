"""`kubeforge run --local`: the operator's launch env, with only the local parts replaced."""

import dataclasses
from pathlib import Path

from kubeforge.localrun import (Overrides, apply_overrides, load_trainingjob, local_launch_envs, prepare_workdir,
                                user_env, worker_command)
from kubeforge.trainingjob.env import launch_env

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "trainingjob.yaml"
LOCAL_FIELDS = {"master_addr", "master_port", "node_rank", "omp_num_threads", "deepspeed_config", "checkpoint_dir",
                "output_dir", "output_uri", "termination_log", "progress_file"}


def local_envs(tmp_path, job=None, cores=2, output=None):
    job = job or apply_overrides(load_trainingjob(str(SAMPLE)), Overrides(nodes=2))
    return job, local_launch_envs(job, tmp_path, port=29999, cores=cores, output=output)


def test_every_worker_gets_the_operators_env_except_the_local_parts(tmp_path):
    job, envs = local_envs(tmp_path)
    operator = dataclasses.asdict(launch_env(job, 1))
    for env in envs:
        local = dataclasses.asdict(env)
        assert {k: v for k, v in local.items() if k not in LOCAL_FIELDS} == {
            k: v for k, v in operator.items() if k not in LOCAL_FIELDS}


def test_workers_meet_on_loopback_with_ranks_0_to_n(tmp_path):
    _, envs = local_envs(tmp_path)
    assert [(e.master_addr, e.master_port, e.node_rank) for e in envs] == [("127.0.0.1", 29999, 0), ("127.0.0.1", 29999, 1)]


def test_volumes_map_into_the_work_directory_and_rank_0s_summary_is_its_own_file(tmp_path):
    _, envs = local_envs(tmp_path)
    assert (envs[0].checkpoint_dir, envs[0].output_dir) == (str(tmp_path / "checkpoints"), str(tmp_path / "model"))
    assert envs[0].output_uri == f"file://{tmp_path / 'model'}"
    assert envs[0].termination_log != envs[1].termination_log
    assert envs[0].deepspeed_config == str(tmp_path / "ds_config.json")


def test_an_output_option_wins_over_the_jobs_uri(tmp_path):
    _, envs = local_envs(tmp_path, output=str(tmp_path / "elsewhere"))
    assert envs[1].output_dir == str(tmp_path / "elsewhere")


def test_threads_never_oversubscribe_the_local_cores(tmp_path):
    _, envs = local_envs(tmp_path, cores=2)
    assert envs[0].omp_num_threads == 1  # the sample asks 64 cores / 8 procs = 8 threads each


def test_without_a_gpu_here_each_node_runs_one_process_not_one_per_requested_gpu():
    job = load_trainingjob(str(SAMPLE))
    assert job.spec.nproc_per_node == 8
    assert apply_overrides(job, Overrides(), has_gpu=False).spec.nproc_per_node == 1
    assert apply_overrides(job, Overrides(), has_gpu=True).spec.nproc_per_node == 8


def test_max_steps_and_nodes_from_the_command_line_override_the_job():
    job = apply_overrides(load_trainingjob(str(SAMPLE)), Overrides(nodes=3, max_steps=5))
    assert (job.spec.nodes, job.spec.recipe.max_steps) == (3, 5)


def test_a_recipe_job_runs_the_trainer_without_a_command():
    assert worker_command(load_trainingjob(str(SAMPLE)))[1:] == ["-m", "kubeforge_workloads.train.cli"]


def test_a_rerun_starts_fresh_unless_asked_to_resume(tmp_path):
    job = load_trainingjob(str(SAMPLE))
    (tmp_path / "checkpoints" / "step-00000010").mkdir(parents=True)
    prepare_workdir(job, tmp_path, resume=True)
    assert (tmp_path / "checkpoints" / "step-00000010").is_dir()
    prepare_workdir(job, tmp_path)
    assert not (tmp_path / "checkpoints").exists()
    assert (tmp_path / "ds_config.json").is_file()


def test_every_local_process_writes_its_termination_message_inside_the_run_directory(tmp_path):
    _, envs = local_envs(tmp_path)
    paths = [env.to_env()["TERMINATION_MESSAGE_PATH"] for env in envs]
    assert paths == [str(tmp_path / "termination-0.json"), str(tmp_path / "termination-1.json")]


def test_the_jobs_literal_env_reaches_the_local_processes_but_valuefrom_cannot():
    job = load_trainingjob(str(SAMPLE))
    job = job.model_copy(update={"spec": job.spec.model_copy(update={"env": [
        {"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]})})
    assert user_env(job) == {"A": "1"}


S3_SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "s3.yaml"


def test_a_local_run_of_an_s3_job_keeps_the_jobs_uris_and_stages_locally(tmp_path):
    from kubeforge.localrun import storage_env

    job = apply_overrides(load_trainingjob(str(S3_SAMPLE)), Overrides(nodes=2))
    envs = local_launch_envs(job, tmp_path, port=29999, cores=2)
    assert envs[0].checkpoint_dir == "s3://kubeforge-test/checkpoints/sentiment-minilm-s3"
    assert (envs[0].output_uri, envs[0].output_dir) == ("s3://kubeforge-test/models/sentiment-minilm", str(tmp_path / "model"))
    assert envs[0].staging_dir == str(tmp_path / "staging")
    # The endpoint from spec.storage; the keys stay the shell's (a Secret is the cluster's).
    assert storage_env(job) == {"AWS_ENDPOINT_URL": "http://seaweedfs.storage.svc:8333", "AWS_REGION": "us-east-1",
                                "KUBEFORGE_S3_PATH_STYLE": "true"}
