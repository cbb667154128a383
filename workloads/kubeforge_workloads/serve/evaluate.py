"""The held-out evaluation of a server pod: score the model on a labelled file before the server turns Ready.

Runs as the init container `model-eval` (the server image, `python -m kubeforge_workloads.serve.evaluate`)
after the model download and before kubeforge-serve starts, with the server's own env: the same model
directory, runtime resolution and backend the server then serves with (kubeforge_workloads.serve.app.build_model).
It reads spec.rollout.promotion.evaluation from the serving contract's KUBEFORGE_EVAL_* env, computes the
metrics training reports (accuracy, macro f1, loss = mean cross-entropy; and samples), and checks the gate
the operator computed (KUBEFORGE_EVAL_GATE: the thresholds, and notWorseThanServing's floor).

The report is its termination message, one JSON line the operator reads from the pod's status through the
API server (no port, no token): {"metrics", "passed": true, "data"} and exit 0; a model that misses the gate
{"metrics", "passed": false, "failed": "accuracy 0.41 fails the threshold accuracy >= 0.9"} and exit 1, so the
pod never turns Ready and the new model serves nothing; a file that cannot be read {"error"} and exit 1.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubeforge import contract, servecontract as sc
from kubeforge.thresholds import first_failure

from .. import objectstore as obs
from .config import load_config
from .modelfetch import write_message

log = logging.getLogger("kubeforge.serve.evaluate")


@dataclass(frozen=True)
class EvalSettings:
    uri: str
    format: str = "auto"
    text_column: str = "text"
    label_column: str = "label"
    gate: tuple[dict, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "EvalSettings":
        gate = json.loads(env.get(sc.EVAL_GATE) or "[]")
        return cls(env.get(sc.EVAL_URI, ""), env.get(sc.EVAL_FORMAT) or "auto", env.get(sc.EVAL_TEXT_COLUMN) or "text",
                   env.get(sc.EVAL_LABEL_COLUMN) or "label", tuple(gate))


def read_text(uri: str, settings: obs.Settings | None = None) -> str:
    """The file's text: s3://bucket/key through the object-store env, file:///path or a local path."""
    if uri.startswith("s3://"):
        name, key = obs.split_uri(uri)
        return obs.get_bytes(obs.open_bucket(name, settings), key).decode("utf-8")
    return Path(uri.removeprefix("file://")).read_text(encoding="utf-8")


def parse_rows(text: str, fmt: str, uri: str, text_column: str, label_column: str) -> list[tuple[str, object]]:
    """(text, raw label) rows of a JSONL or CSV file; a row missing either is an error naming its line."""
    fmt = fmt if fmt != "auto" else ("csv" if uri.lower().endswith(".csv") else "jsonl")
    if fmt == "csv":
        records = list(csv.DictReader(io.StringIO(text)))
    else:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = []
    for line, rec in enumerate(records, start=2 if fmt == "csv" else 1):
        if not isinstance(rec, dict) or rec.get(text_column) in (None, "") or rec.get(label_column) in (None, ""):
            raise ValueError(f"{uri} line {line}: needs {text_column!r} and {label_column!r}")
        rows.append((str(rec[text_column]), rec[label_column]))
    if not rows:
        raise ValueError(f"{uri}: no rows")
    return rows


def label_index(raw: object, labels: list[str]) -> int:
    """A label given by name (as the model's config names it) or by index."""
    if str(raw) in labels:
        return labels.index(str(raw))
    try:
        index = int(str(raw))
    except ValueError:
        index = -1
    if 0 <= index < len(labels):
        return index
    raise ValueError(f"label {raw!r} is none of the model's labels {labels} (by name or index)")


def scores(truth: list[int], probabilities: list[list[float]]) -> dict:
    """accuracy, macro f1 (over the labels seen in truth or predictions, as scikit-learn's), mean cross-entropy."""
    predicted = [max(range(len(p)), key=p.__getitem__) for p in probabilities]
    accuracy = sum(t == p for t, p in zip(truth, predicted)) / len(truth)
    f1s = []
    for label in sorted(set(truth) | set(predicted)):
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    loss = -sum(math.log(max(p[t], 1e-12)) for t, p in zip(truth, probabilities)) / len(truth)
    return {"accuracy": round(accuracy, 6), "f1": round(sum(f1s) / len(f1s), 6), "loss": round(loss, 6), "samples": len(truth)}


def evaluate(model, rows: list[tuple[str, object]], batch_size: int) -> dict:
    """The loaded model's metrics on `rows` (texts longer than the model's limit are truncated, not refused)."""
    truth = [label_index(label, list(model.labels)) for _, label in rows]
    texts = [text for text, _ in rows]
    probabilities: list[list[float]] = []
    for start in range(0, len(texts), batch_size):
        probabilities += model.infer(model.encoder.encode(texts[start:start + batch_size], truncate=True)).tolist()
    return scores(truth, probabilities)


def run(env: Mapping[str, str]) -> tuple[dict, int]:
    """The report and the exit code."""
    from .app import build_model
    from .runtime import probe_platform

    settings = EvalSettings.from_env(env)
    if not settings.uri:
        return {"error": f"{sc.EVAL_URI} must be set"}, 1
    started = time.monotonic()
    try:
        rows = parse_rows(read_text(settings.uri), settings.format, settings.uri, settings.text_column, settings.label_column)
        cfg = load_config([], env)
        model = build_model(cfg, probe_platform())
        model.load(1)
        metrics = evaluate(model, rows, cfg.max_batch_size)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a report the operator can show
        log.exception("held-out evaluation of %s failed", settings.uri)
        return {"error": f"{type(exc).__name__}: {exc}"[:1500], "data": settings.uri}, 1
    failed = first_failure(metrics, settings.gate)
    report = {"metrics": metrics, "passed": failed is None, "data": settings.uri, "seconds": round(time.monotonic() - started, 3)}
    if failed:
        report["failed"] = failed
    log.info("held-out evaluation of %s on %s: %s", cfg.model_dir, settings.uri, report)
    return report, 0 if failed is None else 1


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report, code = run(os.environ)
    write_message(os.environ.get(contract.TERMINATION_LOG, contract.DEFAULT_TERMINATION_LOG), report)
    return code


if __name__ == "__main__":
    sys.exit(main())
