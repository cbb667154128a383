"""`kubeforge run samples/trainingjob.yaml --local`: the sample TrainingJob trained by 2 local "nodes", metrics printed."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workload
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "trainingjob.yaml"


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("localrun")
    result = subprocess.run(
        [sys.executable, "-m", "kubeforge.cli", "run", str(SAMPLE), "--local", "--nodes", "2", "--max-steps", "4",
         "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=600,
    )
    return workdir, result


def test_the_sample_trainingjob_trains_locally_on_two_nodes(local_run):
    _, result = local_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 node(s) x 1 process(es), launcher deepspeed" in result.stdout
    assert "step 4/4" in result.stdout


def test_the_local_run_prints_the_eval_metrics(local_run):
    _, result = local_run
    assert "eval accuracy" in result.stdout and "macro F1" in result.stdout


def test_the_local_run_says_where_the_hf_and_onnx_model_went_and_they_are_there(local_run):
    workdir, result = local_run
    assert f"ONNX:         {workdir / 'model' / 'onnx' / 'model.onnx'}" in result.stdout
    assert (workdir / "model" / "onnx" / "model.onnx").is_file() and (workdir / "model" / "hf" / "config.json").is_file()
