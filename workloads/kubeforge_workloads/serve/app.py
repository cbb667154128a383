"""Assembling the server: resolve the runtime, build the FastAPI app, load the model after the port is open."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from .backends import create_backend
from .batcher import DynamicBatcher
from .config import ServeConfig
from .dataplane import DataPlane
from .errors import install_error_handlers
from .grpcserver import InferenceService, start_grpc_server
from .hotpath import HotRoutes
from .metrics import ServerMetrics
from .middleware import BodyLimitMiddleware, MetricsMiddleware
from .model import TextClassificationModel
from .modeldir import find_model_files
from .repository import ModelRepository
from .routes import router
from .runtime import Platform, probe_platform, resolve_runtime
from .traffic import TrafficReporter, TrafficStats

log = logging.getLogger("kubeforge.serve")


def build_model(cfg: ServeConfig, platform: Platform) -> TextClassificationModel:
    """Everything that can fail fast (layout, runtime choice) happens here, before the port opens."""
    files = find_model_files(cfg.model_dir)
    res = resolve_runtime(cfg.runtime, cfg.model_format, files.onnx_path is not None, files.hf_dir is not None,
                          platform, cfg.quantize)
    log.info("runtime resolved: %s on %s (quantize=%s; %s) for %s", res.runtime, res.device, res.quantize,
             res.reason, cfg.model_dir)
    backend = create_backend(res, files, cfg, platform)
    notes = {"requested_runtime": cfg.runtime, "runtime_reason": res.reason, "model_uri": cfg.model_uri}
    return TextClassificationModel(cfg.model_name, files, backend, cfg.max_seq_length, notes)


async def _load_in_background(app: FastAPI, model: TextClassificationModel, cfg: ServeConfig) -> None:
    """Load and warm up off the event loop, so liveness answers during a long load (TensorRT builds take minutes)."""
    try:
        await asyncio.to_thread(model.load, cfg.max_batch_size)
    except Exception:
        log.exception("model %s failed to load", model.name)
        app.state.on_fatal()
        return
    metrics: ServerMetrics = app.state.metrics
    plane: DataPlane = app.state.dataplane
    batcher = DynamicBatcher(model.infer, max_batch_size=cfg.max_batch_size, max_delay_ms=cfg.max_delay_ms,
                             max_queue=cfg.max_queue, requests_in_flight=plane.in_flight,
                             on_batch=metrics.observe_batch, run_inline=model.small_enough_inline,
                             request_timeout_s=cfg.request_timeout_s)
    batcher.start()
    metrics.load_seconds.set(model.load_seconds)
    metrics.track_queue_depth(lambda: batcher.depth)
    plane.batcher = batcher


def create_app(cfg: ServeConfig, platform: Platform | None = None) -> FastAPI:
    model = build_model(cfg, platform or probe_platform())
    repository = ModelRepository()
    repository.add(model)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        grpc_server = None
        if cfg.grpc_port:
            service = InferenceService(app.state.dataplane, app.state.metrics, app.state.traffic)
            grpc_server = await start_grpc_server(service, cfg.host, cfg.grpc_port, cfg.max_body_bytes)
        loader = asyncio.create_task(_load_in_background(app, model, cfg))
        reporter = _traffic_reporter(cfg, app.state.traffic)
        yield
        if reporter:
            await asyncio.to_thread(reporter.stop)
        # uvicorn has drained in-flight requests by now (SIGTERM: stop accepting, finish, then lifespan);
        # gRPC calls still running get the same grace.
        if grpc_server:
            await grpc_server.stop(cfg.drain_timeout_s)
        loader.cancel()
        await asyncio.gather(loader, return_exceptions=True)
        if app.state.dataplane.batcher:
            await app.state.dataplane.batcher.stop()

    app = FastAPI(title="kubeforge-serve", version="0.1.0", lifespan=lifespan,
                  description="Text classification: /predict, KServe v1 and Open Inference Protocol v2.")
    app.state.dataplane = plane = DataPlane(repository, cfg.max_texts)
    app.state.metrics = ServerMetrics()
    app.state.metrics.in_flight.set_function(plane.in_flight)
    app.state.on_fatal = lambda: None
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=cfg.max_body_bytes)
    app.state.traffic = TrafficStats()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics, traffic=app.state.traffic)  # outermost
    return app


def _traffic_reporter(cfg: ServeConfig, stats: TrafficStats) -> TrafficReporter | None:
    """A canary pod reports its traffic through the API server (serve/traffic.py); any other server does not."""
    if not cfg.report_configmap:
        return None
    api = (os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "443"))
    log.info("reporting traffic to configmap %s/%s key %s every %g s", cfg.pod_namespace, cfg.report_configmap, cfg.pod_name,
             cfg.report_every_s)
    return TrafficReporter(stats, api, cfg.pod_namespace, cfg.report_configmap, cfg.pod_name, cfg.model_revision,
                           cfg.report_every_s, Path(cfg.service_account_dir)).start()


def serving_app(app: FastAPI, cfg: ServeConfig) -> HotRoutes:
    """What uvicorn runs: the inference POSTs answered ahead of the FastAPI app (hotpath.py), the rest by it."""
    return HotRoutes(app, app.state.dataplane, app.state.metrics, app.state.traffic, cfg.max_body_bytes,
                     cfg.body_timeout_s)
