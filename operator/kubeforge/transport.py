"""How kubeforge.kube reaches the API server: HTTP through urllib3 with the cluster's credentials, not the kubernetes client.

The kubernetes client library imports every model and API class it has (~45 MB of the operator's
RSS, a third of it at 5,000 custom resources) while kubeforge.kube sends plain JSON and reads
plain JSON. This module loads the credentials as client-go does (in a pod: the service account's
token, re-read as the kubelet rotates it, and the KUBERNETES_SERVICE_HOST/PORT address; outside:
$KUBECONFIG or ~/.kube/config, relative paths against the file's folder) and sends requests. A
kubeconfig whose user needs an exec or auth-provider plugin is left to the kubernetes client
library (`Endpoint.load` returns None and kubeforge.kube falls back to it).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_S = 60.0  # client-go re-reads a projected token file once a minute


class ApiException(Exception):
    """A non-2xx answer: the attributes kubeforge.apierrors reads, named as the kubernetes client names them."""

    def __init__(self, status: int, reason: str, body: str = "", headers: Any = None) -> None:
        super().__init__(f"({status}) {reason}: {body[:300]}")
        self.status, self.reason, self.body, self.headers = status, reason, body, headers or {}


@dataclass(frozen=True)
class Endpoint:
    """Where the API server is and how to prove who we are; file paths only (ssl reads files)."""

    server: str
    ca_file: str | None = None
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    token_file: str | None = None

    @staticmethod
    def load(env: dict[str, str] | None = None) -> "Endpoint | None":
        """In a pod, its service account; else the current context of the kubeconfig; None: a plugin is needed."""
        env = dict(os.environ) if env is None else env
        if env.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT / "token").exists():
            return in_cluster(env)
        paths = [p for p in (env.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep) if p]
        return from_kubeconfig([Path(p).expanduser() for p in paths])


def in_cluster(env: dict[str, str]) -> Endpoint:
    host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host  # IPv6
    return Endpoint(server=f"https://{host}:{port}", ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
                    token_file=str(SERVICE_ACCOUNT / "token"))


def from_kubeconfig(paths: list[Path]) -> Endpoint | None:
    """The current context, merged over the files as kubectl merges them (the first one naming a thing wins)."""
    current, named = None, {"contexts": {}, "clusters": {}, "users": {}}
    folder: dict[tuple[str, str], Path] = {}
    for path in paths:
        if not path.exists():
            continue
        config = yaml.safe_load(path.read_text()) or {}
        current = current or config.get("current-context")
        for section, field in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
            for item in config.get(section) or []:
                if item["name"] not in named[section]:
                    named[section][item["name"]] = item.get(field) or {}
                    folder[(section, item["name"])] = path.parent
    if not current or current not in named["contexts"]:
        raise ValueError(f"no current context in {', '.join(map(str, paths))}")
    context = named["contexts"][current]
    cluster, user = named["clusters"][context["cluster"]], named["users"].get(context.get("user"), {})
    if user.get("exec") or user.get("auth-provider"):
        return None
    here_c, here_u = folder[("clusters", context["cluster"])], folder.get(("users", context.get("user")), Path("."))
    return Endpoint(
        server=cluster["server"].rstrip("/"),
        ca_file=_file(cluster, "certificate-authority", here_c),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=_file(user, "client-certificate", here_u),
        key_file=_file(user, "client-key", here_u),
        token=user.get("token"),
        token_file=str(here_u / user["tokenFile"]) if user.get("tokenFile") else None,
    )


def _file(section: dict[str, Any], key: str, folder: Path) -> str | None:
    """A path (relative to the kubeconfig's folder), or the -data field written to a private file."""
    if section.get(f"{key}-data"):
        return _data_file(section[f"{key}-data"])
    return str(folder / section[key]) if section.get(key) else None


@functools.cache
def _data_file(data: str) -> str:
    """ssl reads certificates and keys from files only: one private (0600) file per distinct value, per process."""
    handle, name = tempfile.mkstemp(prefix="kubeforge-", suffix=".pem")
    with os.fdopen(handle, "wb") as f:
        f.write(base64.b64decode(data))
    return name


class Transport:
    """One pool of connections to the API server, shared by every thread that sends."""

    def __init__(self, endpoint: Endpoint, pool_size: int, user_agent: str) -> None:
        self.endpoint, self.user_agent = endpoint, user_agent
        context = ssl.create_default_context(cafile=endpoint.ca_file)
        if endpoint.insecure:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if endpoint.cert_file:
            context.load_cert_chain(endpoint.cert_file, endpoint.key_file)
        # Connect errors are retried (nothing was sent); a read error is not: a PATCH may have landed. A 429's
        # Retry-After is the work queue's to honour (kubeforge.apierrors), not a sleep in a worker thread.
        retries = urllib3.Retry(total=3, connect=3, read=0, status=0, redirect=0, other=0, raise_on_status=False,
                                respect_retry_after_header=False)
        self.pool = urllib3.PoolManager(num_pools=2, maxsize=pool_size, block=False, ssl_context=context, retries=retries)
        self._token, self._token_read, self._lock = endpoint.token, 0.0, threading.Lock()

    def request(self, method: str, path: str, query: list[tuple[str, str]] | None = None, body: Any = None,
                content_type: str | None = None, timeout: tuple[float, float] = (5, 30)) -> Any:
        """The answer's JSON (None when empty); ApiException on a non-2xx status."""
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body, separators=(",", ":"))
        url = self.endpoint.server + path + (f"?{urlencode(query)}" if query else "")
        answer = self.pool.request(method, url, body=body, headers=headers, timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]))
        data = answer.data
        if not 200 <= answer.status < 300:
            raise ApiException(answer.status, answer.reason or "", data.decode("utf-8", "replace"), answer.headers)
        return json.loads(data) if data else None

    def token(self) -> str | None:
        """The bearer token; a token file is read again each minute (the kubelet rotates projected tokens)."""
        path = self.endpoint.token_file
        if path is None:
            return self._token
        with self._lock:
            if time.monotonic() - self._token_read > TOKEN_REREAD_S or self._token is None:
                self._token, self._token_read = Path(path).read_text().strip(), time.monotonic()
            return self._token
