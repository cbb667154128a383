"""The operator's log: one handler and one format, and INFO for transitions, not heartbeats.

kopf.configure() installs its own root handler; a logging.basicConfig() beside it printed every
line twice, in two formats. kopf also logs every handler call that returns at INFO
("Handler 'enqueue-TrainingJob' succeeded."): for our watch handlers, which only enqueue a key,
that is one line per watch event, so those go to DEBUG (`--verbose` shows them).
"""

from __future__ import annotations

import logging

import kopf

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The kopf.on.event handlers of kubeforge.watches and modelendpoint.refindex: each call is a heartbeat.
HEARTBEAT_HANDLERS = ("Handler 'enqueue-", "Handler 'wake-")


class HeartbeatsToDebug(logging.Filter):
    """Demotes kopf's "Handler '<watch handler>' succeeded." records to DEBUG; drops them unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        if not (message.startswith(HEARTBEAT_HANDLERS) and message.endswith(" succeeded.")):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def configure(verbose: bool = False) -> None:
    """One root handler (kopf's, with the object's namespace/name as a prefix), heartbeats at DEBUG."""
    kopf.configure(verbose=verbose, log_format=FORMAT, log_prefix=True)
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, HeartbeatsToDebug) for f in objects.filters):
        objects.addFilter(HeartbeatsToDebug())
