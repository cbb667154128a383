"""Operator settings, read once from the environment (the Helm chart sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    watch_namespaces: tuple[str, ...] = ()  # empty: cluster-wide
    gpu_resource: str = "nvidia.com/gpu"
    trainer_image: str = "ghcr.io/kubeforge/trainer:0.1.0"
    server_image: str = "ghcr.io/kubeforge/server:0.1.0"
    health_addr: str = "127.0.0.1:8081"
    metrics_addr: str = "127.0.0.1:8082"
    # Passes wait on the API server, not on the CPU (a first pass is ~17 requests): threads are cheap,
    # and 4 left a burst of new TrainingJobs queued seconds behind each other (README, operator at scale).
    workers: int = 16
    resync_seconds: float = 60.0
    # Every TrainingJob and ModelEndpoint is listed and re-queued this often (jittered): catches missed
    # events and undoes drift in children (applies skipped as unchanged are sent again after this long).
    # Hours, not minutes: each pass costs a few reads per resource, and events do the real work.
    relist_seconds: float = 3 * 3600.0
    # A TrainingJob's progress (rank 0 reports every few seconds) is written at most this often.
    progress_write_seconds: float = 30.0
    # ...and all TrainingJobs together write progress at most this often a second: with N jobs
    # reporting, each one's progress is written every max(progress_write_seconds, N / this) seconds.
    progress_writes_per_second: float = 5.0
    # Each watch request lasts this long on the server (kopf's server_timeout) before it is renewed.
    watch_timeout_seconds: float = 120.0
    # A ModelEndpoint whose rollout had completed turns Degraded after this long short of Ready replicas.
    endpoint_degraded_after_seconds: float = 60.0
    # A TrainingJob whose workers are not all placed and started this long after its attempt began turns
    # Stalled (and, without Kueue, releases the placed ones); spec.runPolicy.scheduleDeadlineSeconds overrides it.
    schedule_deadline_seconds: float = 600.0
    # A ModelEndpoint whose pods do not start (crash loop, image pull, config error) this long turns Degraded.
    endpoint_start_deadline_seconds: float = 300.0
    # Each TrainingJob gets a ServiceAccount whose Role may patch only the job's progress
    # ConfigMap, so rank 0 can report progress; False: no ServiceAccount token in training pods.
    trainer_progress: bool = True
    # Leader election on a Lease (kubeforge.leader): on in the chart, which runs 2 replicas.
    leader_election: bool = False
    leader_election_namespace: str = ""  # empty: the pod's own namespace, else "default"
    leader_election_lease: str = "kubeforge-operator"
    lease_duration_seconds: int = 10

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            watch_namespaces=_split(env.get("KUBEFORGE_WATCH_NAMESPACES", "")),
            gpu_resource=env.get("KUBEFORGE_GPU_RESOURCE", d.gpu_resource),
            trainer_image=env.get("KUBEFORGE_TRAINER_IMAGE", d.trainer_image),
            server_image=env.get("KUBEFORGE_SERVER_IMAGE", d.server_image),
            health_addr=env.get("KUBEFORGE_HEALTH_ADDR", d.health_addr),
            metrics_addr=env.get("KUBEFORGE_METRICS_ADDR", d.metrics_addr),
            workers=int(env.get("KUBEFORGE_WORKERS", d.workers)),
            resync_seconds=float(env.get("KUBEFORGE_RESYNC_SECONDS", d.resync_seconds)),
            relist_seconds=float(env.get("KUBEFORGE_RELIST_SECONDS", d.relist_seconds)),
            progress_write_seconds=float(env.get("KUBEFORGE_PROGRESS_WRITE_SECONDS", d.progress_write_seconds)),
            progress_writes_per_second=float(env.get("KUBEFORGE_PROGRESS_WRITES_PER_SECOND", d.progress_writes_per_second)),
            watch_timeout_seconds=float(env.get("KUBEFORGE_WATCH_TIMEOUT_SECONDS", d.watch_timeout_seconds)),
            endpoint_degraded_after_seconds=float(
                env.get("KUBEFORGE_ENDPOINT_DEGRADED_AFTER_SECONDS", d.endpoint_degraded_after_seconds)
            ),
            schedule_deadline_seconds=float(env.get("KUBEFORGE_SCHEDULE_DEADLINE_SECONDS", d.schedule_deadline_seconds)),
            endpoint_start_deadline_seconds=float(
                env.get("KUBEFORGE_ENDPOINT_START_DEADLINE_SECONDS", d.endpoint_start_deadline_seconds)
            ),
            trainer_progress=env.get("KUBEFORGE_TRAINER_PROGRESS", "true").lower() not in ("false", "0", "no"),
            leader_election=env.get("KUBEFORGE_LEADER_ELECTION", "false").lower() in ("1", "true", "yes"),
            leader_election_namespace=env.get("KUBEFORGE_LEADER_ELECTION_NAMESPACE", d.leader_election_namespace),
            leader_election_lease=env.get("KUBEFORGE_LEADER_ELECTION_LEASE", d.leader_election_lease),
            lease_duration_seconds=int(env.get("KUBEFORGE_LEASE_DURATION_SECONDS", d.lease_duration_seconds)),
        )


SETTINGS = Settings.from_env()
