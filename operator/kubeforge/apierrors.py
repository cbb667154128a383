"""How the operator answers the API server's refusals: a fast retry, a retry after Retry-After, or a condition and a slow retry.

- 409 (a conflict) and 429 / 5xx (overload, outage) pass: the work queue retries them with its
  exponential backoff, never sooner than the server's Retry-After.
- Every other 4xx (403 quota or admission, 422 invalid, 400...) will fail the same way until
  someone changes something: the owner gets a condition carrying the API server's message, and
  the apply is retried slowly, with jitter, so a thousand refused objects do not hammer the server.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from typing import Any, Callable

FAST_RETRY_CODES = (409, 429)
# Server-side apply answers 500 (not 422) when the object has a field its schema does not
# declare: "failed to create typed patch object (...): .spec...: field not declared in schema".
# Retrying cannot fix it (found by tests/integration/test_fuzz_api.py with pass-through fields).
TYPED_PATCH_ERROR = "failed to create typed patch object"
SLOW_RETRY_BASE_S = 10.0
SLOW_RETRY_MAX_S = 300.0


@dataclass(frozen=True)
class Refusal:
    """The API server's answer to one write, as a condition tells it."""

    code: int
    reason: str  # the Status reason: Forbidden, Invalid, BadRequest...
    message: str  # the API server's own words
    target: str  # what was refused, e.g. "Job ci-a1"


class Refused(Exception):
    """Applying a child was refused for good (until something changes): the owner shows `refusal`."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(f"{refusal.target}: {refusal.message}")


def status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status", None)
    return code if isinstance(code, int) else None


def is_permanent(exc: BaseException) -> bool:
    """A 4xx that retrying unchanged cannot fix (409 and 429 can be), or server-side apply's schema 500."""
    code = status_code(exc)
    if code == 500 and TYPED_PATCH_ERROR in (_status_body(exc).get("message") or ""):
        return True
    return code is not None and 400 <= code < 500 and code not in FAST_RETRY_CODES


def retry_after(exc: BaseException) -> float | None:
    """Seconds from the Retry-After header of a 429 / 5xx (the API server sends it under load), else None."""
    code = status_code(exc)
    if code is None or not (code == 429 or code >= 500):
        return None
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        details = (_status_body(exc).get("details") or {}).get("retryAfterSeconds")
        value = details
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: rare from the API server, and the backoff still applies


def refusal(exc: BaseException, target: str) -> Refusal:
    body = _status_body(exc)
    code = status_code(exc) or 0
    message = body.get("message") or str(getattr(exc, "reason", "") or exc)
    return Refusal(code=code, reason=body.get("reason") or str(getattr(exc, "reason", "")) or "Unknown", message=message, target=target)


def _status_body(exc: BaseException) -> dict[str, Any]:
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class _Hold:
    generation: int | None
    until: float
    failures: int
    refusal: Refusal


class RefusalGate:
    """Per owner: the refusal that stopped its last apply, and until when not to try again.

    Events (a child changed, our own status write) wake the reconciler far more often than
    the slow retry allows; while held, a pass skips the apply. A new generation (the user
    edited the spec) releases the hold at once.
    """

    def __init__(self, base: float = SLOW_RETRY_BASE_S, cap: float = SLOW_RETRY_MAX_S,
                 jitter: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self.jitter = base, cap, jitter
        self._holds: dict[tuple[str, ...], _Hold] = {}
        self._lock = threading.Lock()

    def held(self, key: tuple[str, ...], generation: int | None, now: float) -> float | None:
        """Seconds left to wait, or None when the owner may try to apply now."""
        with self._lock:
            hold = self._holds.get(key)
            if hold is None or hold.generation != generation:
                return None
            return hold.until - now if now < hold.until else None

    def hold(self, key: tuple[str, ...], generation: int | None, refused: Refusal, now: float) -> float:
        """Record a refusal; returns the jittered delay (base * 2^n, capped) before the next try."""
        with self._lock:
            previous = self._holds.get(key)
            failures = previous.failures + 1 if previous and previous.generation == generation else 1
            delay = min(self.cap, self.base * 2 ** (failures - 1)) * (0.8 + 0.4 * self.jitter())
            self._holds[key] = _Hold(generation, now + delay, failures, refused)
            return delay

    def release(self, key: tuple[str, ...]) -> bool:
        """Forget the owner's refusal; True when there was one."""
        with self._lock:
            return self._holds.pop(key, None) is not None
