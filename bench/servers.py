"""The servers the serve bench runs side by side: kubeforge-serve and its peers (KServe, Ray Serve, BentoML).

Each peer runs in a venv of its own (their pins clash with ours and each other's), made here from
bench/peers/requirements-<peer>.txt the first time and whenever that file changes. A peer that cannot
be installed or started stops the bench: a comparison with a row missing is not the comparison.

Every server is started the same way and timed the same way: process start to the first answered
inference request ("cold start"); memory is the resident set of its whole process tree (Ray's head,
raylet and workers; BentoML's arbiter and worker).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
PEERS_DIR = BENCH / "peers"
VENV_ROOT = Path(os.environ.get("KUBEFORGE_BENCH_VENVS", Path.home() / ".cache/kubeforge"))
PEERS = ("kserve", "ray", "bentoml")
V1_PATH = "/v1/models/model:predict"
READY_BODY = b'{"instances": ["ready?"]}'


def ensure_venv(peer: str) -> Path:
    """The peer's venv (created or refreshed from its requirements file when needed); its bin/ directory."""
    venv = VENV_ROOT / f"venv-{peer}"
    requirements = PEERS_DIR / f"requirements-{peer}.txt"
    stamp = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    stamp_file = venv / ".kubeforge-stamp"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return venv / "bin"
    print(f"[serve bench] creating {venv} from {requirements.name} (once per machine; a few minutes)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin/pip"), "install", "--quiet", "--progress-bar", "off", "-r", str(requirements)]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"cannot make the {peer} venv ({' '.join(step[:3])}...):\n{done.stderr[-3000:]}")
    stamp_file.write_text(stamp)
    return venv / "bin"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Launch:
    """How to start one server: its command, env, and the inference route the load goes to."""

    name: str
    command: list[str]
    port: int
    path: str = V1_PATH
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    grpc_port: int | None = None


def kubeforge_launch(name: str, model_dir: Path, *flags: str, grpc: bool = False) -> Launch:
    port, grpc_port = free_port(), (free_port() if grpc else None)
    command = [sys.executable, "-m", "kubeforge_workloads.serve.cli", "--model-dir", str(model_dir),
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--drain-delay-s", "0", *flags]
    if grpc_port:
        command += ["--grpc-port", str(grpc_port)]
    return Launch(name, command, port, grpc_port=grpc_port)


def peer_launch(peer: str, onnx_dir: Path, scratch: Path) -> Launch:
    """The peer's server around the same ONNX model (bench/peers/onnx_classifier.py), in its own venv."""
    bin_dir, port = ensure_venv(peer), free_port()
    # The peer's own venv only: nothing of ours (PYTHONPATH) leaks in; onnx_classifier is found beside the script.
    env = {"PYTHONPATH": str(PEERS_DIR)}
    if peer == "kserve":
        return Launch(peer, [str(bin_dir / "python"), str(PEERS_DIR / "kserve_server.py"), str(onnx_dir), str(port)],
                      port, env=env)
    if peer == "ray":
        return Launch(peer, [str(bin_dir / "python"), str(PEERS_DIR / "ray_server.py"), str(onnx_dir), str(port)],
                      port, "/classify", env=env)
    env.update(KUBEFORGE_BENCH_ONNX_DIR=str(onnx_dir), BENTOML_DO_NOT_TRACK="true", BENTOML_HOME=str(scratch / "bentoml"))
    return Launch(peer, [str(bin_dir / "bentoml"), "serve", "bentoml_service:Classifier", "--host", "127.0.0.1",
                         "--port", str(port)], port, "/classify", env=env, cwd=PEERS_DIR)


class Server:
    """A started server: its process, when it answered first, and the memory of its process tree."""

    def __init__(self, launch: Launch, log_dir: Path):
        self.launch = launch
        self.log_path = log_dir / f"{launch.name}.log"
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", **launch.env}
        self.started = time.perf_counter()
        # A process group of its own (stop() signals the group) but the bench's session: Linux's autogroup
        # scheduler gives each session an equal CPU share on a busy machine, so a server in a session of its
        # own would get a share more than the load generator and the in-process model_alone (this process).
        self.proc = subprocess.Popen(launch.command, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=launch.cwd, process_group=0)
        self.cold_start_s: float | None = None

    @property
    def port(self) -> int:
        return self.launch.port

    def wait_answering(self, timeout: float = 300) -> Server:
        """Poll the inference route every 50 ms until it answers 200: that moment ends the cold start."""
        url = f"http://127.0.0.1:{self.port}{self.launch.path}"
        deadline = self.started + timeout
        with httpx.Client(timeout=5) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"{self.launch.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.post(url, content=READY_BODY, headers={"content-type": "application/json"}).status_code == 200:
                        self.cold_start_s = time.perf_counter() - self.started
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise SystemExit(f"{self.launch.name} did not answer within {timeout:g} s:\n{self.log_tail()}")

    def rss_mb(self) -> float:
        """Resident memory of the server's whole process tree, MiB."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far: the whole process tree, and the root process's main thread alone.

        In kubeforge-serve the main thread is the event loop (HTTP, parsing, tokenizing, answering) and
        the other threads run the model; in the peers the split means less (Ray and BentoML work in
        child processes).
        """
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
            main = next((t.user_time + t.system_time for t in root.threads() if t.id == root.pid), 0.0)
        except psutil.NoSuchProcess:
            return {"tree": 0.0, "main_thread": 0.0}
        tree = 0.0
        for p in procs:
            try:
                times = p.cpu_times()
                tree += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return {"tree": tree, "main_thread": main}

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to the server's process group, then SIGKILL to whatever of its process tree is left.

        Ray and BentoML spawn helpers; some of Ray's (its actors) leave the group, so the tree is
        listed before the SIGTERM and each survivor is killed by its pid.
        """
        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        for proc in [psutil.Process(self.proc.pid), *tree] if self.proc.poll() is None else tree:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()
        self._log.close()


class PeakRss:
    """Samples a server's tree RSS every 0.2 s in a thread while the `with` block runs; .peak in MiB."""

    def __init__(self, server: Server):
        self.server = server
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.server.rss_mb())

    def __enter__(self) -> PeakRss:
        self.peak = self.server.rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
