"""How a pod reports to the operator through the API server: a merge-patch of one key of one ConfigMap.

The pod's ServiceAccount may patch that one ConfigMap and nothing else (a Role with resourceNames,
built by the operator), so user code or a compromised server cannot touch pods or other objects.
Used by the trainer's rank 0 (progress) and by canary server pods (their traffic report).
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
import urllib.request
from pathlib import Path

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def configmap_key_request(host: str, port: str, namespace: str, configmap: str, key: str, record: dict,
                          token: str) -> urllib.request.Request:
    """The merge-patch that sets `key` of the ConfigMap to `record` as JSON."""
    host = f"[{host}]" if ":" in host else host  # an IPv6 service host needs brackets in a URL
    body = {"data": {key: json.dumps(record, sort_keys=True)}}
    name = urllib.parse.quote(configmap, safe="")
    return urllib.request.Request(
        f"https://{host}:{port}/api/v1/namespaces/{namespace}/configmaps/{name}",
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json", "Authorization": f"Bearer {token}"},
    )


def send(request_for_token, account_dir: Path = SERVICE_ACCOUNT_DIR, timeout: float = 5) -> None:
    """Send the request built for the mounted token (re-read each time: the kubelet rotates it), trusting the
    cluster's CA; raises on failure, the caller decides whether that matters."""
    token = (account_dir / "token").read_text().strip()
    context = ssl.create_default_context(cafile=str(account_dir / "ca.crt"))
    with urllib.request.urlopen(request_for_token(token), context=context, timeout=timeout) as response:
        response.read()
