"""The one config loader: serving env (servecontract names, set by the ModelEndpoint builder) overridden by CLI flags."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubeforge import servecontract as sc

RUNTIMES = ("auto", "tensorrt", "onnxruntime", "torch")
FORMATS = ("auto", "onnx", "huggingface")
QUANTIZATIONS = ("none", "int8")
TASKS = ("text-classification",)


@dataclass(frozen=True)
class ServeConfig:
    """Everything kubeforge-serve needs to start; built only by `load_config`."""

    model_dir: str
    model_name: str = "model"
    model_uri: str = ""
    model_format: str = "auto"
    task: str = "text-classification"
    runtime: str = "auto"
    quantize: str = "none"
    max_batch_size: int = sc.DEFAULT_MAX_BATCH_SIZE
    max_delay_ms: float = sc.DEFAULT_MAX_DELAY_MS
    max_queue: int = 512
    max_body_bytes: int = 1 << 20
    max_texts: int = 64
    max_seq_length: int | None = None  # None: the manifest's, else the model config's
    engine_cache_dir: str = ""
    host: str = "0.0.0.0"  # a pod's server must be reachable on the pod IP
    port: int = sc.DEFAULT_PORT
    drain_timeout_s: float = 25.0  # inside Kubernetes' default 30 s termination grace period
    log_level: str = "info"


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """Flags whose defaults come from the environment, so a flag always wins over the env."""
    p = argparse.ArgumentParser(prog="kubeforge-serve", description="Serve a kubeforge model over HTTP.")

    def opt(flag: str, env_name: str | None, default, **kw):
        value = env.get(env_name, default) if env_name else default
        p.add_argument(flag, default=value, **kw)

    opt("--model-dir", sc.MODEL_DIR, None, help=f"model directory [{sc.MODEL_DIR}]")
    opt("--model-name", sc.MODEL_NAME, "model", help=f"name in /v1 and /v2 routes [{sc.MODEL_NAME}]")
    opt("--model-uri", sc.MODEL_URI, "", help=f"URI reported in metadata [{sc.MODEL_URI}]")
    opt("--model-format", sc.MODEL_FORMAT, "auto", choices=FORMATS, help=f"[{sc.MODEL_FORMAT}]")
    opt("--task", sc.TASK, "text-classification", choices=TASKS, help=f"[{sc.TASK}]")
    opt("--runtime", sc.RUNTIME, "auto", choices=RUNTIMES, help=f"[{sc.RUNTIME}]")
    opt("--quantize", sc.QUANTIZE, "none", choices=QUANTIZATIONS, help=f"ONNX Runtime on CPU only [{sc.QUANTIZE}]")
    opt("--max-batch-size", sc.MAX_BATCH_SIZE, sc.DEFAULT_MAX_BATCH_SIZE, type=int, help=f"[{sc.MAX_BATCH_SIZE}]")
    opt("--max-delay-ms", sc.MAX_DELAY_MS, sc.DEFAULT_MAX_DELAY_MS, type=float, help=f"[{sc.MAX_DELAY_MS}]")
    opt("--max-queue", sc.MAX_QUEUE, 512, type=int, help=f"texts waiting before 429 [{sc.MAX_QUEUE}]")
    opt("--max-body-bytes", sc.MAX_BODY_BYTES, 1 << 20, type=int, help=f"413 above this [{sc.MAX_BODY_BYTES}]")
    opt("--engine-cache-dir", sc.ENGINE_CACHE_DIR, "", help=f"TensorRT engines, int8 models [{sc.ENGINE_CACHE_DIR}]")
    opt("--host", sc.HOST, "0.0.0.0", help=f"[{sc.HOST}]")
    opt("--port", sc.PORT, sc.DEFAULT_PORT, type=int, help=f"[{sc.PORT}]")
    opt("--max-texts", None, 64, type=int, help="texts per request before 400")
    opt("--max-seq-length", None, None, type=int, help="tokens per text before 400 (default: the model's)")
    opt("--drain-timeout-s", None, 25.0, type=float, help="how long SIGTERM waits for in-flight requests")
    opt("--log-level", None, "info", choices=("debug", "info", "warning", "error"))
    return p


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ServeConfig:
    """Parse env then flags into a validated ServeConfig; exits with a usage message naming the bad setting."""
    env = os.environ if env is None else env
    parser = _parser(env)
    ns = parser.parse_args(argv)
    try:
        cfg = ServeConfig(**{k: _coerce(k, v) for k, v in vars(ns).items()})
    except ValueError as exc:
        parser.error(str(exc))
    problem = validate(cfg)
    if problem:
        parser.error(problem)
    return cfg


def _coerce(name: str, value):
    """Env values arrive as strings even for typed flags (argparse types only apply to CLI input)."""
    field = ServeConfig.__dataclass_fields__[name]
    if value is None or not isinstance(value, str):
        return value
    kind = {"int": int, "float": float, "int | None": int}.get(str(field.type))
    if kind is None:
        return value
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name.replace('_', '-')}: expected a number, got {value!r}") from None


def validate(cfg: ServeConfig) -> str | None:
    """The first reason this config cannot start a server, or None."""
    if not cfg.model_dir:
        return f"--model-dir (or {sc.MODEL_DIR}) is required"
    checks = [
        (cfg.runtime in RUNTIMES, f"runtime must be one of {RUNTIMES}"),
        (cfg.model_format in FORMATS, f"model format must be one of {FORMATS}"),
        (cfg.quantize in QUANTIZATIONS, f"quantize must be one of {QUANTIZATIONS}"),
        (cfg.task in TASKS, f"task must be one of {TASKS}"),
        (cfg.max_batch_size >= 1, "max-batch-size must be >= 1"),
        (cfg.max_delay_ms >= 0, "max-delay-ms must be >= 0"),
        (cfg.max_queue >= 1, "max-queue must be >= 1"),
        (cfg.max_body_bytes >= 1024, "max-body-bytes must be >= 1024"),
        (cfg.max_texts >= 1, "max-texts must be >= 1"),
        (cfg.max_seq_length is None or cfg.max_seq_length >= 2, "max-seq-length must be >= 2"),
    ]
    return next((msg for ok, msg in checks if not ok), None)
