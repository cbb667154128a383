"""RFC 3339 timestamps the way Kubernetes writes metav1.Time: UTC, whole seconds, a trailing Z."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubeforge.timestamps import now_rfc3339, parse_rfc3339, rfc3339

PARIS = timezone(timedelta(hours=1))


def test_a_moment_is_written_in_utc_to_the_second_with_a_z():
    assert rfc3339(datetime(2026, 1, 1, 1, 10, 5, 999_999, tzinfo=PARIS)) == "2026-01-01T00:10:05Z"


def test_what_is_written_reads_back_as_the_same_moment():
    moment = datetime(2026, 3, 1, 12, 0, 30, tzinfo=timezone.utc)
    assert parse_rfc3339(rfc3339(moment)) == moment
    assert parse_rfc3339(now_rfc3339()).tzinfo is not None


def test_an_absent_timestamp_reads_as_none():
    assert parse_rfc3339(None) is None and parse_rfc3339("") is None
