"""The one config loader: serving env (servecontract names, set by the ModelEndpoint builder) overridden by CLI flags."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass

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
    model_revision: str = ""  # sent as the X-Kubeforge-Model header on every HTTP response; empty: no header
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
    grpc_port: int = 0  # 0: HTTP only
    request_timeout_s: float = 20.0  # deadline (504); under drain_timeout_s, so a drain ends in answers
    header_timeout_s: float = 10.0  # a request's headers not complete by then: connection closed
    max_header_bytes: int = 64 * 1024  # 431 above this
    body_timeout_s: float = 10.0  # a body not received by then: 408
    limit_concurrency: int = 1000  # connections + requests beyond this get uvicorn's 503
    drain_delay_s: float = sc.DEFAULT_DRAIN_DELAY_S  # after SIGTERM: readiness 503, still serving
    drain_timeout_s: float = sc.DEFAULT_DRAIN_TIMEOUT_S  # then in-flight requests get this long to finish
    log_level: str = "info"
    # A canary pod's traffic report (serve/traffic.py): the ConfigMap, how often, and this pod's name and namespace.
    report_configmap: str = ""
    report_every_s: float = sc.DEFAULT_REPORT_EVERY_S
    pod_name: str = ""
    pod_namespace: str = ""
    service_account_dir: str = "/var/run/secrets/kubernetes.io/serviceaccount"


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """Flags whose defaults come from the environment, so a flag always wins over the env."""
    p = argparse.ArgumentParser(prog="kubeforge-serve", description="Serve a kubeforge model over HTTP.")

    def opt(flag: str, env_name: str | None, **kw):
        # The default is ServeConfig's own (one place), unless the environment sets one.
        default = ServeConfig.__dataclass_fields__[flag[2:].replace("-", "_")].default
        default = None if default is MISSING else default
        p.add_argument(flag, default=env.get(env_name, default) if env_name else default, **kw)

    opt("--model-dir", sc.MODEL_DIR, help=f"model directory [{sc.MODEL_DIR}]")
    opt("--model-name", sc.MODEL_NAME, help=f"name in /v1 and /v2 routes [{sc.MODEL_NAME}]")
    opt("--model-uri", sc.MODEL_URI, help=f"URI reported in metadata [{sc.MODEL_URI}]")
    opt("--model-revision", sc.MODEL_REVISION, help=f"X-Kubeforge-Model response header [{sc.MODEL_REVISION}]")
    opt("--model-format", sc.MODEL_FORMAT, choices=FORMATS, help=f"[{sc.MODEL_FORMAT}]")
    opt("--task", sc.TASK, choices=TASKS, help=f"[{sc.TASK}]")
    opt("--runtime", sc.RUNTIME, choices=RUNTIMES, help=f"[{sc.RUNTIME}]")
    opt("--quantize", sc.QUANTIZE, choices=QUANTIZATIONS, help=f"ONNX Runtime on CPU only [{sc.QUANTIZE}]")
    opt("--max-batch-size", sc.MAX_BATCH_SIZE, type=int, help=f"[{sc.MAX_BATCH_SIZE}]")
    opt("--max-delay-ms", sc.MAX_DELAY_MS, type=float, help=f"[{sc.MAX_DELAY_MS}]")
    opt("--max-queue", sc.MAX_QUEUE, type=int, help=f"texts waiting before 429 [{sc.MAX_QUEUE}]")
    opt("--max-body-bytes", sc.MAX_BODY_BYTES, type=int, help=f"413 above this [{sc.MAX_BODY_BYTES}]")
    opt("--engine-cache-dir", sc.ENGINE_CACHE_DIR, help=f"TensorRT engines, int8 models [{sc.ENGINE_CACHE_DIR}]")
    opt("--host", sc.HOST, help=f"[{sc.HOST}]")
    opt("--port", sc.PORT, type=int, help=f"[{sc.PORT}]")
    opt("--grpc-port", sc.GRPC_PORT, type=int, help=f"Open Inference Protocol v2 over gRPC on this port; 0: off [{sc.GRPC_PORT}]")
    opt("--max-texts", None, type=int, help="texts per request before 400")
    opt("--max-seq-length", None, type=int, help="tokens per text before 400 (default: the model's)")
    opt("--request-timeout-s", None, type=float, help="per-request deadline before 504")
    opt("--header-timeout-s", None, type=float, help="time to receive a request's headers before closing")
    opt("--max-header-bytes", None, type=int, help="431 above this")
    opt("--body-timeout-s", None, type=float, help="time to receive a request body before 408")
    opt("--limit-concurrency", None, type=int, help="connections and requests before uvicorn answers 503")
    opt("--drain-delay-s", None, type=float, help="after SIGTERM: readiness fails, requests still served")
    opt("--drain-timeout-s", None, type=float, help="then how long in-flight requests get to finish")
    opt("--log-level", None, choices=("debug", "info", "warning", "error"))
    opt("--report-configmap", sc.REPORT_CONFIGMAP, help=f"canary pods: report traffic into this ConfigMap [{sc.REPORT_CONFIGMAP}]")
    opt("--report-every-s", sc.REPORT_EVERY_S, type=float, help=f"[{sc.REPORT_EVERY_S}]")
    opt("--pod-name", sc.POD_NAME, help=f"the report's key [{sc.POD_NAME}]")
    opt("--pod-namespace", sc.POD_NAMESPACE, help=f"[{sc.POD_NAMESPACE}]")
    opt("--service-account-dir", None, help="token and ca.crt for the report")
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
        (min(cfg.request_timeout_s, cfg.header_timeout_s, cfg.body_timeout_s) > 0, "timeouts must be > 0"),
        (cfg.max_header_bytes >= 1024, "max-header-bytes must be >= 1024"),
        (cfg.limit_concurrency >= 1, "limit-concurrency must be >= 1"),
        (cfg.drain_delay_s >= 0 and cfg.drain_timeout_s >= 0, "drain-delay-s and drain-timeout-s must be >= 0"),
        (0 <= cfg.grpc_port <= 65535 and cfg.grpc_port != cfg.port, "grpc-port must be 0 (off) or a port other than port"),
        (not cfg.report_configmap or (cfg.pod_name and cfg.pod_namespace and cfg.report_every_s > 0),
         "report-configmap needs pod-name, pod-namespace and report-every-s > 0"),
    ]
    return next((msg for ok, msg in checks if not ok), None)
