"""The launcher env contract: what the operator injects into every training pod and what kubeforge-train reads.

Defined once. The TrainingJob builders, `kubeforge run --local` and the trainer
all go through `LaunchEnv`, so the three can never disagree on a name.
No SSH, no MPI: every pod starts its own local processes from this env.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

# torch.distributed rendezvous (the names torchrun and DeepSpeed already read).
MASTER_ADDR = "MASTER_ADDR"
MASTER_PORT = "MASTER_PORT"
NNODES = "NNODES"
NODE_RANK = "NODE_RANK"
NPROC_PER_NODE = "NPROC_PER_NODE"
WORLD_SIZE = "WORLD_SIZE"
OMP_NUM_THREADS = "OMP_NUM_THREADS"
# kubeforge's own.
JOB_NAME = "KUBEFORGE_JOB_NAME"
NAMESPACE = "KUBEFORGE_NAMESPACE"
ATTEMPT = "KUBEFORGE_ATTEMPT"
LAUNCHER = "KUBEFORGE_LAUNCHER"
MIN_NODES = "KUBEFORGE_MIN_NODES"
MAX_NODES = "KUBEFORGE_MAX_NODES"
RECIPE = "KUBEFORGE_RECIPE"  # JSON of spec.recipe, empty when the user runs a command
DEEPSPEED_CONFIG = "KUBEFORGE_DEEPSPEED_CONFIG"  # path of the DeepSpeed JSON config
ZERO_STAGE = "KUBEFORGE_ZERO_STAGE"
CHECKPOINT_DIR = "KUBEFORGE_CHECKPOINT_DIR"  # a local path, or s3://bucket/prefix
CHECKPOINT_EVERY_STEPS = "KUBEFORGE_CHECKPOINT_EVERY_STEPS"
OUTPUT_DIR = "KUBEFORGE_OUTPUT_DIR"  # local path the model is written to
OUTPUT_URI = "KUBEFORGE_OUTPUT_URI"  # what status.result.modelUri reports; s3:// ones get OUTPUT_DIR uploaded
STAGING_DIR = "KUBEFORGE_STAGING_DIR"  # node-local scratch for checkpoint shards bound for an object store
# Where a worker writes its summary: the container's terminationMessagePath in a pod (the
# kubelet reads it), a file in the run directory locally. A user's command reads it too.
TERMINATION_LOG = "TERMINATION_MESSAGE_PATH"
PROGRESS_FILE = "KUBEFORGE_PROGRESS_FILE"  # local runs: progress JSON lines go here
POD_NAME = "KUBEFORGE_POD_NAME"  # downward API: which pod this is, for the trainer's logs
POD_NAMESPACE = "KUBEFORGE_POD_NAMESPACE"
POD_IP = "KUBEFORGE_POD_IP"  # downward API status.podIP (127.0.0.1 locally): the address Ray binds and advertises
# launcher ray (RayEnv): ports every node uses, and the head's settings.
RAY_PORT = "KUBEFORGE_RAY_PORT"  # the head's GCS: workers join <MASTER_ADDR>:<this>, the driver gets RAY_ADDRESS
RAY_CLIENT_PORT = "KUBEFORGE_RAY_CLIENT_PORT"  # the head's Ray Client server (ray://)
RAY_NODE_MANAGER_PORT = "KUBEFORGE_RAY_NODE_MANAGER_PORT"  # every node's raylet; the pods' readiness probe
RAY_DASHBOARD_PORT = "KUBEFORGE_RAY_DASHBOARD_PORT"  # set only when spec.ray.dashboard is on
RAY_NUM_CPUS = "KUBEFORGE_RAY_NUM_CPUS"
RAY_OBJECT_STORE_MEMORY = "KUBEFORGE_RAY_OBJECT_STORE_MEMORY"  # bytes
RAY_START_ARGS = "KUBEFORGE_RAY_START_ARGS"  # JSON list of the user's extra `ray start` arguments
RAY_VERSION = "KUBEFORGE_RAY_VERSION"  # the version every node must have; unset: no check
RAY_JOIN_TIMEOUT = "KUBEFORGE_RAY_JOIN_TIMEOUT_SECONDS"

DEFAULT_MASTER_PORT = 29500
DEFAULT_RAY_PORT = 6379
DEFAULT_RAY_CLIENT_PORT = 10001
DEFAULT_RAY_NODE_MANAGER_PORT = 6380
DEFAULT_RAY_DASHBOARD_PORT = 8265
DEFAULT_RAY_JOIN_TIMEOUT_S = 300
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
# The kubelet keeps at most 4096 bytes of a termination message.
TERMINATION_MESSAGE_LIMIT = 4096
# kubeforge-train exits with this code when a peer of its group went away (a lost pod, a
# closed gloo/NCCL connection): the group must be restarted, the job is not broken.
# From 129 up, so the default exit-code policy counts it as retryable.
PEER_LOST_EXIT_CODE = 200
# The object store stayed unreachable (or kept failing) through the trainer's retries: another
# attempt later may get through, so retryable too. Refused keys or a missing bucket exit 1.
STORE_UNAVAILABLE_EXIT_CODE = 201
# Where rank 0 reports progress: one key of a per-job ConfigMap that only this job's
# ServiceAccount may patch (a Role with resourceNames), read by the operator. Not the pod
# itself: write access to pods would let user code relabel or re-image its neighbours.
PROGRESS_KEY = "progress"
# Kubernetes sets this annotation on every pod of an Indexed Job; NODE_RANK reads it
# through the downward API, so one pod template serves all indexes.
COMPLETION_INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


@dataclass(frozen=True)
class RayEnv:
    """launcher ray: how each pod's Ray node starts; rank 0 is the head, the driver runs there."""

    port: int = DEFAULT_RAY_PORT
    client_port: int = DEFAULT_RAY_CLIENT_PORT
    node_manager_port: int = DEFAULT_RAY_NODE_MANAGER_PORT
    dashboard_port: int | None = None  # None: no dashboard
    num_cpus: int | None = None  # None: Ray counts them
    object_store_memory: int | None = None  # bytes; None: Ray's default
    start_args: tuple[str, ...] = ()
    version: str = ""
    join_timeout_s: int = DEFAULT_RAY_JOIN_TIMEOUT_S

    def to_env(self) -> dict[str, str]:
        env = {RAY_PORT: str(self.port), RAY_CLIENT_PORT: str(self.client_port),
               RAY_NODE_MANAGER_PORT: str(self.node_manager_port), RAY_JOIN_TIMEOUT: str(self.join_timeout_s)}
        optional = {RAY_DASHBOARD_PORT: self.dashboard_port, RAY_NUM_CPUS: self.num_cpus,
                    RAY_OBJECT_STORE_MEMORY: self.object_store_memory, RAY_VERSION: self.version or None,
                    RAY_START_ARGS: json.dumps(list(self.start_args)) if self.start_args else None}
        env.update({k: str(v) for k, v in optional.items() if v is not None})
        return env

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "RayEnv":
        def opt_int(name: str) -> int | None:
            return _int(name, env[name]) if env.get(name) else None

        return cls(
            port=opt_int(RAY_PORT) or DEFAULT_RAY_PORT,
            client_port=opt_int(RAY_CLIENT_PORT) or DEFAULT_RAY_CLIENT_PORT,
            node_manager_port=opt_int(RAY_NODE_MANAGER_PORT) or DEFAULT_RAY_NODE_MANAGER_PORT,
            dashboard_port=opt_int(RAY_DASHBOARD_PORT),
            num_cpus=opt_int(RAY_NUM_CPUS),
            object_store_memory=opt_int(RAY_OBJECT_STORE_MEMORY),
            start_args=tuple(json.loads(env[RAY_START_ARGS])) if env.get(RAY_START_ARGS) else (),
            version=env.get(RAY_VERSION, ""),
            join_timeout_s=opt_int(RAY_JOIN_TIMEOUT) or DEFAULT_RAY_JOIN_TIMEOUT_S,
        )


@dataclass(frozen=True)
class LaunchEnv:
    """Everything a worker needs to join its group and train; `node_rank` differs per worker."""

    job_name: str
    namespace: str
    master_addr: str
    nnodes: int
    nproc_per_node: int
    attempt: int = 1
    node_rank: int | None = None  # None: the pod reads it from COMPLETION_INDEX_FIELD
    master_port: int = DEFAULT_MASTER_PORT
    launcher: str = "deepspeed"
    min_nodes: int | None = None
    max_nodes: int | None = None
    omp_num_threads: int | None = None
    recipe: dict = field(default_factory=dict)
    deepspeed_config: str = ""
    zero_stage: int | None = None
    checkpoint_dir: str = ""
    checkpoint_every_steps: int | None = None
    output_dir: str = ""
    output_uri: str = ""
    staging_dir: str = ""
    termination_log: str = DEFAULT_TERMINATION_LOG
    progress_file: str = ""
    pod_ip: str = ""  # empty in the pod template: the pod reads it from status.podIP
    ray: RayEnv | None = None  # launcher ray only

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    def to_env(self) -> dict[str, str]:
        """The literal env vars; NODE_RANK is left out when node_rank is None."""
        env = {
            JOB_NAME: self.job_name,
            NAMESPACE: self.namespace,
            MASTER_ADDR: self.master_addr,
            MASTER_PORT: str(self.master_port),
            NNODES: str(self.nnodes),
            NPROC_PER_NODE: str(self.nproc_per_node),
            WORLD_SIZE: str(self.world_size),
            ATTEMPT: str(self.attempt),
            LAUNCHER: self.launcher,
            TERMINATION_LOG: self.termination_log,
        }
        optional = {
            NODE_RANK: self.node_rank,
            MIN_NODES: self.min_nodes,
            MAX_NODES: self.max_nodes,
            OMP_NUM_THREADS: self.omp_num_threads,
            RECIPE: json.dumps(self.recipe, sort_keys=True) if self.recipe else None,
            DEEPSPEED_CONFIG: self.deepspeed_config or None,
            ZERO_STAGE: self.zero_stage,
            CHECKPOINT_DIR: self.checkpoint_dir or None,
            CHECKPOINT_EVERY_STEPS: self.checkpoint_every_steps,
            OUTPUT_DIR: self.output_dir or None,
            OUTPUT_URI: self.output_uri or None,
            STAGING_DIR: self.staging_dir or None,
            PROGRESS_FILE: self.progress_file or None,
            POD_IP: self.pod_ip or None,
        }
        env.update({k: str(v) for k, v in optional.items() if v is not None})
        env.update(self.ray.to_env() if self.ray else {})
        return env

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "LaunchEnv":
        """Parse what `to_env` wrote (plus NODE_RANK from the downward API); errors name the variable."""

        def need(name: str) -> str:
            if not env.get(name):
                raise ValueError(f"missing required environment variable {name}")
            return env[name]

        def opt_int(name: str) -> int | None:
            return _int(name, env[name]) if env.get(name) else None

        return cls(
            job_name=env.get(JOB_NAME, "local"),
            namespace=env.get(NAMESPACE, "default"),
            master_addr=need(MASTER_ADDR),
            master_port=_int(MASTER_PORT, env.get(MASTER_PORT, str(DEFAULT_MASTER_PORT))),
            nnodes=_int(NNODES, need(NNODES)),
            nproc_per_node=_int(NPROC_PER_NODE, env.get(NPROC_PER_NODE, "1")),
            node_rank=_int(NODE_RANK, need(NODE_RANK)),
            attempt=_int(ATTEMPT, env.get(ATTEMPT, "1")),
            launcher=env.get(LAUNCHER, "deepspeed"),
            min_nodes=opt_int(MIN_NODES),
            max_nodes=opt_int(MAX_NODES),
            omp_num_threads=opt_int(OMP_NUM_THREADS),
            recipe=json.loads(env[RECIPE]) if env.get(RECIPE) else {},
            deepspeed_config=env.get(DEEPSPEED_CONFIG, ""),
            zero_stage=opt_int(ZERO_STAGE),
            checkpoint_dir=env.get(CHECKPOINT_DIR, ""),
            checkpoint_every_steps=opt_int(CHECKPOINT_EVERY_STEPS),
            output_dir=env.get(OUTPUT_DIR, ""),
            output_uri=env.get(OUTPUT_URI, ""),
            staging_dir=env.get(STAGING_DIR, ""),
            termination_log=env.get(TERMINATION_LOG, DEFAULT_TERMINATION_LOG),
            progress_file=env.get(PROGRESS_FILE, ""),
            pod_ip=env.get(POD_IP, ""),
            ray=RayEnv.from_env(env) if env.get(LAUNCHER) == "ray" else None,
        )


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def threads_per_process(cores: float, processes: int) -> int:
    """OMP threads for each of `processes` sharing `cores`: an equal share, at least 1.

    Left unset, each process spawns one thread per host core and DDP on the CPU runs
    about 3x slower from oversubscription. The one rule for the operator (a pod's CPU
    limit), the node agent (the cores it finds) and `kubeforge run --local`.
    """
    return max(1, int(cores // max(1, processes)))


def omp_threads(cpu_limit: float | None, nproc_per_node: int) -> int | None:
    """What the operator injects: the pod's CPU limit shared by its processes; None without a limit."""
    return threads_per_process(cpu_limit, nproc_per_node) if cpu_limit else None


def progress_config_map(job_name: str) -> str:
    """The ConfigMap whose PROGRESS_KEY rank 0 of `job_name` patches."""
    return f"{job_name}-progress"


def progress_record(step: int, total_steps: int, loss: float | None, epoch: float | None = None) -> dict:
    """The JSON the trainer writes to PROGRESS_KEY of progress_config_map (or PROGRESS_FILE locally)."""
    record = {"step": int(step), "totalSteps": int(total_steps)}
    if loss is not None:
        record["loss"] = round(float(loss), 6)
    if epoch is not None:
        record["epoch"] = round(float(epoch), 4)
    return record


def as_dict(launch: LaunchEnv) -> dict:
    return asdict(launch)
