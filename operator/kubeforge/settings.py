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
    workers: int = 4
    resync_seconds: float = 60.0
    # Every TrainingJob and ModelEndpoint is listed and re-queued this often (jittered): catches missed events.
    relist_seconds: float = 300.0
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
            watch_timeout_seconds=float(env.get("KUBEFORGE_WATCH_TIMEOUT_SECONDS", d.watch_timeout_seconds)),
            endpoint_degraded_after_seconds=float(
                env.get("KUBEFORGE_ENDPOINT_DEGRADED_AFTER_SECONDS", d.endpoint_degraded_after_seconds)
            ),
            schedule_deadline_seconds=float(env.get("KUBEFORGE_SCHEDULE_DEADLINE_SECONDS", d.schedule_deadline_seconds)),
            endpoint_start_deadline_seconds=float(
                env.get("KUBEFORGE_ENDPOINT_START_DEADLINE_SECONDS", d.endpoint_start_deadline_seconds)
            ),
            trainer_progress=env.get("KUBEFORGE_TRAINER_PROGRESS", "true").lower() not in ("false", "0", "no"),
        )


SETTINGS = Settings.from_env()
