"""Why a training process failed, as an exit code the operator's policy understands.

A worker whose peer vanished (a lost pod, a closed gloo/NCCL connection, a collective
timeout) is healthy: the group needs a restart from the last checkpoint. It exits with
contract.PEER_LOST_EXIT_CODE (retryable) instead of Python's 1 (permanent). torchrun
replaces its workers' exit codes with its own, so workers also leave their code in a
note the node agent reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubeforge import contract

# Between the node agent and its own processes only; not part of the operator contract.
EXIT_NOTE_DIR = "KUBEFORGE_EXIT_NOTE_DIR"
_PEER_LOST_MARKERS = ("connection closed by peer", "connection reset by peer", "broken pipe", "timed out",
                      "timeout", "socket closed", "nccl error", "ncclremoteerror", "connection refused")


def is_peer_lost(exc: BaseException) -> bool:
    """A communication failure with another rank, as opposed to a bug or bad input."""
    try:
        import torch.distributed as dist

        if isinstance(exc, dist.DistError):
            return True
    except ImportError:
        pass
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, ConnectionError, TimeoutError)) and any(m in text for m in _PEER_LOST_MARKERS)


def exit_code_for(exc: BaseException) -> int:
    from ..objectstore import FAILED, UNREACHABLE, ObjectStoreError

    if isinstance(exc, ObjectStoreError):
        return contract.STORE_UNAVAILABLE_EXIT_CODE if exc.reason in (UNREACHABLE, FAILED) else 1
    return contract.PEER_LOST_EXIT_CODE if is_peer_lost(exc) else 1


def leave_note(code: int, env: dict | None = None) -> None:
    env = os.environ if env is None else env
    if env.get(EXIT_NOTE_DIR):
        Path(env[EXIT_NOTE_DIR], f"rank-{env.get('RANK', '0')}").write_text(str(code))


def noted_exit_code(directory: str) -> int | None:
    """The code to report for a failed node: a process's own failure wins over its peers' lost connections.

    When one process crashes, the others on the node see a closed connection; the crash is the cause.
    """
    codes = [int(p.read_text() or 1) for p in Path(directory).glob("rank-*")] if directory else []
    own = [c for c in codes if c != contract.PEER_LOST_EXIT_CODE]
    return max(own) if own else (contract.PEER_LOST_EXIT_CODE if codes else None)
