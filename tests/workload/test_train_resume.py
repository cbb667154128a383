"""A lost node and a restarted group: the second attempt resumes from the newest complete checkpoint and finishes."""

import shutil
import signal

import pytest

from kubeforge import contract
from kubeforge_workloads.train import checkpoint

from tests.waiting import wait_for

from .train_fixtures import Group

pytestmark = pytest.mark.workload
CHECKPOINT_EVERY = 4


@pytest.fixture(scope="module")
def lost_node(tmp_path_factory):
    """Attempt 1 loses node 1 after its second checkpoint; returns (attempt 1, exit codes, last complete step)."""
    first = Group(tmp_path_factory.mktemp("resume"), checkpoint_every=CHECKPOINT_EVERY).start()
    try:
        wait_for(lambda: any(r["step"] > 2 * CHECKPOINT_EVERY for r in first.progress()), timeout=300,
                 message="attempt 1 to pass its second checkpoint", interval=0.2, max_interval=0.2)
    except AssertionError:
        first.kill_all()
        raise AssertionError(first.logs()) from None
    first.kill_node(1)  # the pod is gone: its agent and worker die at once
    codes = first.wait(timeout=120)
    _, state = checkpoint.newest_complete(first.workdir / "checkpoints")
    return first, codes, state["step"]


@pytest.fixture(scope="module")
def second_attempt(lost_node):
    """The operator's restart: the whole group again, attempt 2, with a newer but truncated checkpoint planted."""
    first, _, saved = lost_node
    root = first.workdir / "checkpoints"
    planted = shutil.copytree(root / checkpoint.final_name(saved), root / checkpoint.final_name(saved + 1))
    with open(next(planted.glob("*optim_states.pt")), "r+b") as shard:
        shard.truncate(100)  # half-copied volume: the manifest's sizes no longer match
    second = Group(first.workdir, attempt=2, checkpoint_every=CHECKPOINT_EVERY).start()
    assert second.wait(timeout=600) == [0, 0], second.logs()
    return second


def test_losing_one_node_fails_the_rest_of_the_group_with_the_retryable_peer_lost_code(lost_node):
    _, codes, _ = lost_node
    assert codes == [contract.PEER_LOST_EXIT_CODE, -signal.SIGKILL]


def test_the_restarted_group_resumes_from_the_checkpoint_instead_of_step_0(lost_node, second_attempt):
    _, _, saved = lost_node
    assert saved >= 2 * CHECKPOINT_EVERY
    assert second_attempt.summary()["resumedFromStep"] == saved
    assert second_attempt.progress()[0]["step"] == saved + 1


def test_a_truncated_newer_checkpoint_is_ignored_in_favour_of_the_previous_complete_one(lost_node, second_attempt):
    _, _, saved = lost_node
    assert second_attempt.summary()["resumedFromStep"] != saved + 1
    assert f"ignoring checkpoint {second_attempt.workdir / 'checkpoints' / checkpoint.final_name(saved + 1)}" in second_attempt.logs(tail=10**6)


def test_the_restarted_group_finishes_every_step_and_exports_the_model(second_attempt):
    summary = second_attempt.summary()
    assert summary["steps"] == second_attempt.progress()[-1]["totalSteps"]
    assert (second_attempt.output_dir / "kubeforge.json").is_file()
