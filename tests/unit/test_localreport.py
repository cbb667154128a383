"""What `kubeforge run --local` prints as the result: wall time, each node's exit code, rank 0's termination message."""

import io
import json

from kubeforge.localprocs import container_exit_code as pod_exit_code
from kubeforge.localreport import NodeResults, print_result


def printed(workdir, results, wall_s=8.04) -> str:
    out = io.StringIO()
    print_result(workdir, results, wall_s, out)
    return out.getvalue()


def test_a_signal_is_reported_as_a_container_would_report_it():
    assert (pod_exit_code(-15), pod_exit_code(-9), pod_exit_code(3), pod_exit_code(0)) == (143, 137, 3, 0)


def test_the_run_fails_with_the_first_failed_nodes_code_not_the_stopped_ones():
    assert NodeResults([143, 3], first_failed=1).code == 3
    assert NodeResults([0, 0]).code == 0


def test_a_commands_run_prints_the_real_wall_time_every_exit_code_and_rank_0s_message(tmp_path):
    (tmp_path / "termination-0.json").write_text('{"loss": 0.12, "epochs": 3}')
    text = printed(tmp_path, NodeResults([0, 0]))
    assert "succeeded in 8.0 s; exit codes: node 0: 0, node 1: 0" in text
    assert """result (rank 0's termination message): {"loss": 0.12, "epochs": 3}""" in text
    assert "None steps" not in text and "samples/s" not in text


def test_a_message_that_is_not_json_is_printed_as_written(tmp_path):
    (tmp_path / "termination-0.json").write_text("all good\n")
    assert "termination message): all good" in printed(tmp_path, NodeResults([0]))


def test_no_message_says_so(tmp_path):
    assert "termination message): (none written)" in printed(tmp_path, NodeResults([0]))


def test_the_message_is_cut_where_the_kubelet_cuts_it(tmp_path):
    (tmp_path / "termination-0.json").write_text("x" * 5000)
    line = next(l for l in printed(tmp_path, NodeResults([0])).splitlines() if "termination message" in l)
    assert line.count("x") == 4096


def test_a_failure_names_the_code_the_node_and_shows_the_logs(tmp_path):
    (tmp_path / "node-1.log").write_text("Traceback...\nValueError: bad input\n")
    text = printed(tmp_path, NodeResults([143, 3], first_failed=1))
    assert "failed (exit code 3, node 1 first) in 8.0 s; exit codes: node 0: 143, node 1: 3" in text
    assert "ValueError: bad input" in text


def test_the_recipes_summary_still_gets_its_metrics_and_model_paths(tmp_path):
    summary = {"steps": 4, "resumedFromStep": 0, "samplesPerSecond": 12.5, "modelUri": "file:///m",
               "metrics": {"accuracy": 0.9, "f1": 0.88, "evalSamples": 60}}
    (tmp_path / "termination-0.json").write_text(json.dumps(summary))
    text = printed(tmp_path, NodeResults([0, 0]))
    assert "4 steps (resumed from step 0), 12.5 samples/s" in text
    assert "eval accuracy 0.9000  macro F1 0.8800  (60 samples)" in text
    assert "ONNX:         /m/onnx/model.onnx" in text
