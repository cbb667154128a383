"""`kubeforge run job.yaml --local` with the user's own command: the pod's termination-message contract in the run
directory, and a result that reports the real wall time, each node's exit code and rank 0's message."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.workload

# A stand-in user script: every node writes where TERMINATION_MESSAGE_PATH says, as in a pod.
SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    rank = int(os.environ["RANK"])
    path = os.environ["TERMINATION_MESSAGE_PATH"]
    if os.environ.get("FAIL_RANK") == str(rank):
        sys.exit(3)
    if os.environ.get("FAIL_RANK"):
        time.sleep(120)  # stopped by the runner when the other node fails
    time.sleep(1.0)
    with open(path, "w") as f:
        json.dump({"rank": rank, "path": path, "answer": 42}, f)
""")


def job_yaml(tmp_path, fail_rank: str = "") -> str:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = f"\n  env: [{{name: FAIL_RANK, value: '{fail_rank}'}}]" if fail_rank else ""
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(f"""
        apiVersion: kubeforge.io/v1alpha1
        kind: TrainingJob
        metadata: {{name: mine}}
        spec:
          nodes: 2
          command: [{sys.executable!r}, {str(script)!r}]""") + env + "\n")
    return str(path)


def run_local(tmp_path, fail_rank: str = "") -> subprocess.CompletedProcess:
    workdir = tmp_path / "run"
    return subprocess.run([sys.executable, "-m", "kubeforge.cli", "run", job_yaml(tmp_path, fail_rank), "--local",
                           "--workdir", str(workdir)], capture_output=True, text=True, timeout=300)


def test_a_command_writes_its_summary_in_the_run_directory_and_the_runner_prints_it(tmp_path):
    result = run_local(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    own = tmp_path / "run" / "termination-0.json"
    assert f'"path": "{own}"' in result.stdout and '"answer": 42' in result.stdout
    assert (tmp_path / "run" / "termination-1.json").is_file()
    assert "exit codes: node 0: 0, node 1: 0" in result.stdout
    wall = float(result.stdout.split("succeeded in ")[1].split(" s")[0])
    assert wall >= 1.0  # the script slept 1 s: the runner's own clock, not a summary's field
    assert "None steps" not in result.stdout


def test_a_failing_node_is_named_with_its_code_and_the_stopped_one_with_sigterms(tmp_path):
    result = run_local(tmp_path, fail_rank="1")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "failed (exit code 3, node 1 first)" in result.stdout
    assert "exit codes: node 0: 143, node 1: 3" in result.stdout
