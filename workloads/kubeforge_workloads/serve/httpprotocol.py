"""uvicorn's httptools protocol with the two limits it lacks (how many header bytes, and how long for them),
sending each response in one write.

httptools keeps every header byte a client sends until the headers end (h11 stops at 16 KiB), and uvicorn
starts no timer on a new connection nor while a request's headers arrive; so a client that connects and
sends nothing, or headers that never end, held a connection (and, for endless headers, memory) forever.
Here headers beyond max_header_bytes get a 431 and the connection closes, and a connection that has not
completed a request's headers within header_timeout_s is closed: one sweeper task, no timer per connection.
Idle keep-alive connections stay under uvicorn's own keep-alive timeout.

uvicorn writes a response's status line and headers, then its body, as two writes: two TCP segments and a
client woken twice for an answer that is whole at once. Here each request's cycle writes through _OneWrite,
which holds the headers until the body's first write (or the close) and sends them together.
"""

from __future__ import annotations

import asyncio
import json
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def bounded_httptools(max_header_bytes: int, header_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class to hand uvicorn.Config(http=...)."""
    body = json.dumps({"error": f"request headers exceed {max_header_bytes} bytes"}).encode()
    too_large = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                 b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    sweeper: list[asyncio.Task] = []

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.awaiting_headers = True
            self.headers_since: float | None = time.monotonic()
            self.header_bytes = 0
            if not sweeper:
                sweeper.append(self.loop.create_task(_close_stalled(self.connections), name="header-timeout"))

        def data_received(self, data: bytes) -> None:
            if self.awaiting_headers:
                if self.headers_since is None:  # a keep-alive connection's next request begins
                    self.headers_since = time.monotonic()
                self.header_bytes += len(data)
            super().data_received(data)
            if self.awaiting_headers and self.header_bytes > max_header_bytes:
                self.transport.write(too_large)
                self.transport.close()

        def on_headers_complete(self) -> None:
            self.awaiting_headers, self.headers_since = False, None
            previous = self.cycle
            super().on_headers_complete()
            if self.cycle is not previous:  # a new request's cycle (not an upgrade), its task not started yet
                self.cycle.transport = _OneWrite(self.transport, self.cycle)

        def on_message_complete(self) -> None:
            # Idle until the next request's first byte: uvicorn's keep-alive timeout covers that wait.
            self.awaiting_headers, self.headers_since, self.header_bytes = True, None, 0
            super().on_message_complete()

    async def _close_stalled(connections: set) -> None:
        tick = min(1.0, header_timeout_s / 10)
        while True:
            await asyncio.sleep(tick)
            too_old = time.monotonic() - header_timeout_s
            for conn in list(connections):
                since = getattr(conn, "headers_since", None)
                if since is not None and since <= too_old:
                    conn.transport.close()

    return BoundedHttpToolsProtocol


class _OneWrite:
    """A request cycle's transport that sends the response's headers with the first write after them.

    Only the first write after the response has started is held: an interim "100 Continue" goes at once.
    """

    def __init__(self, transport, cycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None
        self._holding = True

    def write(self, data: bytes) -> None:
        if self._holding and self._cycle.response_started:
            self._holding, self._held = False, data
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def close(self) -> None:
        if self._held is not None:
            self._transport.write(self._held)
            self._held = None
        self._transport.close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)
