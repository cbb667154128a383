"""Pure pieces every kubeforge pod shares: restricted security, GPU resources, node pools, PVC mounts, object-store access, labels."""

from __future__ import annotations

import copy
from typing import Any

from kubeforge import storage
from kubeforge.api.common import NodePool, ObjectStorage, Resources

# Non-root UID/GID of our images (docker/); the restricted Pod Security profile needs runAsNonRoot.
RUN_AS_USER = 10001
STAGING_VOLUME = "staging"
CA_BUNDLE_VOLUME = "s3-ca-bundle"
CA_BUNDLE_DIR = "/etc/kubeforge/s3-ca"


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """What the restricted Pod Security profile demands of every container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_resources(resources: Resources, gpu_resource: str) -> dict[str, Any]:
    """Requests equal limits (Guaranteed QoS when cpu and memory are set); GPUs only as limits+requests."""
    amounts: dict[str, str] = {}
    if resources.cpu:
        amounts["cpu"] = resources.cpu
    if resources.memory:
        amounts["memory"] = resources.memory
    if resources.gpus:
        amounts[gpu_resource] = str(resources.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def gpu_toleration(gpu_resource: str) -> dict[str, Any]:
    """GPU pools are commonly tainted with the GPU resource name; what ExtendedResourceToleration adds."""
    return {"key": gpu_resource, "operator": "Exists", "effect": "NoSchedule"}


def placement(node_pool: NodePool | None, gpus: int, gpu_resource: str) -> dict[str, Any]:
    """nodeSelector / tolerations / affinity for the pod spec; the user's entries come first and stay."""
    pool = node_pool or NodePool()
    spec: dict[str, Any] = {}
    if pool.node_selector:
        spec["nodeSelector"] = dict(pool.node_selector)
    tolerations = copy.deepcopy(pool.tolerations)
    if gpus and not any(t.get("key") == gpu_resource for t in tolerations):
        tolerations.append(gpu_toleration(gpu_resource))
    if tolerations:
        spec["tolerations"] = tolerations
    if pool.affinity:
        spec["affinity"] = copy.deepcopy(pool.affinity)
    return spec


def pvc_volume(location: storage.Location, read_only: bool) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(volume, volumeMount) for a pvc:// location, None for a path in the image."""
    if not location.claim:
        return None
    volume = {"name": location.volume_name, "persistentVolumeClaim": {"claimName": location.claim, "readOnly": read_only}}
    mount = {"name": location.volume_name, "mountPath": f"{storage.PVC_MOUNT_ROOT}/{location.claim}", "readOnly": read_only}
    return volume, mount


def object_storage_env(store: ObjectStorage | None) -> list[dict[str, Any]]:
    """spec.storage as the env kubeforge_workloads.objectstore reads; the keys come through secretKeyRef.

    The kubelet resolves secretKeyRef when it starts the container: the operator never reads
    the Secret and needs no RBAC on Secrets. No credentials: the SDK's own chain (web identity
    token of the pod's ServiceAccount, the node's role) applies.
    """
    if store is None:
        return []
    literal = {
        storage.ENDPOINT_ENV: store.endpoint,
        storage.REGION_ENV: store.region,
        storage.PATH_STYLE_ENV: None if store.path_style is None else str(store.path_style).lower(),
        storage.INSECURE_SKIP_VERIFY_ENV: "true" if store.tls and store.tls.insecure_skip_verify else None,
        storage.CA_FILE_ENV: f"{CA_BUNDLE_DIR}/ca.crt" if store.tls and store.tls.ca_bundle else None,
    }
    env = [{"name": k, "value": v} for k, v in literal.items() if v is not None]
    creds = store.credentials
    if creds:
        keys = ((storage.ACCESS_KEY_ID_ENV, creds.access_key_id_key), (storage.SECRET_ACCESS_KEY_ENV, creds.secret_access_key_key),
                (storage.SESSION_TOKEN_ENV, creds.session_token_key))
        env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": creds.secret_name, "key": key}}} for name, key in keys if key]
    return env


def object_storage_volumes(store: ObjectStorage | None, staging_read_only: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The staging emptyDir (storage.STAGING_ROOT) and, when spec.storage names one, the CA bundle."""
    volumes = [{"name": STAGING_VOLUME, "emptyDir": {}}]
    mounts = [{"name": STAGING_VOLUME, "mountPath": storage.STAGING_ROOT, "readOnly": staging_read_only}]
    bundle = store.tls.ca_bundle if store and store.tls else None
    if bundle:
        items = [{"key": bundle.key, "path": "ca.crt"}]
        volumes.append({"name": CA_BUNDLE_VOLUME, "configMap": {"name": bundle.name, "items": items}})
        mounts.append({"name": CA_BUNDLE_VOLUME, "mountPath": CA_BUNDLE_DIR, "readOnly": True})
    return volumes, mounts


def shm_volume(size_limit: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """/dev/shm as memory: the container default of 64Mi starves NCCL and DataLoader workers."""
    empty_dir: dict[str, Any] = {"medium": "Memory"}
    if size_limit:
        empty_dir["sizeLimit"] = size_limit
    return {"name": "dshm", "emptyDir": empty_dir}, {"name": "dshm", "mountPath": "/dev/shm"}


def merge_env(defaults: list[dict[str, Any]], user: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The user's env wins over ours for the same name; order: ours, then the user's additions."""
    # An entry without a string name is the API server's to refuse (in the child), not ours to crash on.
    user_names = {e.get("name") for e in user if isinstance(e.get("name"), str)}
    return [e for e in defaults if e["name"] not in user_names] + list(user)


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
