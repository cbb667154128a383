"""Deterministic names and labels of a TrainingJob's children, so every retry converges on the same objects."""

from __future__ import annotations

from kubeforge import contract

JOB_LABEL = "kubeforge.io/trainingjob"
ATTEMPT_LABEL = "kubeforge.io/attempt"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# Set by the Job controller on every pod of an Indexed Job.
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
CONTAINER = "trainer"
DEEPSPEED_MOUNT = "/etc/kubeforge/deepspeed"


def service(name: str) -> str:
    """The headless Service: its name is the pods' subdomain.

    Not the bare job name: a ModelEndpoint serving this job's model is commonly given the same
    name, and its Service takes that name; kubeforge never takes over a child another owns.
    """
    return f"{name}-workers"


def worker_job(name: str, attempt: int) -> str:
    """One Indexed Job per attempt: a new name per attempt never collides with the terminating one."""
    return f"{name}-a{attempt}"


def worker_host(name: str, attempt: int, index: int) -> str:
    """The Job controller sets each pod's hostname to <job>-<index>; with the subdomain that is its DNS name."""
    return f"{worker_job(name, attempt)}-{index}"


def worker_dns(name: str, attempt: int, index: int) -> str:
    """Resolvable from any pod of the namespace through the <namespace>.svc search domain."""
    return f"{worker_host(name, attempt, index)}.{service(name)}"


def deepspeed_config_map(name: str) -> str:
    return f"{name}-deepspeed"


def service_account(name: str) -> str:
    """Also the name of its Role and RoleBinding."""
    return f"{name}-trainer"


def progress_config_map(name: str) -> str:
    return contract.progress_config_map(name)


def attempt_of(obj: dict) -> int | None:
    """The attempt a child Job or pod belongs to, from its label."""
    value = (obj.get("metadata", {}).get("labels") or {}).get(ATTEMPT_LABEL)
    return int(value) if value and value.isdigit() else None


def selector(name: str, attempt: int | None = None) -> str:
    """Label selector for the job's children, or one attempt's."""
    base = f"{JOB_LABEL}={name}"
    return f"{base},{ATTEMPT_LABEL}={attempt}" if attempt is not None else base


def labels(name: str, attempt: int | None = None) -> dict[str, str]:
    out = {JOB_LABEL: name, MANAGED_BY_LABEL: "kubeforge", COMPONENT_LABEL: "trainer"}
    if attempt is not None:
        out[ATTEMPT_LABEL] = str(attempt)
    return out
