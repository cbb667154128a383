"""Shutdown loses no request: on SIGTERM readiness turns 503 while the server still answers, and a rolling
restart under load (new replica ready, old one drained, as the Deployment's maxUnavailable 0 does) fails none."""

from __future__ import annotations

import signal

import httpx
import pytest

from kubeforge import servecontract as sc
from tests.waiting import wait_for

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload


def test_sigterm_turns_readiness_503_while_requests_are_still_answered(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, "--drain-delay-s", "120")

    server.proc.send_signal(signal.SIGTERM)

    wait_for(lambda: httpx.get(server.url + sc.READY_PATH).status_code == 503, 10, "readiness to fail")
    assert httpx.get(server.url + sc.READY_PATH).json() == {"error": "shutting down"}
    resp = httpx.post(server.url + "/predict", json={"text": "still served"})
    assert resp.status_code == 200
    assert resp.headers["connection"] == "close"  # clients reconnect elsewhere instead of reusing this one
    # A second SIGTERM ends the drain delay at once (as SIGINT does).
    assert server.terminate(timeout=30) == 0
