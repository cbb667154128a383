"""kubeforge-train as real processes: 2 "nodes" x 1 process on 127.0.0.1 fine-tune MiniLM, with DeepSpeed and with torchrun."""

import json

import pytest

from kubeforge_workloads.train import checkpoint

from .train_fixtures import ACCURACY_THRESHOLD, TINY_RECIPE, Group

pytestmark = pytest.mark.workload
# Shapes the export never saw: another batch size and longer sequences.
UNSEEN_TEXTS = ["The cast was not dull or tedious and I would watch it again, twice, with friends.", "Awful."]


def finished_group(workdir, launcher: str, **options) -> Group:
    group = Group(workdir, launcher=launcher, **options).start()
    assert group.wait(timeout=600) == [0, 0], group.logs()
    return group


@pytest.fixture(scope="module")
def deepspeed_group(tmp_path_factory) -> Group:
    return finished_group(tmp_path_factory.mktemp("deepspeed"), "deepspeed", zero_stage=2, checkpoint_every=10)


@pytest.fixture(scope="module")
def torchrun_group(tmp_path_factory) -> Group:
    return finished_group(tmp_path_factory.mktemp("torchrun"), "torchrun")


def test_deepspeed_zero2_on_two_nodes_fine_tunes_minilm_above_the_accuracy_threshold(deepspeed_group):
    metrics = deepspeed_group.summary()["metrics"]
    assert metrics["accuracy"] >= ACCURACY_THRESHOLD and metrics["f1"] >= ACCURACY_THRESHOLD, metrics


def test_rank_0_writes_the_summary_the_operator_reads_into_status_result(deepspeed_group):
    summary = deepspeed_group.summary()
    assert summary["modelUri"] == f"file://{deepspeed_group.output_dir}"
    assert summary["steps"] == deepspeed_group.progress()[-1]["totalSteps"] and summary["resumedFromStep"] == 0
    assert summary["samplesPerSecond"] > 0 and summary["durationSeconds"] > 0
    assert not deepspeed_group.termination_log(1).exists()  # only rank 0 speaks for the group


def test_progress_reports_every_step_with_the_total_and_a_loss(deepspeed_group):
    records = deepspeed_group.progress()
    total = records[0]["totalSteps"]
    assert [r["step"] for r in records] == list(range(1, total + 1))
    assert all(r["totalSteps"] == total and r["loss"] > 0 for r in records)


def test_the_onnx_export_matches_torchs_logits_within_1e_4_on_unseen_shapes(deepspeed_group):
    from .train_fixtures import onnx_max_diff

    assert onnx_max_diff(deepspeed_group.output_dir, UNSEEN_TEXTS) <= 1e-4
    assert onnx_max_diff(deepspeed_group.output_dir, UNSEEN_TEXTS[:1] * 5) <= 1e-4


def test_the_model_directory_has_the_layout_the_server_loads(deepspeed_group):
    model_dir = deepspeed_group.output_dir
    manifest = json.loads((model_dir / "kubeforge.json").read_text())
    assert (manifest["task"], manifest["labels"], manifest["onnx"], manifest["huggingface"]) == (
        "text-classification", ["negative", "positive"], "onnx/model.onnx", "hf")
    assert (model_dir / "onnx" / "tokenizer.json").is_file() and (model_dir / "hf" / "model.safetensors").is_file()
    config = json.loads((model_dir / "hf" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}


def test_deepspeed_checkpoints_are_sealed_and_hold_every_ranks_zero_shard(deepspeed_group):
    directory, state = checkpoint.newest_complete(deepspeed_group.workdir / "checkpoints")
    assert state["step"] == deepspeed_group.summary()["steps"]
    assert {p.name for p in directory.glob("zero_pp_rank_*_optim_states.pt")} == {
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"}


def test_torchrun_on_two_nodes_fine_tunes_minilm_above_the_accuracy_threshold(torchrun_group):
    metrics = torchrun_group.summary()["metrics"]
    assert metrics["accuracy"] >= ACCURACY_THRESHOLD and metrics["f1"] >= ACCURACY_THRESHOLD, metrics


def test_torchrun_writes_the_summary_and_an_onnx_model_that_matches_torch(torchrun_group):
    from .train_fixtures import onnx_max_diff

    assert torchrun_group.summary()["modelUri"] == f"file://{torchrun_group.output_dir}"
    assert onnx_max_diff(torchrun_group.output_dir, UNSEEN_TEXTS) <= 1e-4


def test_an_elastic_torchrun_group_trains_and_the_pod_with_index_0_reports_for_it(tmp_path):
    # The c10d rendezvous may give global rank 0 to either node; the operator reads index 0's pod.
    group = finished_group(tmp_path, "torchrun", elastic=(1, 2), recipe=dict(TINY_RECIPE, maxSteps=3))
    assert group.summary(0)["steps"] == 3 and not group.termination_log(1).exists()
    assert group.progress()[-1] == {**group.progress()[-1], "step": 3, "totalSteps": 3}
    assert (group.output_dir / "kubeforge.json").is_file()
