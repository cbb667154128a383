"""The user's own command under kubeforge-train: every local process runs it with the torch.distributed env."""

import json
import sys

import pytest

from .train_fixtures import Group

pytestmark = pytest.mark.workload
RENDEZVOUS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS")


def env_dump_command(workdir) -> list[str]:
    """A stand-in training script: it writes the env it was given to env-<RANK>.json."""
    code = (f"import json, os; keys = {list(RENDEZVOUS)!r}; "
            f"open(os.path.join({str(workdir)!r}, 'env-' + os.environ['RANK'] + '.json'), 'w')"
            ".write(json.dumps({k: os.environ.get(k) for k in keys}))")
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("launcher", ["deepspeed", "torchrun"])
def test_each_local_process_runs_the_users_command_with_its_rank_and_the_rendezvous(tmp_path, launcher):
    group = Group(tmp_path, launcher=launcher, recipe={}, nproc_per_node=2, command=env_dump_command(tmp_path)).start()
    assert group.wait(timeout=180) == [0, 0], group.logs()
    seen = {rank: json.loads((tmp_path / f"env-{rank}.json").read_text()) for rank in range(4)}
    assert {(e["RANK"], e["LOCAL_RANK"], e["WORLD_SIZE"]) for e in seen.values()} == {
        ("0", "0", "4"), ("1", "1", "4"), ("2", "0", "4"), ("3", "1", "4")}
    assert {e["MASTER_ADDR"] for e in seen.values()} == {"127.0.0.1"}
    assert {e["OMP_NUM_THREADS"] for e in seen.values()} == {"1"}


def test_a_failing_user_command_fails_the_node_with_its_exit_code(tmp_path):
    group = Group(tmp_path, nodes=1, recipe={}, command=[sys.executable, "-c", "raise SystemExit(3)"]).start()
    assert group.wait(timeout=60) == [3]
