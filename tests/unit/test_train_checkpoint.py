"""Checkpoint frames: only sealed, untruncated checkpoints count, and the newest of those wins."""

from pathlib import Path

from kubeforge_workloads.train import checkpoint


def make_checkpoint(root: Path, step: int, payload: bytes = b"weights" * 100) -> Path:
    temp = root / checkpoint.temp_name(step)
    temp.mkdir(parents=True)
    (temp / "model.pt").write_bytes(payload)
    checkpoint.write_manifest(temp, {"step": step})
    return checkpoint.publish(root, step)


def test_the_newest_complete_checkpoint_is_chosen(tmp_path):
    make_checkpoint(tmp_path, 10)
    make_checkpoint(tmp_path, 20)
    directory, state = checkpoint.newest_complete(tmp_path)
    assert (directory.name, state) == ("step-00000020", {"step": 20})


def test_a_truncated_checkpoint_is_ignored_in_favour_of_the_previous_one(tmp_path):
    make_checkpoint(tmp_path, 10)
    newest = make_checkpoint(tmp_path, 20)
    (newest / "model.pt").write_bytes(b"weig")  # cut short after it was sealed
    directory, state = checkpoint.newest_complete(tmp_path)
    assert state["step"] == 10


def test_a_checkpoint_without_its_manifest_is_ignored(tmp_path):
    make_checkpoint(tmp_path, 10)
    unsealed = tmp_path / checkpoint.final_name(30)
    unsealed.mkdir()
    (unsealed / "model.pt").write_bytes(b"x")
    assert checkpoint.newest_complete(tmp_path)[1]["step"] == 10


def test_a_crash_mid_write_leaves_only_a_temp_directory_that_never_counts(tmp_path):
    temp = tmp_path / checkpoint.temp_name(40)
    temp.mkdir()
    (temp / "model.pt").write_bytes(b"half")
    assert checkpoint.newest_complete(tmp_path) is None


def test_pruning_keeps_the_newest_two_and_clears_temp_directories(tmp_path):
    for step in (10, 20, 30):
        make_checkpoint(tmp_path, step)
    (tmp_path / checkpoint.temp_name(40)).mkdir()
    checkpoint.prune(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000020", "step-00000030"]


def test_no_checkpoint_directory_means_a_fresh_start(tmp_path):
    assert checkpoint.newest_complete(tmp_path / "absent") is None


def test_pruning_drops_a_broken_checkpoint_rather_than_a_complete_one(tmp_path):
    for step in (10, 20):
        make_checkpoint(tmp_path, step)
    broken = make_checkpoint(tmp_path, 30)
    (broken / "model.pt").write_bytes(b"")
    checkpoint.prune(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000010", "step-00000020"]
