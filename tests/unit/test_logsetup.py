"""The operator's log: each line once, and watch-handler heartbeats below INFO."""

from __future__ import annotations

import io
import logging

import pytest

from kubeforge import logsetup


@pytest.fixture
def captured():
    """The root handler logsetup installs, writing into a buffer; the root logger restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logsetup.configure(verbose=False)
    buffer = io.StringIO()
    for handler in root.handlers:
        handler.setStream(buffer)
    yield buffer, root
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def test_one_handler_prints_each_line_once(captured):
    buffer, root = captured
    logsetup.configure(verbose=False)  # a second call replaces, never adds
    assert len(root.handlers) == 1
    for handler in root.handlers:
        handler.setStream(buffer)
    logging.getLogger("kubeforge.trainingjob.controller").info("TrainingJob ns/a: Pending -> Running: 2/2 workers running")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("INFO kubeforge.trainingjob.controller: TrainingJob ns/a: Pending -> Running: 2/2 workers running")


def test_watch_handler_successes_are_not_info(captured):
    buffer, _ = captured
    objects = logging.getLogger("kopf.objects")
    objects.info("Handler 'enqueue-TrainingJob' succeeded.")
    objects.info("Handler 'enqueue-ModelEndpoint-for-pods' succeeded.")
    objects.info("Handler 'wake-modelendpoints' succeeded.")
    objects.info("Handler 'configure' succeeded.")
    assert buffer.getvalue().count("succeeded") == 1 and "'configure'" in buffer.getvalue()
