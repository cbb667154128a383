"""What local processes get from this machine: a free port on 127.0.0.1, the cores this process may use."""

from __future__ import annotations

import os
import socket

from kubeforge.contract import threads_per_process
from kubeforge.localhost import free_port, usable_cores


def test_a_free_port_can_be_listened_on_at_once():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


def test_the_usable_cores_are_this_process_affinity_not_the_hosts_count():
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_threads_are_an_equal_share_of_the_cores_and_never_zero():
    assert [threads_per_process(8, 2), threads_per_process(7, 2), threads_per_process(2, 8), threads_per_process(4, 0)] == [4, 3, 1, 4]
