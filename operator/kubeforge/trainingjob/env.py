"""The launcher env of a TrainingJob's workers: one pure function from the spec to kubeforge.contract.LaunchEnv.

Used by the pod builder (node_rank left None: each pod reads NODE_RANK from its
completion index) and by `kubeforge run --local`, which overrides master_addr,
node_rank and the paths.
"""

from __future__ import annotations

from kubeforge import storage
from kubeforge.api.trainingjob import DEEPSPEED_CONFIG_KEY, TrainingJob, TrainingJobSpec
from kubeforge.contract import LaunchEnv, omp_threads
from kubeforge.trainingjob import names

_CPU_SUFFIXES = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}


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
        checkpoint_dir=checkpoint.local_path if checkpoint else "",
        checkpoint_every_steps=spec.checkpoint.every_steps if spec.checkpoint else None,
        output_dir=output.local_path if output else "",
        output_uri=spec.output.uri if spec.output else "",
    )


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


def cpu_cores(quantity: str | None) -> float | None:
    """A Kubernetes CPU quantity ('8', '500m', '1.5') in cores; None when unset."""
    if not quantity:
        return None
    suffix = quantity[-1]
    if suffix in _CPU_SUFFIXES:
        return float(quantity[:-1]) * _CPU_SUFFIXES[suffix]
    return float(quantity)
