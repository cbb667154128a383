"""Rank 0's reports: the progress ConfigMap merge-patch, its throttle, and the termination message."""

import json

from kubeforge import contract
from kubeforge_workloads.train.report import ProgressReporter, progress_request, summary_message


def test_progress_is_a_merge_patch_of_the_jobs_own_progress_config_map():
    request = progress_request("10.96.0.1", "443", "ml", "bert", {"step": 5, "totalSteps": 10}, "TOKEN")
    assert (request.get_method(), request.full_url) == ("PATCH", "https://10.96.0.1:443/api/v1/namespaces/ml/configmaps/bert-progress")
    assert request.get_header("Content-type") == "application/merge-patch+json"
    assert request.get_header("Authorization") == "Bearer TOKEN"
    body = json.loads(request.data)
    assert json.loads(body["data"][contract.PROGRESS_KEY]) == {"step": 5, "totalSteps": 10}


def test_an_ipv6_api_server_address_is_bracketed():
    assert progress_request("fd00::1", "443", "ml", "p", {}, "t").full_url.startswith("https://[fd00::1]:443/")


class RecordingReporter(ProgressReporter):
    def __init__(self, clock, account_dir):
        env = {contract.JOB_NAME: "bert", contract.ATTEMPT: "2", "KUBERNETES_SERVICE_HOST": "h"}
        super().__init__("", env, clock=clock, account_dir=account_dir)
        self.sent = []

    def _send(self, record):
        self.sent.append(record)


def test_each_report_names_its_attempt(tmp_path):
    (tmp_path / "token").write_text("t")
    reporter = RecordingReporter(lambda: 0.0, tmp_path)
    reporter.report({"step": 1})
    assert reporter.sent == [{"step": 1, "attempt": 2}]


def test_reports_are_throttled_but_the_final_record_always_goes(tmp_path):
    (tmp_path / "token").write_text("t")
    now = [0.0]
    reporter = RecordingReporter(lambda: now[0], tmp_path)
    for step in range(1, 6):
        now[0] = step * 4.0  # every 4 s against a 10 s throttle
        reporter.report({"step": step}, final=step == 5)
    assert [r["step"] for r in reporter.sent] == [1, 4, 5]


def test_outside_a_pod_progress_only_goes_to_the_file(tmp_path):
    reporter = ProgressReporter(str(tmp_path / "progress.jsonl"), {}, account_dir=tmp_path)
    reporter.report(contract.progress_record(1, 2, 0.5))
    assert not reporter.in_pod
    assert json.loads((tmp_path / "progress.jsonl").read_text()) == {"step": 1, "totalSteps": 2, "loss": 0.5}


def test_an_oversized_summary_keeps_what_status_result_needs_within_4096_bytes():
    summary = {"metrics": {"accuracy": 0.9, "f1": 0.8, "junk": "x" * 5000}, "modelUri": "pvc://m/r", "steps": 7}
    message = summary_message(summary)
    assert len(message.encode()) <= 4096
    assert json.loads(message) == {"metrics": {"accuracy": 0.9, "f1": 0.8}, "modelUri": "pvc://m/r", "steps": 7}
