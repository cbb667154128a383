"""The worker pod template of a TrainingJob attempt: image, launcher env, GPUs, placement, volumes, security.

Starts from the user's choices and only adds to them: the user's env, volumes,
mounts, labels and annotations win over ours for the same name (STYLE.md #6).
"""

from __future__ import annotations

import json
from typing import Any

from kubeforge import contract, podspec, storage
from kubeforge.api.trainingjob import TrainingJob, TrainingJobSpec
from kubeforge.settings import Settings
from kubeforge.trainingjob import names
from kubeforge.trainingjob.env import checkpoint_location, launch_env, object_store_bytes, uses_object_store

TRAIN_BINARY = "kubeforge-train"
# Our trainer image (docker/trainer.Dockerfile) writes only to its volumes, temp files and caches
# under HOME: with these as emptyDirs its root filesystem can be read-only.
TRAINER_HOME = "/home/kubeforge"
SCRATCH_DIRS = (("tmp", "/tmp"), ("home", TRAINER_HOME))


def read_only_root(job: TrainingJob, settings: Settings) -> bool:
    """True for the operator's trainer image; another image may write anywhere, so its root stays writable.

    Not for launcher ray yet: Ray's session files and its dashboard were never run here under a
    read-only root (only as local processes), so the launcher keeps a writable one until they are.
    """
    own_image = not job.spec.image or job.spec.image == settings.trainer_image
    return own_image and job.spec.launcher != "ray"


def worker_pod_template(job: TrainingJob, attempt: int, settings: Settings) -> dict[str, Any]:
    spec = job.spec
    user = spec.pod_template
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",  # the operator restarts the whole group, never one process
        "subdomain": names.service(job.name),
        "enableServiceLinks": False,  # thousands of service env vars help no trainer
        "securityContext": podspec.pod_security_context(),
        **podspec.placement(spec.node_pool, spec.gpus, settings.gpu_resource),
        "containers": [worker_container(job, attempt, settings)],
        "volumes": _merge_by_name(_volumes(job, read_only_root(job, settings))[0], spec.volumes),
        **_service_account(job.name, settings),
    }
    scheduling = spec.scheduling
    if scheduling and scheduling.priority_class_name:
        pod_spec["priorityClassName"] = scheduling.priority_class_name
    if scheduling and scheduling.scheduler_name:
        pod_spec["schedulerName"] = scheduling.scheduler_name
    labels = {**(user.labels if user else {}), **names.labels(job.name, attempt)}
    metadata: dict[str, Any] = {"labels": labels}
    if user and user.annotations:
        metadata["annotations"] = dict(user.annotations)
    return {"metadata": metadata, "spec": pod_spec}


def worker_container(job: TrainingJob, attempt: int, settings: Settings) -> dict[str, Any]:
    spec = job.spec
    launch = launch_env(job, attempt)
    container: dict[str, Any] = {
        "name": names.CONTAINER,
        "image": spec.image or settings.trainer_image,
        "command": [TRAIN_BINARY],
        "env": podspec.merge_env(worker_env(job, attempt), spec.env),
        "ports": ray_ports(launch.ray) if launch.ray else [{"name": "rendezvous", "containerPort": contract.DEFAULT_MASTER_PORT}],
        "volumeMounts": _merge_by_name(_volumes(job, read_only_root(job, settings))[1], spec.volume_mounts, key="mountPath"),
        "securityContext": {**podspec.container_security_context(), "readOnlyRootFilesystem": read_only_root(job, settings)},
        # The path the env names (TERMINATION_MESSAGE_PATH), so the trainer and the kubelet agree.
        # The kubelet bind-mounts this file, so it stays writable under a read-only root.
        "terminationMessagePath": contract.DEFAULT_TERMINATION_LOG,
        # A crash before the summary is written still explains itself in the status.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    args = trainer_args(spec)
    if args:
        container["args"] = args
    resources = podspec.container_resources(spec.resources, settings.gpu_resource)
    if resources:
        container["resources"] = resources
    if launch.ray:
        container["readinessProbe"] = ray_readiness_probe()
    return container


def trainer_args(spec: TrainingJobSpec) -> list[str]:
    """kubeforge-train's arguments: the user's command and args after `--`, or the args alone for the recipe."""
    return ["--", *spec.command, *(spec.args or [])] if spec.command else list(spec.args or [])


def ray_ports(ray: contract.RayEnv) -> list[dict[str, Any]]:
    """The head's GCS, Ray Client and dashboard ports, and every node's raylet port (one template serves all pods)."""
    ports = [("ray-gcs", ray.port), ("ray-client", ray.client_port), ("ray-node", ray.node_manager_port),
             ("ray-dashboard", ray.dashboard_port)]
    return [{"name": name, "containerPort": port} for name, port in ports if port]


def ray_readiness_probe() -> dict[str, Any]:
    """Ready once this pod's raylet listens; the head starts its raylet only after its GCS is up, so a Ready
    head means workers can join. A TCP check: no exec of Python in the container every few seconds."""
    return {"tcpSocket": {"port": "ray-node"}, "periodSeconds": 5, "failureThreshold": 3}


def worker_env(job: TrainingJob, attempt: int) -> list[dict[str, Any]]:
    """The contract's literal env, the object store's (keys through secretKeyRef), and what only the pod knows: rank, name, namespace."""
    literal = [{"name": k, "value": v} for k, v in launch_env(job, attempt).to_env().items()]
    if uses_object_store(job.spec, job.name):
        literal += podspec.object_storage_env(job.spec.storage)
    from_pod = [
        (contract.NODE_RANK, contract.COMPLETION_INDEX_FIELD),
        (contract.POD_NAME, "metadata.name"),
        (contract.POD_NAMESPACE, "metadata.namespace"),
        *([(contract.POD_IP, "status.podIP")] if job.spec.launcher == "ray" else []),
    ]
    return literal + [{"name": n, "valueFrom": {"fieldRef": {"fieldPath": f}}} for n, f in from_pod]


def deepspeed_config(job: TrainingJob) -> dict[str, Any] | None:
    """The DeepSpeed JSON the ConfigMap carries: inline config, or just the ZeRO stage (the trainer fills the rest)."""
    spec = job.spec
    if spec.launcher != "deepspeed" or (spec.deepspeed and spec.deepspeed.config_map_ref):
        return None
    stage = spec.deepspeed.zero_stage if spec.deepspeed else 2
    config = dict(spec.deepspeed.config or {}) if spec.deepspeed else {}
    config.setdefault("zero_optimization", {"stage": stage})
    return config


def deepspeed_config_json(job: TrainingJob) -> str | None:
    config = deepspeed_config(job)
    return json.dumps(config, indent=2, sort_keys=True) if config is not None else None


def _volumes(job: TrainingJob, read_only: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """/dev/shm, the DeepSpeed config, one PVC per claim the checkpoint and output use; with a read-only
    root, emptyDirs for /tmp, HOME and a checkpoint or output path that is not on a PVC; the staging dir for s3://."""
    spec = job.spec
    # Ray's object store lives in /dev/shm: give it room for all of it (a memory-backed emptyDir
    # counts against the container's memory limit, which the object store default is a share of).
    store = object_store_bytes(spec) if spec.launcher == "ray" else None
    shm, shm_mount = podspec.shm_volume(f"{-(-store // 2**20)}Mi" if store else None)
    volumes, mounts = [shm], [shm_mount]
    if spec.launcher == "deepspeed":
        ref = spec.deepspeed.config_map_ref if spec.deepspeed else None
        config_map = ref.name if ref else names.deepspeed_config_map(job.name)
        volumes.append({"name": "deepspeed-config", "configMap": {"name": config_map}})
        mounts.append({"name": "deepspeed-config", "mountPath": names.DEEPSPEED_MOUNT, "readOnly": True})
    locations = [checkpoint_location(spec, job.name), storage.parse_uri(spec.output.uri) if spec.output else None]
    claims_seen: set[str] = set()
    for location in locations:
        pvc = podspec.pvc_volume(location, read_only=False) if location else None
        if pvc and location.claim not in claims_seen:
            claims_seen.add(location.claim)
            volumes.append(pvc[0])
            mounts.append(pvc[1])
    if uses_object_store(spec, job.name):
        staged = podspec.object_storage_volumes(spec.storage)
        volumes += staged[0]
        mounts += staged[1]
    if read_only:
        scratch = list(SCRATCH_DIRS) + [(f"scratch-{i}", loc.local_path) for i, loc in enumerate(locations)
                                        if loc and not loc.claim and loc.local_path]
        for name, path in scratch:
            if not any(path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/") for m in mounts):
                volumes.append({"name": name, "emptyDir": {}})
                mounts.append({"name": name, "mountPath": path})
    return volumes, mounts


def claims(job: TrainingJob) -> list[str]:
    """Every PersistentVolumeClaim the workers mount: checkpoint, output and the user's own volumes."""
    spec = job.spec
    locations = [checkpoint_location(spec, job.name), storage.parse_uri(spec.output.uri) if spec.output else None]
    found = [loc.claim for loc in locations if loc and loc.claim]
    found += [(v.get("persistentVolumeClaim") or {}).get("claimName") for v in spec.volumes]
    return sorted({c for c in found if c})


def _service_account(name: str, settings: Settings) -> dict[str, Any]:
    if not settings.trainer_progress:
        return {"automountServiceAccountToken": False}
    return {"serviceAccountName": names.service_account(name), "automountServiceAccountToken": True}


def _merge_by_name(ours: list[dict], users: list[dict], key: str = "name") -> list[dict]:
    """The user's entry replaces ours with the same name (or mount path)."""
    taken = {u.get(key) for u in users if isinstance(u.get(key), str)}
    return [o for o in ours if o.get(key) not in taken] + [dict(u) for u in users]
