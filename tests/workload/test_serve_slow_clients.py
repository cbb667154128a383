"""Slow clients cost the server a connection, not its latency: a body that does not arrive in time is a 408."""

from __future__ import annotations

import socket

import pytest

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload


def _slow_upload(port: int, sent: bytes = b'{"texts": ["') -> socket.socket:
    """A POST whose headers promise 100 body bytes, of which only the first few are sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n" + sent)
    return sock


def _response(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_body_not_received_in_time_is_a_408_and_the_connection_closes(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, "--body-timeout-s", "1")
    with _slow_upload(server.port) as sock:
        raw = _response(sock)  # returns once the server closes the connection
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert b"connection: close" in head.lower()
    assert b"request body not received within 1 s" in body
