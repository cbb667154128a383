"""Every HTTP response names the model that answered (X-Kubeforge-Model), from the env the ModelEndpoint builder sets."""

from __future__ import annotations

import httpx
import pytest

from kubeforge import servecontract as sc
from kubeforge_workloads.serve.cli import response_headers
from kubeforge_workloads.serve.config import load_config

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload

REVISION = "revision=2; digest=sha256:0123abcd"


def test_the_header_comes_from_the_env_and_is_absent_without_it():
    assert response_headers(load_config([], {sc.MODEL_DIR: "/m", sc.MODEL_REVISION: REVISION})) == [(sc.MODEL_HEADER, REVISION)]
    assert response_headers(load_config([], {sc.MODEL_DIR: "/m"})) == []


def test_every_response_names_the_model_revision(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, env={sc.MODEL_REVISION: REVISION})
    answers = [httpx.post(server.url + "/predict", json={"texts": ["great"]}),
               httpx.post(server.url + "/predict", content=b"not json"),  # errors too: a client tells who refused
               httpx.get(server.url + sc.READY_PATH)]
    assert [(r.status_code // 100, r.headers.get(sc.MODEL_HEADER)) for r in answers] == [(2, REVISION), (4, REVISION), (2, REVISION)]
