"""What `kubeforge run --local` prints: rank 0's progress as it arrives, then the result of the run.

The result is what the operator would read from the pods: each node's exit code (a
signal as 128+N, as a container reports it), the wall time, and rank 0's termination
message (the file TERMINATION_MESSAGE_PATH named), whatever program wrote it. The built-in
recipe's summary also gets its metrics and model paths spelled out.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from kubeforge import storage
from kubeforge.contract import TERMINATION_MESSAGE_LIMIT

LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class NodeResults:
    """Each node's exit code by rank; first_failed: the rank whose failure stopped the group (None: none failed)."""

    codes: list[int]
    first_failed: int | None = None

    @property
    def code(self) -> int:
        """The run's exit code: the first failure's, as the operator blames the first failed pod."""
        return 0 if self.first_failed is None else self.codes[self.first_failed]

    def describe(self) -> str:
        return ", ".join(f"node {rank}: {code}" for rank, code in enumerate(self.codes))


def termination_message(workdir: Path, rank: int = 0) -> str | None:
    """The node's termination message as the kubelet would keep it (at most 4096 bytes); None if none was written."""
    path = workdir / f"termination-{rank}.json"
    if not path.exists():
        return None
    return path.read_bytes()[:TERMINATION_MESSAGE_LIMIT].decode(errors="replace").strip()


def parse_summary(message: str | None) -> dict:
    try:
        summary = json.loads(message) if message else {}
    except json.JSONDecodeError:
        return {}
    return summary if isinstance(summary, dict) else {}


def print_result(workdir: Path, results: NodeResults, wall_s: float, out: TextIO) -> None:
    message = termination_message(workdir)
    verdict = "succeeded" if results.code == 0 else f"failed (exit code {results.code}, node {results.first_failed} first)"
    print(f"kubeforge: {verdict} in {wall_s:.1f} s; exit codes: {results.describe()}", file=out)
    print(f"  result (rank 0's termination message): {message if message else '(none written)'}", file=out)
    summary = parse_summary(message)
    if results.code != 0:
        for log in sorted(workdir.glob("node-*.log")):
            print(f"--- last lines of {log} ---\n" + "\n".join(log.read_text().splitlines()[-LOG_TAIL_LINES:]), file=out)
    elif "steps" in summary:
        print_recipe_summary(summary, out)
    out.flush()


def print_recipe_summary(summary: dict, out: TextIO) -> None:
    """The built-in recipe's summary in words: steps, throughput, metrics, where the model went."""
    print(f"  {summary['steps']} steps (resumed from step {summary.get('resumedFromStep', 0)}), "
          f"{summary.get('samplesPerSecond', 0):.1f} samples/s", file=out)
    metrics = summary.get("metrics", {})
    if metrics:
        print(f"  eval accuracy {metrics.get('accuracy', 0):.4f}  macro F1 {metrics.get('f1', 0):.4f}"
              f"  ({metrics.get('evalSamples', '?')} samples)", file=out)
    model_uri = summary.get("modelUri")
    if model_uri and storage.is_object_uri(model_uri):
        print(f"  model: {model_uri} ({summary.get('modelDigest', 'no digest')})", file=out)
    elif model_uri:
        model_dir = model_uri.removeprefix("file://")
        print(f"  model: {model_uri}\n    Hugging Face: {model_dir}/hf\n    ONNX:         {model_dir}/onnx/model.onnx", file=out)


class ProgressPrinter:
    """Prints rank 0's progress records as they arrive in the progress file."""

    def __init__(self, path: Path, out: TextIO, every_s: float = 2.0):
        self.path, self.out, self.every_s = path, out, every_s
        self.offset, self.last_print, self.last, self.printed = 0, float("-inf"), None, None

    def poll(self, force: bool = False) -> None:
        if self.path.exists():
            with open(self.path) as handle:
                handle.seek(self.offset)
                text = handle.read()
            complete = text[:text.rfind("\n") + 1]  # a line still being written waits for the next poll
            self.offset += len(complete.encode())
            records = [json.loads(line) for line in complete.splitlines() if line.strip()]
            self.last = records[-1] if records else self.last
        fresh = self.last is not None and self.last is not self.printed
        if fresh and (force or time.monotonic() - self.last_print >= self.every_s):
            self.last_print, self.printed = time.monotonic(), self.last
            loss = f"  loss {self.last['loss']:.4f}" if "loss" in self.last else ""
            total = f"/{self.last['totalSteps']}" if self.last.get("totalSteps") else ""
            print(f"  step {self.last['step']}{total}{loss}", file=self.out, flush=True)
