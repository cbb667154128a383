"""`kubeforge-serve`: load the config, build the app, run uvicorn with a graceful SIGTERM drain."""

from __future__ import annotations

import logging
import signal
import sys

from .config import load_config
from .errors import ModelLoadError

log = logging.getLogger("kubeforge.serve")


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(argv)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from .app import create_app

    try:
        app = create_app(cfg)
    except ModelLoadError as exc:
        log.error("cannot serve %s: %s", cfg.model_dir, exc.message)
        return 2
    server = uvicorn.Server(uvicorn.Config(
        app, host=cfg.host, port=cfg.port, log_level=cfg.log_level, access_log=False,
        # On SIGTERM uvicorn closes the listener, lets in-flight requests finish up to this long, then exits.
        timeout_graceful_shutdown=cfg.drain_timeout_s,
    ))
    failed = []

    def stop_on_load_failure() -> None:
        failed.append(True)
        server.should_exit = True

    app.state.on_fatal = stop_on_load_failure
    # uvicorn re-raises a captured SIGTERM once its graceful shutdown is done, under the handler that was
    # installed before run(); a fully drained server should then exit 0, not die of the signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
