"""RFC 3339 timestamps as Kubernetes writes them (UTC, whole seconds, a trailing Z): one formatter, one parser."""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339(moment: datetime) -> str:
    """`moment` (timezone-aware) as metav1.Time serialises it, e.g. 2026-01-01T00:10:00Z."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339(datetime.now(timezone.utc))


def parse_rfc3339(value: str | None) -> datetime | None:
    """The moment a metav1.Time string names; None for None or ''."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
