"""Who this operator process is to the API server: one identity (the Lease holder) and one User-Agent on every request.

Both clients carry the same User-Agent, `kubeforge-operator/<version> (<identity>, pid <pid>)`, and the
same credentials (kubeforge.transport): kubeforge.kube's requests and kopf's aiohttp session (its watches). The API
server's audit log then says which replica sent each request, which is how the scale
bench counts the operator's requests and the HA test checks that a standby never writes.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import aiohttp
import kopf

from kubeforge import __version__
from kubeforge.transport import Endpoint


# The pod name: the Lease holder's identity (kubeforge.leader). A container restarted in the same
# pod is the same holder and leads again at once; local processes set HOSTNAME apart.
IDENTITY = os.environ.get("HOSTNAME") or socket.gethostname()
# The pid tells processes of one identity apart in the audit log (a restart, two local runs).
USER_AGENT = f"kubeforge-operator/{__version__} ({IDENTITY}, pid {os.getpid()})"


def setup(registry: kopf.OperatorRegistry) -> None:
    """Log kopf in as kubeforge.kube connects (in-cluster config, else $KUBECONFIG), with our User-Agent on its session.

    kopf sends `kopf/<version>` unless the session already has a User-Agent, and a
    ConnectionInfo cannot carry one: so we hand it a ready session (kopf.AiohttpSession).
    """

    @kopf.on.login(registry=registry)
    async def login(logger: Any, settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.AiohttpSession | None:
        info = connection_info(logger=logger, settings=settings, **kwargs)
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


def connection_info(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kubeforge.transport's credentials as kopf takes them (in a pod, the KUBERNETES_SERVICE_HOST address, not the
    DNS name kopf's own fallback assumes); a kubeconfig plugin is left to the kubernetes client library."""
    endpoint = Endpoint.load()
    if endpoint is None:
        return kopf.login_via_client(**kwargs)
    token = Path(endpoint.token_file).read_text().strip() if endpoint.token_file else endpoint.token
    return kopf.ConnectionInfo(server=endpoint.server, ca_path=endpoint.ca_file, insecure=endpoint.insecure or None,
                               certificate_path=endpoint.cert_file, private_key_path=endpoint.key_file,
                               scheme="Bearer" if token else None, token=token)
