"""Runs the kubeforge operator as a real subprocess against the local cluster, for integration tests.

Registered once for the whole session through `pytest_plugins` in tests/conftest.py: importing the
fixture into test modules would make one "session" operator per module, all reconciling at once.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kubeforge.localhost import free_port

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("KUBEFORGE_CACHE", Path.home() / ".cache" / "kubeforge"))


def kubectl_binary() -> str:
    for candidate in sorted(CACHE.glob("k8s-*/bin/kubectl"), reverse=True):
        return str(candidate)
    return "kubectl"


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


class OperatorProcess:
    """One operator: start / stop (SIGTERM) / kill (SIGKILL) / restart, with health and metrics on free ports."""

    def __init__(self, kubeconfig: str, log_path: Path, env: dict[str, str] | None = None, verbose: bool = True):
        self.kubeconfig = kubeconfig
        self.verbose = verbose  # DEBUG logs (every kopf handler call): what tests want, not what a bench measures
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KUBECONFIG=self.kubeconfig,
            KUBEFORGE_HEALTH_ADDR=f"127.0.0.1:{self.health_port}",
            KUBEFORGE_METRICS_ADDR=f"127.0.0.1:{self.metrics_port}",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> "OperatorProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubeforge", *(["--verbose"] if self.verbose else [])], env=self.env(), stdout=log,
            stderr=subprocess.STDOUT, cwd=REPO
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}; log:\n{self.tail()}")
            if http_get(self.health_url)[0] == 200:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"operator not healthy after {timeout}s; log:\n{self.tail()}")

    def stop(self, timeout: float = 20) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies under the operator."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> "OperatorProcess":
        self.stop()
        return self.start()

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def running_session_operators() -> list[OperatorProcess]:
    """Every operator this pytest process started and is still running.

    The `operator` fixture is imported into each test module, and pytest keeps one instance
    per importing module (session scope or not), so several may run: search them all.
    """
    return [o for o in gc.get_objects() if isinstance(o, OperatorProcess) and o.proc is not None and o.proc.poll() is None]


def apply_crds(kubeconfig: str) -> None:
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    run = lambda *a: subprocess.run([kubectl_binary(), *a], env=env, check=True, capture_output=True, text=True)  # noqa: E731
    run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))


@pytest.fixture(scope="session")
def operator(cluster, tmp_path_factory):
    """One operator for the session, cluster-wide, with the CRDs from crds/ applied."""
    apply_crds(cluster.kubeconfig)
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(cluster.kubeconfig, log_path).start()
    yield proc
    proc.stop()
    if os.environ.get("KUBEFORGE_SHOW_OPERATOR_LOG"):
        print(proc.tail(200))


@pytest.fixture(autouse=True)
def session_operator_alive(request: pytest.FixtureRequest):
    """Every test that uses the session operator gets a running one.

    The chaos tests kill the operator and the API server on purpose, and kopf ends the whole
    process when its watches stay refused (about 35 s): without this, one such ending made every
    later integration test fail at setup, hiding what they test. A test that needs the operator
    to survive asserts it itself (test_chaos does); the restart is logged in the operator's log.
    """
    if "operator" in request.fixturenames:
        operator = request.getfixturevalue("operator")
        if operator.proc is None or operator.proc.poll() is not None:
            with open(operator.log_path, "a") as log:
                log.write(f"--- session operator found stopped before {request.node.nodeid}: restarted\n")
            operator.start()
    yield
