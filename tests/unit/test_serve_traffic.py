"""A canary server's traffic numbers (kubeforge_workloads.serve.traffic) and the request its reporter sends."""

from __future__ import annotations

import json

from kubeforge_workloads import apireport
from kubeforge_workloads.serve.config import load_config
from kubeforge_workloads.serve.traffic import TrafficStats


def test_only_inference_posts_count_and_5xx_are_errors():
    stats = TrafficStats()
    for status in (200, 200, 400, 500, 503):
        stats.record("POST", status, 0.010)
    stats.record("GET", 500, 9.0)  # a probe or /metrics: no traffic to judge
    assert stats.snapshot() == {"requests": 5, "errors": 2, "p95Ms": 10.0}


def test_p95_is_the_nearest_rank_over_the_recent_window():
    stats = TrafficStats(window=100)
    for ms in range(1, 201):  # the first 100 fall out of the window
        stats.record("POST", 200, ms / 1000)
    assert stats.snapshot()["p95Ms"] == 195.0 and stats.snapshot()["requests"] == 200
    assert TrafficStats().snapshot() == {"requests": 0, "errors": 0, "p95Ms": None}


def test_the_report_is_a_merge_patch_of_the_pods_key_only():
    request = apireport.configmap_key_request("10.96.0.1", "443", "ml", "mep-canary-report", "mep-canary-abc", {"requests": 3}, "TOKEN")
    assert request.full_url == "https://10.96.0.1:443/api/v1/namespaces/ml/configmaps/mep-canary-report"
    assert request.get_method() == "PATCH" and request.headers["Content-type"] == "application/merge-patch+json"
    assert json.loads(request.data) == {"data": {"mep-canary-abc": json.dumps({"requests": 3})}}


def test_reporting_needs_the_pods_name_and_namespace():
    env = {"KUBEFORGE_MODEL_DIR": "/m", "KUBEFORGE_REPORT_CONFIGMAP": "mep-canary-report", "KUBEFORGE_POD_NAME": "p",
           "KUBEFORGE_POD_NAMESPACE": "ml"}
    assert load_config([], env).report_every_s == 5.0
    try:
        load_config([], {**env, "KUBEFORGE_POD_NAME": ""})
    except SystemExit as refused:
        assert refused.code == 2
    else:
        raise AssertionError("a report without the pod's name was accepted")
