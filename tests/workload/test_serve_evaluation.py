"""The held-out evaluation a server pod runs before it turns Ready (init container model-eval), as a real process on the
tiny model: the metrics training reports, the operator's gate applied, the report in the termination message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kubeforge import contract, servecontract as sc
from kubeforge_workloads import objectstore as obs
from kubeforge_workloads.serve.evaluate import scores

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

TEXTS = ["the movie was great", "terrible food and bad service", "hello world", "it is ok", "one two three",
         "i love this film", "i hate the night", "a very fine day", "not good", "really bad"]
GATE = [{"metric": "accuracy", "op": ">=", "value": 0.9}]


@pytest.fixture(scope="module")
def served_labels(tiny_model_dir, tmp_path_factory) -> list[str]:
    """What the tiny (randomly initialised) model answers for TEXTS, from a real server: the held-out truth of a
    file it passes; shifted by one label, the truth of a file it fails."""
    from tests.workload.serve_fixtures import ServerProcess

    server = ServerProcess(tiny_model_dir, tmp_path_factory.mktemp("labels") / "server.log").start().wait_ready()
    try:
        answer = httpx.post(server.url + "/predict", json={"texts": TEXTS}, timeout=30).json()
    finally:
        server.terminate()
    return [p["label"] for p in answer["predictions"]]


def evaluate(model_dir: Path, data: Path | str, gate: list[dict], tmp_path: Path, **env: str) -> tuple[int, dict]:
    """Run the init container's command as a process with the server's env; (exit code, termination message)."""
    message = tmp_path / "termination-log"
    run_env = {**os.environ, "HF_HUB_OFFLINE": "1", sc.MODEL_DIR: str(model_dir), sc.EVAL_URI: str(data),
               sc.EVAL_GATE: json.dumps(gate), contract.TERMINATION_LOG: str(message), **env}
    done = subprocess.run([sys.executable, "-m", "kubeforge_workloads.serve.evaluate"], env=run_env,
                          capture_output=True, text=True, timeout=180)
    return done.returncode, json.loads(message.read_text()) if message.exists() else {"stderr": done.stderr[-3000:]}


def jsonl(path: Path, labels: list) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in zip(TEXTS, labels)))
    return path


def shifted(labels: list[str]) -> list[str]:
    from tests.workload.serve_fixtures import TINY_LABELS

    return [TINY_LABELS[(TINY_LABELS.index(label) + 1) % len(TINY_LABELS)] for label in labels]


def test_a_model_that_agrees_with_the_held_out_labels_passes_and_reports_its_metrics(tiny_model_dir, served_labels, tmp_path):
    code, report = evaluate(tiny_model_dir, jsonl(tmp_path / "heldout.jsonl", served_labels), GATE, tmp_path)
    assert (code, report["passed"]) == (0, True), report
    assert report["metrics"]["accuracy"] == 1.0 and report["metrics"]["f1"] == 1.0 and report["metrics"]["samples"] == len(TEXTS)
    assert 0 < report["metrics"]["loss"] < 1.1  # -ln p(label) of the argmax of 3 labels: under ln 3


def test_a_worse_model_fails_naming_metric_value_and_threshold_and_exits_1(tiny_model_dir, served_labels, tmp_path):
    code, report = evaluate(tiny_model_dir, jsonl(tmp_path / "heldout.jsonl", shifted(served_labels)), GATE, tmp_path)
    assert (code, report["passed"], report["failed"]) == (1, False, "accuracy 0 fails the threshold accuracy >= 0.9"), report
    assert report["metrics"]["accuracy"] == 0.0


def test_a_csv_with_label_indexes_and_own_columns_and_a_not_worse_floor(tiny_model_dir, served_labels, tmp_path):
    from tests.workload.serve_fixtures import TINY_LABELS

    rows = "review,gold\n" + "".join(f"\"{t}\",{TINY_LABELS.index(label)}\n" for t, label in zip(TEXTS, served_labels))
    (tmp_path / "heldout.csv").write_text(rows)
    floor = [{"metric": "loss", "op": "<=", "value": 0.01, "why": "notWorseThanServing: serving has 0.005, tolerance 0.005"}]
    code, report = evaluate(tiny_model_dir, tmp_path / "heldout.csv", floor, tmp_path,
                            **{sc.EVAL_TEXT_COLUMN: "review", sc.EVAL_LABEL_COLUMN: "gold"})
    assert (code, report["metrics"]["accuracy"]) == (1, 1.0), report
    assert report["failed"].startswith("loss ") and report["failed"].endswith(
        "fails the threshold loss <= 0.01 (notWorseThanServing: serving has 0.005, tolerance 0.005)"), report


def test_an_unreadable_file_is_an_error_report_not_a_pass(tiny_model_dir, tmp_path):
    code, report = evaluate(tiny_model_dir, tmp_path / "missing.jsonl", GATE, tmp_path)
    assert code == 1 and "FileNotFoundError" in report["error"] and "passed" not in report, report
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "great", "label": "excellent"}) + "\n")
    code, report = evaluate(tiny_model_dir, tmp_path / "bad.jsonl", GATE, tmp_path)
    assert code == 1 and "label 'excellent' is none of the model's labels" in report["error"], report


def test_the_held_out_file_is_read_from_s3_through_the_model_fetch_path(s3, s3_prefix, tiny_model_dir, served_labels, tmp_path):
    key = f"{s3_prefix}/heldout.jsonl"
    obs.put_bytes(obs.open_bucket(s3.bucket), key, jsonl(tmp_path / "heldout.jsonl", served_labels).read_bytes())
    code, report = evaluate(tiny_model_dir, s3.uri(key), GATE, tmp_path)
    assert (code, report["metrics"]["accuracy"], report["data"]) == (0, 1.0, s3.uri(key)), report


def test_scores_match_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    truth = [0, 1, 2, 2, 1, 0, 0]
    probabilities = [[.8, .1, .1], [.2, .7, .1], [.1, .1, .8], [.6, .3, .1], [.1, .2, .7], [.5, .4, .1], [.3, .3, .4]]
    predicted = [0, 1, 2, 0, 2, 0, 2]
    got = scores(truth, probabilities)
    assert got["accuracy"] == round(accuracy_score(truth, predicted), 6)
    assert got["f1"] == round(f1_score(truth, predicted, average="macro", zero_division=0), 6)
