"""Shutdown loses no request: on SIGTERM readiness turns 503 while the server still answers, and a rolling
restart under load (new replica ready, old one drained, as the Deployment's maxUnavailable 0 does) fails none."""

from __future__ import annotations

import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from kubeforge import servecontract as sc
from tests.waiting import wait_for

pytest_plugins = ["tests.workload.serve_fixtures"]
pytestmark = pytest.mark.workload


def test_sigterm_turns_readiness_503_while_requests_are_still_answered(start_server, tiny_model_dir):
    server = start_server(tiny_model_dir, "--drain-delay-s", "120")

    server.proc.send_signal(signal.SIGTERM)

    wait_for(lambda: httpx.get(server.url + sc.READY_PATH).status_code == 503, 10, "readiness to fail")
    assert httpx.get(server.url + sc.READY_PATH).json() == {"error": "shutting down"}
    resp = httpx.post(server.url + "/predict", json={"text": "still served"})
    assert resp.status_code == 200
    assert resp.headers["connection"] == "close"  # clients reconnect elsewhere instead of reusing this one
    # A second SIGTERM ends the drain delay at once (as SIGINT does).
    assert server.terminate(timeout=30) == 0


class Endpoints:
    """What the endpoints controller and kube-proxy do for a Service, here on 127.0.0.1: clients pick among
    the replicas whose readiness answers 200, as a readiness probe every PROBE_PERIOD_S sees it."""

    PROBE_PERIOD_S = 0.05

    def __init__(self) -> None:
        self.members: list = []
        self.ready: list[str] = []
        self._stop = threading.Event()
        self._prober = threading.Thread(target=self._probe, daemon=True)

    def __enter__(self) -> Endpoints:
        self._prober.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._prober.join()

    def _probe(self) -> None:
        with httpx.Client(timeout=1) as client:
            while not self._stop.wait(self.PROBE_PERIOD_S):
                self.ready = [s.url for s in list(self.members) if _answers_ready(client, s.url)]

    def pick(self) -> str:
        return random.choice(self.ready)


def _answers_ready(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url + sc.READY_PATH).status_code == 200
    except httpx.TransportError:
        return False


class Load:
    """CLIENTS threads sending requests back to back through the endpoints; every outcome is kept."""

    CLIENTS = 4

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.outcomes: list[tuple[str, str]] = []  # (replica url, status code or error)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(self.CLIENTS)

    def __enter__(self) -> Load:
        for i in range(self.CLIENTS):
            self._pool.submit(self._client, i)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)

    def _client(self, i: int) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                url = self.endpoints.pick()
                try:
                    resp = client.post(url + "/predict", json={"text": f"client {i} says hello"})
                    self.outcomes.append((url, str(resp.status_code)))
                except httpx.HTTPError as exc:
                    self.outcomes.append((url, repr(exc)))

    def served_by(self, url: str) -> int:
        return sum(1 for u, outcome in self.outcomes if u == url and outcome == "200")


def test_a_rolling_restart_under_load_fails_no_request(start_server, tiny_model_dir):
    # As the Deployment rolls (maxSurge 1, maxUnavailable 0): a new replica is Ready before an old one stops.
    drain = ("--drain-delay-s", "2")  # many probe periods: every client has seen readiness fail by then
    old = start_server(tiny_model_dir, *drain)
    with Endpoints() as endpoints:
        endpoints.members.append(old)
        wait_for(lambda: endpoints.ready == [old.url], 10, "the first replica in the endpoints")
        with Load(endpoints) as load:
            for _ in range(2):
                new = start_server(tiny_model_dir, *drain)
                endpoints.members.append(new)
                wait_for(lambda: new.url in endpoints.ready, 30, "the new replica in the endpoints")
                wait_for(lambda: load.served_by(new.url) > 0, 30, "traffic on the new replica")
                old.proc.send_signal(signal.SIGTERM)
                assert old.proc.wait(timeout=60) == 0, old.log()
                endpoints.members.remove(old)
                old = new
            wait_for(lambda: load.served_by(old.url) > 20, 30, "traffic on the last replica")
    failed = [o for o in load.outcomes if o[1] != "200"]
    print(f"\nrolling restart: {len(load.outcomes)} requests over 3 replicas, {len(failed)} failed")
    assert failed == []
