"""The launcher env of a TrainingJob's workers: one pure function from the spec to kubeforge.contract.LaunchEnv.

Used by the pod builder (node_rank left None: each pod reads NODE_RANK from its
completion index) and by `kubeforge run --local`, which overrides master_addr,
node_rank and the paths.
"""

from __future__ import annotations

from kubeforge import storage
from kubeforge.api.trainingjob import DEEPSPEED_CONFIG_KEY, TrainingJob, TrainingJobSpec
from kubeforge.contract import DEFAULT_RAY_DASHBOARD_PORT, LaunchEnv, RayEnv, omp_threads
from kubeforge.trainingjob import names

# Every suffix of a Kubernetes quantity (api.common.QUANTITY_PATTERN admits them all for cpu).
_CPU_SUFFIXES = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_MEMORY_SUFFIXES = _CPU_SUFFIXES
# Ray's own default share of the node's memory for the object store (ray_constants.DEFAULT_OBJECT_STORE_MEMORY_PROPORTION).
RAY_OBJECT_STORE_SHARE = 0.3


def launch_env(job: TrainingJob, attempt: int = 1) -> LaunchEnv:
    """Everything worker pods of `attempt` share; MASTER_ADDR is worker 0's DNS name in this attempt."""
    spec = job.spec
    checkpoint = checkpoint_location(spec, job.name)
    output = storage.parse_uri(spec.output.uri) if spec.output else None
    return LaunchEnv(
        job_name=job.name,
        namespace=job.namespace,
        master_addr=names.worker_dns(job.name, attempt, 0),
        nnodes=spec.nodes,
        nproc_per_node=spec.nproc_per_node,
        attempt=attempt,
        launcher=spec.launcher,
        min_nodes=spec.elastic.min_nodes if spec.elastic else None,
        max_nodes=spec.elastic.max_nodes if spec.elastic else None,
        omp_num_threads=omp_threads(cpu_cores(spec.resources.cpu), spec.nproc_per_node),
        recipe=spec.recipe.to_wire() if spec.recipe else {},
        deepspeed_config=deepspeed_config_path(spec),
        zero_stage=(spec.deepspeed.zero_stage if spec.deepspeed else 2) if spec.launcher == "deepspeed" else None,
        # An s3:// checkpoint stays a URI: each node stages its shards locally and uploads them.
        checkpoint_dir=(checkpoint.uri if checkpoint.is_object_store else checkpoint.local_path) if checkpoint else "",
        checkpoint_every_steps=spec.checkpoint.every_steps if spec.checkpoint else None,
        output_dir=output.local_path if output else "",
        output_uri=spec.output.uri if spec.output else "",
        ray=ray_env(spec) if spec.launcher == "ray" else None,
        staging_dir=storage.STAGING_ROOT if uses_object_store(spec, job.name) else "",
    )


def uses_object_store(spec: TrainingJobSpec, name: str) -> bool:
    """Whether the checkpoint or the output is an s3:// location (the pods then get the store's env and a staging dir)."""
    locations = [checkpoint_location(spec, name), storage.parse_uri(spec.output.uri) if spec.output else None]
    return any(loc is not None and loc.is_object_store for loc in locations)


def ray_env(spec: TrainingJobSpec) -> RayEnv:
    """The Ray node settings from spec.ray and the pod's resources; ports are the contract's defaults."""
    ray = spec.ray
    cpus = cpu_cores(spec.resources.cpu)
    return RayEnv(
        dashboard_port=DEFAULT_RAY_DASHBOARD_PORT if ray and ray.dashboard else None,
        num_cpus=max(1, int(cpus)) if cpus else None,
        object_store_memory=object_store_bytes(spec),
        start_args=tuple(ray.start_args) if ray else (),
        version=(ray.version or "") if ray else "",
        join_timeout_s=ray.join_timeout_seconds if ray else RayEnv.join_timeout_s,
    )


def object_store_bytes(spec: TrainingJobSpec) -> int | None:
    """spec.ray.objectStoreMemory, else Ray's 30% share of the memory limit; None leaves it to Ray."""
    if spec.ray and spec.ray.object_store_memory:
        return memory_bytes(spec.ray.object_store_memory)
    memory = memory_bytes(spec.resources.memory)
    return int(memory * RAY_OBJECT_STORE_SHARE) if memory else None


def checkpoint_location(spec: TrainingJobSpec, name: str) -> storage.Location | None:
    """pvc://claim[/dir] + path (default: the job's name), a bare claim name, or an absolute path in the pod."""
    ckpt = spec.checkpoint
    if ckpt is None:
        return None
    if not ckpt.volume:
        return storage.parse_uri(ckpt.path or "")
    volume = ckpt.volume if "://" in ckpt.volume else f"pvc://{ckpt.volume}"
    return storage.parse_uri(storage.join(volume, ckpt.path if ckpt.path is not None else name))


def deepspeed_config_path(spec: TrainingJobSpec) -> str:
    """Where the DeepSpeed JSON is mounted; empty for torchrun."""
    if spec.launcher != "deepspeed":
        return ""
    ref = spec.deepspeed.config_map_ref if spec.deepspeed else None
    return f"{names.DEEPSPEED_MOUNT}/{ref.key if ref else DEEPSPEED_CONFIG_KEY}"


def memory_bytes(quantity: str | None) -> int | None:
    """A Kubernetes memory quantity ('32Gi', '512M', '1000000') in bytes; None when unset."""
    if not quantity:
        return None
    for suffix in sorted(_MEMORY_SUFFIXES, key=len, reverse=True):
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * _MEMORY_SUFFIXES[suffix])
    return int(float(quantity))


def cpu_cores(quantity: str | None) -> float | None:
    """A Kubernetes CPU quantity ('8', '500m', '1.5') in cores; None when unset."""
    if not quantity:
        return None
    for suffix in sorted(_CPU_SUFFIXES, key=len, reverse=True):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * _CPU_SUFFIXES[suffix]
    return float(quantity)
