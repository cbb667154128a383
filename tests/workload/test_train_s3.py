"""A 2-node DeepSpeed group with no shared volume: checkpoints go to the real S3 store, a lost node restarts the group, it resumes from S3."""

from __future__ import annotations

import signal
import uuid

import pytest

from kubeforge import contract, servecontract as sc
from kubeforge_workloads import objectstore as obs
from kubeforge_workloads.train import checkpoint
from kubeforge_workloads.train.checkpoint_store import CheckpointStore

from tests.waiting import wait_for

from .train_fixtures import TINY_RECIPE, Group

pytestmark = pytest.mark.workload
CHECKPOINT_EVERY = 4
RECIPE = {**TINY_RECIPE, "maxSteps": 16}  # attempt 2 resumes at 8 or 12: one or two more uploads, not four


def complete_steps(store: CheckpointStore) -> list[int]:
    return [int(manifest["state"]["step"]) for _, manifest in store.complete()]


@pytest.fixture(scope="module")
def s3_run(s3, tmp_path_factory):
    """Attempt 1 checkpoints to S3 and loses node 1 after its second checkpoint; returns (group, store, saved step, codes)."""
    prefix = f"t-train-{uuid.uuid4().hex[:12]}"  # the store outlives test sessions: a prefix of this run only
    uris = {"checkpoint_uri": s3.uri(prefix, "checkpoints"), "model_uri": s3.uri(prefix, "model")}
    first = Group(tmp_path_factory.mktemp("s3-resume"), recipe=dict(RECIPE), checkpoint_every=CHECKPOINT_EVERY, **uris).start()
    store = CheckpointStore.from_uri(uris["checkpoint_uri"])
    try:
        wait_for(lambda: any(step >= 2 * CHECKPOINT_EVERY for step in complete_steps(store)), timeout=300,
                 message="attempt 1 to commit its second checkpoint to S3", interval=0.5, max_interval=1.0)
    except AssertionError:
        first.kill_all()
        raise AssertionError(first.logs()) from None
    first.kill_node(1)  # the pod is gone; nothing of it survives but what it uploaded
    codes = first.wait(timeout=120)
    saved = complete_steps(store)[0]
    yield first, store, saved, codes, uris
    obs.delete_prefix(store.bucket, prefix)  # the store outlives the session: leave it as found


@pytest.fixture(scope="module")
def resumed(s3_run):
    """Attempt 2 after planting a newer step whose upload never completed (shards, no manifest)."""
    first, store, saved, _, uris = s3_run
    tag, planted = checkpoint.final_name(saved), checkpoint.final_name(saved + 1)
    listing = obs.list_sizes(store.bucket, store.key(tag))
    for key in listing:
        if not key.endswith(checkpoint.MANIFEST):
            obs.put_bytes(store.bucket, key.replace(tag, planted), b"half an upload")
    second = Group(first.workdir, attempt=2, recipe=dict(RECIPE), checkpoint_every=CHECKPOINT_EVERY, **uris).start()
    assert second.wait(timeout=600) == [0, 0], second.logs()
    return second


def test_losing_a_node_mid_run_fails_the_group_with_the_retryable_code(s3_run):
    assert s3_run[3] == [contract.PEER_LOST_EXIT_CODE, -signal.SIGKILL]
    assert s3_run[2] >= 2 * CHECKPOINT_EVERY


def test_every_rank_s_shard_is_in_the_manifest_with_its_digest(s3_run):
    _, store, saved, _, _ = s3_run
    manifest = dict(store.complete())[checkpoint.final_name(saved)]
    shards = [rel for rel in manifest["files"] if "optim_states" in rel]
    assert len(shards) == 2 and all(len(manifest["files"][rel]["sha256"]) == 64 for rel in shards)


def test_the_restarted_group_resumes_from_s3_skipping_the_upload_without_a_manifest(s3_run, resumed):
    _, store, saved, _, _ = s3_run
    assert resumed.summary()["resumedFromStep"] == saved
    assert resumed.progress()[0]["step"] == saved + 1
    assert f"ignoring checkpoint {store.uri(checkpoint.final_name(saved + 1))}: no manifest" in resumed.logs(tail=10**6)


def test_the_export_is_committed_to_s3_and_the_summary_names_its_digest(s3_run, resumed, tmp_path):
    uri = s3_run[4]["model_uri"]
    summary = resumed.summary()
    assert summary["modelUri"] == uri and summary["modelDigest"].startswith("sha256:")
    name, prefix = obs.split_uri(uri)
    manifest, digest = obs.read_manifest(obs.open_bucket(name), prefix, sc.MODEL_FILES_MANIFEST)
    assert digest == summary["modelDigest"] and {"onnx/model.onnx", sc.MODEL_MANIFEST} <= set(manifest["files"])


def test_old_and_incomplete_checkpoints_are_pruned_in_the_store(s3_run, resumed):
    _, store, saved, _, _ = s3_run
    tags = {key.split("/")[-2] for key in obs.list_sizes(store.bucket, store.prefix)}
    assert checkpoint.final_name(saved + 1) not in tags and len(tags) <= checkpoint.KEEP_LAST
