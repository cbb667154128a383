"""Exit codes: a lost peer asks for a group restart, anything else is the program's own failure."""

from kubeforge import contract
from kubeforge_workloads.train.failures import EXIT_NOTE_DIR, exit_code_for, leave_note, noted_exit_code


def test_a_closed_gloo_connection_means_a_lost_peer_and_a_retryable_exit():
    error = RuntimeError("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:547] Connection closed by peer [127.0.0.1]:5544")
    assert exit_code_for(error) == contract.PEER_LOST_EXIT_CODE


def test_a_bad_dataset_is_the_programs_own_failure():
    assert exit_code_for(ValueError("dataset /d.csv: no column 'text'")) == 1
    assert exit_code_for(FileNotFoundError("dataset /d.csv does not exist")) == 1


def note(directory, rank: int, code: int) -> None:
    leave_note(code, {EXIT_NOTE_DIR: str(directory), "RANK": str(rank)})


def test_a_node_whose_processes_all_lost_a_peer_reports_peer_lost(tmp_path):
    note(tmp_path, 0, contract.PEER_LOST_EXIT_CODE)
    note(tmp_path, 1, contract.PEER_LOST_EXIT_CODE)
    assert noted_exit_code(str(tmp_path)) == contract.PEER_LOST_EXIT_CODE


def test_a_crashed_process_is_the_cause_not_the_peers_that_saw_it_go(tmp_path):
    note(tmp_path, 0, contract.PEER_LOST_EXIT_CODE)
    note(tmp_path, 1, 1)
    assert noted_exit_code(str(tmp_path)) == 1


def test_no_notes_leave_the_exit_code_as_it_was(tmp_path):
    assert noted_exit_code(str(tmp_path)) is None
