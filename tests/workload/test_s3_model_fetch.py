"""A model served from the real S3 store (SeaweedFS): the download step fetches and verifies it, and says why when it cannot."""

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

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload


@pytest.fixture
def uploaded(s3, s3_prefix, tiny_model_dir) -> tuple[str, str, str]:
    """The tiny model committed under a fresh prefix: (uri, prefix, manifest digest)."""
    prefix = f"{s3_prefix}/model"
    digest = obs.commit_tree(obs.open_bucket(s3.bucket), tiny_model_dir, prefix, sc.MODEL_FILES_MANIFEST)
    return s3.uri(prefix), prefix, digest


def fetch(uri: str, dest: Path, **env: str) -> tuple[int, dict]:
    """Run the init container's command as a process; (exit code, termination message)."""
    message = dest.parent / f"{dest.name}.termination-log"
    run_env = {**os.environ, sc.MODEL_URI: uri, sc.MODEL_DIR: str(dest), contract.TERMINATION_LOG: str(message), **env}
    done = subprocess.run([sys.executable, "-m", "kubeforge_workloads.serve.modelfetch"], env=run_env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(message.read_text()) if message.exists() else {"stderr": done.stderr}


def test_a_model_committed_to_s3_is_downloaded_verified_and_served(uploaded, tmp_path, start_server):
    uri, _, digest = uploaded
    code, report = fetch(uri, tmp_path / "model", **{sc.MODEL_DIGEST: digest})
    assert (code, report["digest"], report["modelUri"]) == (0, digest, uri), report
    server = start_server(tmp_path / "model")
    resp = httpx.post(server.url + "/predict", json={"texts": ["this movie was great"]}, timeout=30)
    assert resp.status_code == 200 and resp.json()["predictions"][0]["label"]


def test_wrong_credentials_are_reported_as_access_denied(uploaded, tmp_path):
    code, report = fetch(uploaded[0], tmp_path / "model", AWS_SECRET_ACCESS_KEY="not-the-secret")
    assert (code, report["reason"]) == (1, obs.ACCESS_DENIED), report
    assert report["object"].endswith(sc.MODEL_FILES_MANIFEST)


def test_a_missing_bucket_is_reported_as_a_missing_object_naming_the_bucket(s3, tmp_path):
    code, report = fetch("s3://no-such-bucket-kubeforge/model", tmp_path / "model")
    assert (code, report["reason"]) == (1, obs.MISSING_OBJECT), report
    assert report["object"].startswith("s3://no-such-bucket-kubeforge/") and "bucket" in report["error"].lower()


def test_a_truncated_upload_without_its_manifest_is_never_served(s3, s3_prefix, tiny_model_dir, tmp_path):
    bucket = obs.open_bucket(s3.bucket)
    obs.upload_tree(bucket, tiny_model_dir, f"{s3_prefix}/half", obs.tree_files(tiny_model_dir))  # died before the manifest
    code, report = fetch(s3.uri(s3_prefix, "half"), tmp_path / "model")
    assert (code, report["reason"]) == (1, obs.INCOMPLETE), report
    assert not (tmp_path / "model").exists()


def test_an_object_changed_after_the_commit_is_refused_as_a_digest_mismatch(s3, uploaded, tmp_path):
    uri, prefix, _ = uploaded
    obs.put_bytes(obs.open_bucket(s3.bucket), f"{prefix}/onnx/model.onnx", b"not the model")
    code, report = fetch(uri, tmp_path / "model")
    assert (code, report["reason"]) == (1, obs.DIGEST_MISMATCH), report
    assert report["object"] == f"{uri}/onnx/model.onnx"
    assert not (tmp_path / "model" / "onnx" / "model.onnx").exists()


def test_a_model_replaced_since_the_endpoint_resolved_it_is_refused(uploaded, tmp_path):
    code, report = fetch(uploaded[0], tmp_path / "model", **{sc.MODEL_DIGEST: "sha256:" + "0" * 64})
    assert (code, report["reason"]) == (1, obs.DIGEST_MISMATCH), report


def test_a_deleted_object_is_reported_as_missing(s3, uploaded, tmp_path):
    uri, prefix, _ = uploaded
    obs.delete_keys(obs.open_bucket(s3.bucket), [f"{prefix}/hf/config.json"])
    code, report = fetch(uri, tmp_path / "model")
    assert (code, report["reason"], report["object"]) == (1, obs.MISSING_OBJECT, f"{uri}/hf/config.json"), report


def test_an_unreachable_endpoint_is_reported_as_such(uploaded, tmp_path):
    from kubeforge.localhost import free_port

    code, report = fetch(uploaded[0], tmp_path / "model", AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    assert (code, report["reason"]) == (1, obs.UNREACHABLE), report


def test_delete_prefix_empties_a_prefix_and_nothing_beside_it(s3, s3_prefix):
    # What the fixtures and the S3 bench use to leave the long-lived store as they found it.
    bucket = obs.open_bucket(s3.bucket)
    for key in ("a/one", "a/b/two", "ab/kept"):
        obs.put_bytes(bucket, f"{s3_prefix}/{key}", b"x")
    assert obs.delete_prefix(bucket, f"{s3_prefix}/a") == 2
    assert list(obs.list_sizes(bucket, s3_prefix)) == [f"{s3_prefix}/ab/kept"]
