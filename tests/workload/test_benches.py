"""Every bench in bench/ still runs: each one's --tiny mode (about a second of load, one round), end to end.

They measure nothing here; they prove that an import or API change has not broken a bench, so the
break shows in `make test` and not in a user's first `make bench`. Results go to a temp dir, never
over the committed bench/results/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, f"{script} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def test_serve_bench_tiny_writes_its_table_json_and_plot(tmp_path):
    # One peer (BentoML: the quickest to start that goes through every peer code path: its own venv, cwd
    # and env); the full bench runs all three. The first run on a machine makes that peer's venv.
    run_bench("serve_bench.py", "--tiny", "--peers", "bentoml", "--results-dir", str(tmp_path), timeout=900)
    result = json.loads((tmp_path / "serve_bench.json").read_text())
    assert {"kubeforge", "kubeforge_grpc", "kubeforge_batch1", "bentoml"} <= result["c32"].keys()
    assert result["startup"]["bentoml"]["cold_start_s"] > 0 and result["figures"]["c_best_peer"] == "bentoml"
    assert "## Side by side" in (tmp_path / "serve_bench.md").read_text()
    assert (tmp_path / "serve_latency_throughput.png").stat().st_size > 0


def test_every_peer_runs_the_model_with_kubeforge_serves_onnx_runtime_options(tiny_model_dir):
    sys.path.insert(0, str(BENCH / "peers"))
    try:
        import onnx_classifier
    finally:
        sys.path.remove(str(BENCH / "peers"))
    from kubeforge_workloads.serve.backends.ort import _session

    ours = _session(str(tiny_model_dir / "onnx" / "model.onnx"), "cpu").get_session_options()
    peer = onnx_classifier.OnnxTextClassifier(str(tiny_model_dir / "onnx")).session.get_session_options()
    for attr in ("graph_optimization_level", "execution_mode", "inter_op_num_threads", "intra_op_num_threads"):
        assert getattr(peer, attr) == getattr(ours, attr), attr
    key = "session.intra_op.allow_spinning"
    assert peer.get_session_config_entry(key) == ours.get_session_config_entry(key) == "0"


def test_train_bench_tiny_runs_all_three_trainers(tmp_path):
    proc = run_bench("train_bench.py", "--tiny", "--results-dir", str(tmp_path), timeout=300)
    result = json.loads((tmp_path / "train_bench.json").read_text())
    assert {"kubeforge", "kubeforgeTorchrun", "hfTrainer"} <= result.keys() and "ratio kubeforge" in proc.stdout
    assert (tmp_path / "train_bench.png").stat().st_size > 0


def test_gpu_check_tiny_runs_the_cpu_reference_and_says_why_it_skips_what_it_cannot_run():
    proc = run_bench("gpu_check.py", "--tiny", timeout=300)
    checks = {line["check"]: line for line in map(json.loads, proc.stdout.splitlines())}
    assert {"onnxruntime-cpu", "onnxruntime-cuda", "tensorrt"} <= checks.keys()


def test_s3_bench_tiny_writes_its_json_and_plot(s3, tmp_path):
    run_bench("s3_bench.py", "--tiny", "--results-dir", str(tmp_path), timeout=900)
    result = json.loads((tmp_path / "s3_bench.json").read_text())
    assert result["upload"]["ratio"] > 0 and result["serve"]["s3ReadyS"] > result["serve"]["fetchS"] > 0
    assert (tmp_path / "s3_bench.png").stat().st_size > 0
