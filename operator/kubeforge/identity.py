"""Who this operator process is to the API server: one identity (the Lease holder) and one User-Agent on every request.

Both clients carry the same User-Agent, `kubeforge-operator/<version> (<identity>, pid <pid>)`: the
kubernetes client of kubeforge.kube and kopf's aiohttp session (its watches). The API
server's audit log then says which replica sent each request, which is how the scale
bench counts the operator's requests and the HA test checks that a standby never writes.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import aiohttp
import kopf

from kubeforge import __version__


# The pod name: the Lease holder's identity (kubeforge.leader). A container restarted in the same
# pod is the same holder and leads again at once; local processes set HOSTNAME apart.
IDENTITY = os.environ.get("HOSTNAME") or socket.gethostname()
# The pid tells processes of one identity apart in the audit log (a restart, two local runs).
USER_AGENT = f"kubeforge-operator/{__version__} ({IDENTITY}, pid {os.getpid()})"


def setup(registry: kopf.OperatorRegistry) -> None:
    """Log kopf in as kopf would (in-cluster config, else $KUBECONFIG), with our User-Agent on its session.

    kopf sends `kopf/<version>` unless the session already has a User-Agent, and a
    ConnectionInfo cannot carry one: so we hand it a ready session (kopf.AiohttpSession).
    """

    @kopf.on.login(registry=registry)
    async def login(logger: Any, settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.AiohttpSession | None:
        info = kopf.login_via_client(logger=logger, settings=settings, **kwargs)
        if info is None:
            return None
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
            headers={**info.as_http_headers(), "User-Agent": USER_AGENT},
            proxy=info.proxy_url,
            trust_env=info.trust_env,
        )
        return kopf.AiohttpSession(server=info.server, default_namespace=info.default_namespace,
                                   expiration=info.expiration, aiohttp_session=session)
