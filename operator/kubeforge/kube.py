"""The one module that talks to the API server: server-side apply, get, list, delete, status patches, events.

Sync on purpose: reconcilers run in worker threads (see workqueue.py), so a slow
API call never blocks kopf's event loop and its watches.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol, TypeVar

from kubeforge import FIELD_MANAGER, metrics
from kubeforge.apierrors import status_code
from kubeforge.applymemo import ApplyMemo
from kubeforge.identity import USER_AGENT
from kubeforge.settings import SETTINGS
from kubeforge.timestamps import now_rfc3339
from kubeforge.transport import Endpoint, Transport

log = logging.getLogger(__name__)

# (apiVersion, kind) -> plural, for every kind kubeforge reads or writes.
PLURALS = {
    "Pod": "pods",
    "Service": "services",
    "ConfigMap": "configmaps",
    "Event": "events",
    "ServiceAccount": "serviceaccounts",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Job": "jobs",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Node": "nodes",
    "Workload": "workloads",
    "TrainingJob": "trainingjobs",
    "ModelEndpoint": "modelendpoints",
    "Lease": "leases",
}
# Connect fast, but let a list of many pods take its time.
REQUEST_TIMEOUT = (5, 30)
# What this process applied; a re-apply of the same object within a relist period (the periodic
# pass over every custom resource, kubeforge.resync) is skipped.
APPLIED = ApplyMemo(ttl=SETTINGS.relist_seconds)
# Objects per page of a list (the API server's own clients use 500).
LIST_PAGE = 500



class KubeClient(Protocol):
    """What the reconcilers call; this module satisfies it, and unit tests pass an in-memory fake."""

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    def list_(self, api_version: str, kind: str, namespace: str | None, selector: str = "",
              field_selector: str = "", limit: int | None = None) -> list[dict[str, Any]]: ...

    def apply(self, obj: dict[str, Any], field_manager: str = FIELD_MANAGER, if_changed: bool = False) -> dict[str, Any] | None: ...

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str, propagation: str = "Background") -> bool: ...

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]: ...

    def patch_merge(self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...

    def emit_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


T = TypeVar("T")

_client_lock = threading.Lock()
_transport: Any = None  # a Transport, or the kubernetes client library's ApiClient (kubeconfig plugins)


def transport() -> Any:
    """In-cluster credentials inside a pod, else $KUBECONFIG / ~/.kube/config (kubeforge.transport); created once."""
    global _transport
    with _client_lock:
        if _transport is None:
            # One connection per thread that sends: the reconcilers and the two controllers' apply pools
            # (kubeforge.ownership); fewer would open and drop a TLS connection per request.
            pool_size = 3 * SETTINGS.workers + 4
            endpoint = Endpoint.load()
            _transport = Transport(endpoint, pool_size, USER_AGENT) if endpoint else _plugin_client(pool_size)
        return _transport


def _plugin_client(pool_size: int) -> Any:
    """A kubeconfig user with an exec or auth-provider plugin: the kubernetes client library runs it."""
    from kubernetes import client, config  # ~45 MB of RSS: only where a plugin needs it

    config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, pool_size)
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT  # the audit log tells replicas apart by it
    return api


def resource_path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    plural = PLURALS.get(kind, kind.lower() + "s")
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


def _call(method: str, path: str, body: Any = None, query: list | None = None, content_type: str | None = None):
    """One request; counted by verb, resource and status code (kubeforge_operator_api_requests_total)."""
    resource = _resource_of(path)
    try:
        result = _send(method, path, body, query, content_type)
    except Exception as e:
        if status_code(e) is not None:
            metrics.API_REQUESTS.labels(verb=method, resource=resource, code=str(status_code(e))).inc()
        raise
    metrics.API_REQUESTS.labels(verb=method, resource=resource, code="200").inc()
    return result


def _resource_of(path: str) -> str:
    """The plural in a resource path (/api/v1/namespaces/ns/pods/x/status -> pods)."""
    parts = path.strip("/").split("/")
    parts = parts[2:] if parts[0] == "api" else parts[3:]
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    return parts[0] if parts else ""


def _send(method: str, path: str, body: Any, query: list | None, content_type: str | None):
    sender = transport()
    if isinstance(sender, Transport):
        return sender.request(method, path, query, body, content_type, REQUEST_TIMEOUT)
    headers = {"Accept": "application/json", **({"Content-Type": content_type} if content_type else {})}
    return sender.call_api(path, method, query_params=query or [], header_params=headers, body=body, response_type="object",
                           auth_settings=["BearerToken"], _return_http_data_only=True, _request_timeout=REQUEST_TIMEOUT)


# With a parameter, the client sends our own serialisation (apply_body) instead of json.dumps'
# (the API server drops the parameter before it reads the patch type).
APPLY_CONTENT_TYPE = "application/apply-patch+yaml; charset=utf-8"
# Characters a YAML stream may not carry raw (C1 controls, surrogates, BOM, U+FFFE/F) or that it
# would fold as line breaks inside a quoted scalar (NEL, U+2028/9): written as \u escapes instead.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


def apply_body(obj: dict[str, Any]) -> str:
    """The apply patch as JSON that the API server's YAML decoder reads back unchanged.

    The apply content type is YAML, and YAML has no surrogate escapes: json.dumps' ASCII output
    writes an emoji as a pair of them ("\\ud83d\\ude00") and the API server refuses the patch with
    400 "found invalid Unicode character escape code" (found by tests/integration/test_fuzz_api.py).
    So non-ASCII text goes as UTF-8, and only what YAML cannot carry raw is escaped.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def apply(obj: dict[str, Any], field_manager: str = FIELD_MANAGER, if_changed: bool = False) -> dict[str, Any] | None:
    """Server-side apply under field manager `kubeforge`; deterministic names make retries converge.

    if_changed: skip (and return None) when this process applied the same object less than a
    resync period ago (kubeforge.applymemo); for callers that do not need the object back.
    """
    if if_changed and APPLIED.unchanged(obj, field_manager):
        return None
    meta = obj["metadata"]
    path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
    query = [("fieldManager", field_manager), ("force", "true")]
    result = _call("PATCH", path, body=apply_body(obj).encode("utf-8"), query=query, content_type=APPLY_CONTENT_TYPE)
    APPLIED.record(obj, field_manager)
    return result


def create(obj: dict[str, Any]) -> dict[str, Any]:
    """POST: fails with 409 when the object exists (the Lease's first holder wins)."""
    meta = obj["metadata"]
    return _call("POST", resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace")), body=obj,
                 content_type="application/json")


def replace(obj: dict[str, Any]) -> dict[str, Any]:
    """PUT with the object's resourceVersion: fails with 409 when someone wrote it since it was read."""
    meta = obj["metadata"]
    return _call("PUT", resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]), body=obj,
                 content_type="application/json")


def get(api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    try:
        return _call("GET", resource_path(api_version, kind, namespace, name))
    except Exception as e:
        if status_code(e) == 404:
            return None
        raise


def list_(api_version: str, kind: str, namespace: str | None, selector: str = "", field_selector: str = "",
          limit: int | None = None) -> list[dict[str, Any]]:
    """Every object the selectors match, LIST_PAGE at a time (a big list costs the API server one burst);
    with `limit`, only the first page of that size (a probe)."""
    items: list[dict[str, Any]] = []
    query = [("labelSelector", selector)] if selector else []
    if field_selector:
        query.append(("fieldSelector", field_selector))
    token = ""
    while True:
        page = _call("GET", resource_path(api_version, kind, namespace),
                     query=query + [("limit", str(limit or LIST_PAGE))] + ([("continue", token)] if token else []))
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token or limit:
            return items


def unless_refused(call: Callable[[], T], fallback: T) -> T:
    """call(), or `fallback` when the API server answers 403 (not granted) or 404 (the kind is not served here,
    e.g. Kueue not installed): for reads that only add detail to a status."""
    try:
        return call()
    except Exception as e:  # ours, or the kubernetes client's (the plugin path, tests' fakes): by status
        if status_code(e) in (403, 404):
            return fallback
        raise


def delete(api_version: str, kind: str, namespace: str | None, name: str, propagation: str = "Background") -> bool:
    """True when something was deleted; a missing object is not an error (retries converge)."""
    APPLIED.forget(kind, namespace, name)
    body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
    try:
        _call("DELETE", resource_path(api_version, kind, namespace, name), body=body, content_type="application/json")
        return True
    except Exception as e:
        if status_code(e) == 404:
            return False
        raise


def patch_status(api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch the status subresource: the operator never writes spec."""
    path = resource_path(api_version, kind, namespace, name) + "/status"
    return _call("PATCH", path, body={"status": status}, content_type="application/merge-patch+json")


def patch_merge(api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    path = resource_path(api_version, kind, namespace, name)
    return _call("PATCH", path, body=patch, content_type="application/merge-patch+json")


# Events are for people (kubectl describe), and a pass need not wait for one: these threads post them,
# so a new TrainingJob's first pass (which announces its Job) frees its worker a round trip sooner.
_EVENT_POSTERS = ThreadPoolExecutor(4, thread_name_prefix="kubeforge-events")


def emit_event(obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """A core/v1 Event on `obj` (shown by kubectl describe), posted in the background; failures are logged, never raised."""
    event = _event(obj, type_, reason, message)
    _EVENT_POSTERS.submit(_post_event, event)


def _post_event(event: dict[str, Any]) -> None:
    try:
        _call("POST", resource_path("v1", "Event", event["metadata"]["namespace"]), body=event, content_type="application/json")
    except Exception as e:  # a background thread: nobody else would see it
        if status_code(e) is not None:  # the API server refused it
            log.warning("could not post event %s on %s: %s", event["reason"], event["involvedObject"]["name"], getattr(e, "reason", e))
            return
        log.exception("could not post event %s on %s", event["reason"], event["involvedObject"]["name"])


def _event(obj: dict[str, Any], type_: str, reason: str, message: str) -> dict[str, Any]:
    meta = obj["metadata"]
    stamp = now_rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "kubeforge-operator"},
        "reportingComponent": "kubeforge.io/operator",
        "reportingInstance": os.environ.get("HOSTNAME", "kubeforge-operator"),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
