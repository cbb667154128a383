"""Writing a whole HTTP response on a raw ASGI `send`: the one helper the hot path and the middleware share."""

from __future__ import annotations


async def send_response(send, status: int, body: bytes, media_type: str = "application/json",
                        headers: dict[str, str] | None = None) -> None:
    raw_headers = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    if headers:
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
