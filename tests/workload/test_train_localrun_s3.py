"""`kubeforge run samples/s3.yaml --local`: the S3 sample trained by 2 local "nodes" against the real store, the export committed there."""

import subprocess
import sys
from pathlib import Path

import pytest

from kubeforge import servecontract as sc
from kubeforge_workloads import objectstore as obs

pytestmark = pytest.mark.workload
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "s3.yaml"
# What samples/s3.yaml names (its bucket is the local store's test bucket).
CHECKPOINTS, MODEL = "checkpoints/sentiment-minilm-s3", "models/sentiment-minilm"


@pytest.fixture(scope="module")
def local_run(s3, tmp_path_factory):
    bucket = obs.open_bucket(s3.bucket)
    obs.delete_keys(bucket, [*obs.list_sizes(bucket, CHECKPOINTS), *obs.list_sizes(bucket, MODEL)])  # a fresh job
    # The shell's AWS_ENDPOINT_URL (the s3 fixture's) wins over the sample's in-cluster endpoint.
    result = subprocess.run(
        [sys.executable, "-m", "kubeforge.cli", "run", str(SAMPLE), "--local", "--nodes", "2", "--max-steps", "4",
         "--workdir", str(tmp_path_factory.mktemp("localrun-s3"))],
        capture_output=True, text=True, timeout=600,
    )
    return bucket, result


def test_the_s3_sample_trains_locally_and_names_the_uploaded_model_and_its_digest(local_run):
    bucket, result = local_run
    assert result.returncode == 0, result.stdout + result.stderr
    _, digest = obs.read_manifest(bucket, MODEL, sc.MODEL_FILES_MANIFEST)
    assert f"model: s3://{bucket.name}/{MODEL} ({digest})" in result.stdout


def test_its_final_checkpoint_is_complete_in_the_store(local_run):
    from kubeforge_workloads.train.checkpoint_store import CheckpointStore

    bucket, _ = local_run
    assert [m["state"]["step"] for _, m in CheckpointStore(bucket, CHECKPOINTS).complete()][:1] == [4]
