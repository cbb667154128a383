"""The object-store layer's pure parts: settings from the pod env, retries, the manifest, the checkpoint key layout."""

import pytest

from kubeforge_workloads import objectstore as obs
from kubeforge_workloads.train import checkpoint
from kubeforge_workloads.train.checkpoint_store import _tag_of, merge_shard_lists


def test_settings_come_from_the_env_the_operator_injects():
    settings = obs.Settings.from_env({"AWS_ENDPOINT_URL": "https://minio.storage:9000", "AWS_REGION": "eu-west-1",
                                      "KUBEFORGE_S3_PATH_STYLE": "false", "KUBEFORGE_S3_INSECURE_SKIP_VERIFY": "true"})
    assert settings == obs.Settings("https://minio.storage:9000", "eu-west-1", False, True, None)
    assert obs.Settings.from_env({}).path_style is None  # unset: path style with an endpoint, virtual hosts without


def test_an_s3_uri_splits_into_bucket_and_prefix():
    assert obs.split_uri("s3://models/runs/a/") == ("models", "runs/a")
    with pytest.raises(ValueError, match="s3://bucket"):
        obs.split_uri("pvc://models/a")


def test_a_transient_failure_is_retried_with_growing_delays():
    calls, delays = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise obs.ObjectStoreError(obs.UNREACHABLE, "s3://b/k", "connection refused")
        return "ok"

    assert obs.with_retries(flaky, "upload", sleep=delays.append, base_delay=1.0) == "ok"
    assert len(calls) == 3 and 1.0 <= delays[0] < delays[1] and delays[1] >= 2.0


@pytest.mark.parametrize("reason", [obs.MISSING_OBJECT, obs.ACCESS_DENIED, obs.DIGEST_MISMATCH])
def test_a_failure_that_cannot_pass_is_not_retried(reason):
    calls = []

    def refused():
        calls.append(1)
        raise obs.ObjectStoreError(reason, "s3://b/k", "no")

    with pytest.raises(obs.ObjectStoreError):
        obs.with_retries(refused, "download", sleep=lambda _: None)
    assert len(calls) == 1


def test_the_manifest_lists_sizes_and_digests_and_its_own_digest_names_the_tree(tmp_path):
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"abc")
    files = obs.describe_files(tmp_path)
    assert files == {"onnx/model.onnx": {"size": 3, "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}
    body = obs.manifest_bytes(files, state={"step": 4})
    assert obs.digest_of(body).startswith("sha256:") and obs.digest_of(body) == obs.digest_of(obs.manifest_bytes(files, state={"step": 4}))


def test_checkpoint_keys_map_to_their_step_and_nothing_else_counts():
    assert _tag_of("jobs/a/step-00000008/mp_rank_00_model_states.pt", "jobs/a") == "step-00000008"
    assert _tag_of("jobs/a/other/x", "jobs/a") is None
    assert _tag_of("step-00000001/x", "") == "step-00000001"


def test_node_shard_lists_merge_and_a_conflict_is_refused():
    a = {"zero_pp_rank_0.pt": {"size": 1, "sha256": "a"}, "mp_rank_00.pt": {"size": 2, "sha256": "m"}}
    b = {"zero_pp_rank_1.pt": {"size": 1, "sha256": "b"}}
    assert set(merge_shard_lists([a, b, {}])) == {"zero_pp_rank_0.pt", "zero_pp_rank_1.pt", "mp_rank_00.pt"}
    with pytest.raises(RuntimeError, match="different mp_rank_00.pt"):
        merge_shard_lists([a, {"mp_rank_00.pt": {"size": 3, "sha256": "x"}}])


def test_a_local_checkpoint_manifest_carries_digests_and_older_size_only_manifests_still_count(tmp_path):
    temp = tmp_path / checkpoint.temp_name(5)
    temp.mkdir()
    (temp / "model.pt").write_bytes(b"w" * 10)
    checkpoint.write_manifest(temp, {"step": 5})
    directory = checkpoint.publish(tmp_path, 5)
    assert "sha256" in __import__("json").loads((directory / checkpoint.MANIFEST).read_text())["files"]["model.pt"]
    (directory / checkpoint.MANIFEST).write_text('{"state": {"step": 5}, "files": {"model.pt": 10}}')
    assert checkpoint.newest_complete(tmp_path)[1] == {"step": 5}


@pytest.mark.parametrize("reason, code", [(obs.UNREACHABLE, 201), (obs.FAILED, 201), (obs.ACCESS_DENIED, 1), (obs.MISSING_OBJECT, 1)])
def test_a_store_that_may_come_back_exits_retryable_and_refused_keys_fail_the_job(reason, code):
    from kubeforge_workloads.train.failures import exit_code_for

    assert exit_code_for(obs.ObjectStoreError(reason, "s3://b/k", "x")) == code
