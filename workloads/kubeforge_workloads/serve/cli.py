"""`kubeforge-serve`: load the config, build the app, run uvicorn with a graceful SIGTERM drain."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from kubeforge import servecontract as sc

from .config import ServeConfig, load_config
from .errors import ModelLoadError

log = logging.getLogger("kubeforge.serve")


def draining_server(config, on_drain, drain_delay_s: float):
    """A uvicorn.Server whose SIGTERM first drains: on_drain() (readiness turns 503), drain_delay_s more of
    normal serving while endpoints and load balancers stop sending, then uvicorn's graceful shutdown.

    SIGINT (Ctrl-C), or a second SIGTERM, shuts down at once as plain uvicorn does.
    """
    import uvicorn

    class DrainingServer(uvicorn.Server):
        drain_until: float | None = None

        def handle_exit(self, sig, frame) -> None:
            if sig == signal.SIGTERM and self.drain_until is None and not self.should_exit:
                on_drain()
                self.drain_until = time.monotonic() + drain_delay_s
                log.info("SIGTERM: readiness fails now; serving %g s more, then draining", drain_delay_s)
                return
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:  # uvicorn's main loop asks every 0.1 s
            if self.drain_until is not None and time.monotonic() >= self.drain_until:
                return True
            return await super().on_tick(counter)

    return DrainingServer(config)


def response_headers(cfg: ServeConfig) -> list[tuple[str, str]]:
    """Headers uvicorn adds to every HTTP response, encoded once at startup (its default_headers): which model
    answered, so a client (or a canary count) can tell, at no cost on the hot path."""
    return [(sc.MODEL_HEADER, cfg.model_revision)] if cfg.model_revision else []


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(argv)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from .app import create_app, serving_app
    from .httpprotocol import bounded_httptools

    try:
        app = create_app(cfg)
    except ModelLoadError as exc:
        log.error("cannot serve %s: %s", cfg.model_dir, exc.message)
        return 2
    plane = app.state.dataplane
    server = draining_server(uvicorn.Config(
        # No proxy-headers rewrite of the client address: nothing here reads it (no access log).
        serving_app(app, cfg), host=cfg.host, port=cfg.port, log_level=cfg.log_level, access_log=False,
        proxy_headers=False,
        http=bounded_httptools(cfg.max_header_bytes, cfg.header_timeout_s), limit_concurrency=cfg.limit_concurrency,
        # After the drain delay uvicorn closes the listener, lets in-flight requests finish up to this long, then exits.
        timeout_graceful_shutdown=cfg.drain_timeout_s, headers=response_headers(cfg),
    ), on_drain=lambda: setattr(plane, "draining", True), drain_delay_s=cfg.drain_delay_s)
    failed = []

    def stop_on_load_failure() -> None:
        failed.append(True)
        server.should_exit = True

    app.state.on_fatal = stop_on_load_failure
    # uvicorn re-raises a captured SIGTERM once its graceful shutdown is done, under the handler that was
    # installed before run(); a fully drained server should then exit 0, not die of the signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run()
    code = 1 if failed else 0
    if plane.batcher is not None and plane.batcher.abandoned_thread:
        # The hung inference thread cannot be joined, and interpreter exit would wait for it forever.
        log.error("exiting with the model still stuck in a batch")
        logging.shutdown()
        os._exit(3)
    return code


if __name__ == "__main__":
    sys.exit(main())
