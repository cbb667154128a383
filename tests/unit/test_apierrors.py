"""The API server's refusals: which are retried fast, which honour Retry-After, which become a condition and a slow retry."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from kubeforge.apierrors import RefusalGate, is_permanent, refusal, retry_after


def api_error(status: int, reason: str = "", message: str = "", headers: dict | None = None, details: dict | None = None) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "reason": reason, "message": message, "code": status, "details": details or {}})
    exc.headers = headers or {}
    return exc


@pytest.mark.parametrize(
    "status, permanent",
    [(400, True), (403, True), (404, True), (422, True), (409, False), (429, False), (500, False), (503, False)],
)
def test_only_4xx_other_than_409_and_429_are_permanent(status, permanent):
    assert is_permanent(api_error(status)) is permanent


def test_server_side_applys_500_for_an_undeclared_field_is_permanent():
    message = "failed to create typed patch object (ns/x-a1; batch/v1, Kind=Job): .spec.template.spec.affinity.junk: field not declared in schema"
    assert is_permanent(api_error(500, "InternalError", message)) is True
    assert is_permanent(api_error(500, "InternalError", "etcd leader changed")) is False


def test_a_network_error_is_not_permanent():
    assert is_permanent(ConnectionError("reset")) is False


@pytest.mark.parametrize(
    "error, seconds",
    [
        (api_error(429, headers={"Retry-After": "7"}), 7.0),
        (api_error(503, headers={"Retry-After": "2"}), 2.0),
        (api_error(429, details={"retryAfterSeconds": 3}), 3.0),
        (api_error(500), None),
        (api_error(403, headers={"Retry-After": "9"}), None),  # only 429 and 5xx carry a meaningful one
        (api_error(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), None),
    ],
)
def test_retry_after_comes_from_the_header_or_the_status_details(error, seconds):
    assert retry_after(error) == seconds


def test_a_refusal_carries_the_api_servers_own_message():
    error = api_error(403, "Forbidden", 'jobs.batch "x-a1" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1')
    refused = refusal(error, "Job x-a1")
    assert (refused.code, refused.reason, refused.target) == (403, "Forbidden", "Job x-a1")
    assert "exceeded quota" in refused.message


def gate(jitter: float = 0.5) -> RefusalGate:
    return RefusalGate(base=10, cap=300, jitter=lambda: jitter)


def test_a_held_owner_waits_out_a_slow_doubling_jittered_delay():
    g, refused = gate(), refusal(api_error(403, "Forbidden", "no"), "Job x-a1")
    delays = [g.hold(("ns", "x"), 1, refused, now=0.0) for _ in range(7)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]  # jitter 0.5 is the middle of 0.8..1.2
    assert RefusalGate(base=10, jitter=lambda: 0.0).hold(("ns", "x"), 1, refused, 0.0) == 8.0
    assert RefusalGate(base=10, jitter=lambda: 1.0).hold(("ns", "x"), 1, refused, 0.0) == pytest.approx(12.0)


def test_while_held_a_pass_waits_and_a_new_generation_or_release_lets_it_through():
    g, refused = gate(), refusal(api_error(422, "Invalid", "bad"), "Job x-a1")
    g.hold(("ns", "x"), 1, refused, now=100.0)
    assert g.held(("ns", "x"), 1, now=104.0) == 6.0
    assert g.held(("ns", "x"), 2, now=104.0) is None  # the user edited the spec
    assert g.held(("ns", "x"), 1, now=111.0) is None  # time for the slow retry
    assert g.release(("ns", "x")) is True and g.held(("ns", "x"), 1, now=104.0) is None
    assert g.release(("ns", "x")) is False
