"""The gRPC front end: inference.GRPCInferenceService (Open Inference Protocol v2) on its own port.

It serves the same data plane as the HTTP routes: one model, one batcher, so HTTP and gRPC
requests share batches, and one in-flight count (the autoscaling signal and the batcher's
"more requests are coming" hint). Errors are the serve.errors hierarchy; each becomes the gRPC
status code that matches the HTTP status it carries (grpc_code), in this one place.
"""

from __future__ import annotations

import logging
import time

import grpc

from .dataplane import DataPlane
from .errors import ServeError
from .metrics import ServerMetrics
from .traffic import TrafficStats
from .protocol import v2, v2_grpc
from .protocol.grpc import inference_pb2 as pb, inference_pb2_grpc as pb_grpc

log = logging.getLogger("kubeforge.serve")

# HTTP status -> gRPC code, after the table in gRPC's http-grpc-status-mapping doc (and KServe's choices
# for 400/422, which that doc leaves to INTERNAL: a bad request is the client's, INVALID_ARGUMENT).
_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
INFER_ROUTE = "/inference.GRPCInferenceService/ModelInfer"  # the metrics' route label for gRPC inference


def grpc_code(exc: ServeError) -> grpc.StatusCode:
    """The gRPC status code of a serving error, from the HTTP status its class carries."""
    return _BY_HTTP_STATUS.get(exc.status, grpc.StatusCode.INTERNAL)


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, plane: DataPlane, metrics: ServerMetrics, traffic: TrafficStats | None = None):
        self.plane = plane
        self.metrics = metrics
        self.traffic = traffic  # a canary's own traffic report counts gRPC inference too (traffic.py)

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.plane.not_ready_reason() is None)

    async def ServerMetadata(self, request, context):
        return v2_grpc.server_metadata()

    async def ModelReady(self, request, context):
        try:
            model = self.plane.model(request.name)
        except ServeError as exc:
            await _abort(context, exc)
        return pb.ModelReadyResponse(ready=model.ready and self.plane.not_ready_reason() is None)

    async def ModelMetadata(self, request, context):
        try:
            model = self.plane.model(request.name)
        except ServeError as exc:
            await _abort(context, exc)
        return v2_grpc.model_metadata(v2.model_metadata(request.name, len(model.labels), model.metadata()))

    async def ModelInfer(self, request, context):
        start, status = time.perf_counter(), 200
        self.plane.in_flight.value += 1
        try:
            name = request.model_name
            num_labels = len(self.plane.model(name).labels)  # NOT_FOUND before decoding inputs meant elsewhere
            preds = await self.plane.classify(name, v2_grpc.request_texts(request))
            return v2_grpc.build_response(name, request, preds, num_labels)
        except ServeError as exc:
            status = exc.status
            await _abort(context, exc)
        except Exception as exc:
            status = 500
            log.exception("unhandled error")
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
        finally:
            self.plane.in_flight.value -= 1
            seconds = time.perf_counter() - start
            self.metrics.observe_request(INFER_ROUTE, status, seconds)
            if self.traffic is not None:
                self.traffic.record("POST", status, seconds)  # an inference call, as an HTTP POST counts


async def _abort(context, exc: ServeError):
    """End the call with the error's code and message; its HTTP headers (Retry-After) go as trailing metadata."""
    context.set_trailing_metadata(tuple((k.lower(), v) for k, v in exc.headers.items()))
    await context.abort(grpc_code(exc), exc.message)


async def start_grpc_server(service: InferenceService, host: str, port: int, max_message_bytes: int) -> grpc.aio.Server:
    """Bind and start on the running event loop (uvicorn's); raises when the port cannot be bound."""
    options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 0)]
    server = grpc.aio.server(options=options)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(service, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # newer grpcio raises where older ones returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"gRPC: cannot listen on {address}")
    await server.start()
    log.info("gRPC (inference.GRPCInferenceService) listening on %s", address)
    return server
