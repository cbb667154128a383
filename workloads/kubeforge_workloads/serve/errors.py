"""Serving errors and the one place they become HTTP responses (like kserve/errors.py + its REST server)."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("kubeforge.serve")


class ServeError(Exception):
    """Base: carries the message the client sees."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(ServeError):
    """The request is well-formed JSON but its content breaks a limit or the protocol."""

    status = 400


class InvalidSchema(InvalidInput):
    """Valid JSON whose shape breaks the request schema (FastAPI's own 422 for body models)."""

    status = 422


class ModelNotFound(ServeError):
    status = 404

    def __init__(self, name: str):
        super().__init__(f"model {name!r} is not served here")


class QueueFull(ServeError):
    """Back-pressure: the batch queue is full; the client should retry after a moment."""

    status = 429


class ModelNotReady(ServeError):
    status = 503


class ModelLoadError(ServeError):
    """The model directory or runtime cannot be used; raised at startup, never per request."""


class BackendUnavailable(ModelLoadError):
    """A runtime's library (TensorRT, CUDA, torch) is not installed or has no device."""


def error_body(message: str) -> dict:
    """KServe and the v2 protocol both answer errors as {"error": "..."}."""
    return {"error": message}


def error_json(message: str) -> bytes:
    return json.dumps(error_body(message)).encode()


def _field_path(loc) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Map every ServeError, validation error and unexpected exception to one JSON error shape."""

    @app.exception_handler(ServeError)
    async def _serve_error(_: Request, exc: ServeError):
        return JSONResponse(error_body(exc.message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError):
        # Name the field: "texts.3: Input should be a valid string".
        problems = [f"{_field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        status = 400 if any(e["type"] == "json_invalid" for e in exc.errors()) else 422
        return JSONResponse(error_body("; ".join(problems)), status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}"), status_code=500)
