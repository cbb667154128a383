"""Fluent ModelEndpoint and Deployment objects for tests: `MakeEndpoint("a").gpus(1).autoscale(2, 8).obj()`."""

from __future__ import annotations

import copy
from typing import Any

from kubeforge import API_VERSION
from kubeforge.api.modelendpoint import ModelEndpointSpec


class MakeEndpoint:
    def __init__(self, name: str = "mep", namespace: str = "ml") -> None:
        self._obj: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "ModelEndpoint",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
            "spec": {"model": {"uri": "pvc://models/run-1"}},
        }

    @property
    def spec(self) -> dict[str, Any]:
        return self._obj["spec"]

    def set(self, path: str, value: Any) -> "MakeEndpoint":
        """Set a spec field by dotted camelCase path, e.g. set('batching.maxBatchSize', 8)."""
        node = self.spec
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
        return self

    def uri(self, uri: str) -> "MakeEndpoint":
        return self.set("model", {"uri": uri})

    def from_job(self, job: str) -> "MakeEndpoint":
        return self.set("model", {"trainingJobRef": {"name": job}})

    def replicas(self, n: int) -> "MakeEndpoint":
        return self.set("replicas", n)

    def gpus(self, n: int) -> "MakeEndpoint":
        return self.set("resources.gpus", n)

    def runtime(self, name: str) -> "MakeEndpoint":
        return self.set("runtime", name)

    def huggingface(self) -> "MakeEndpoint":
        return self.set("model.format", "huggingface")

    def pool(self, pool: str) -> "MakeEndpoint":
        return self.set("nodePool.nodeSelector", {"kubeforge.io/pool": pool})

    def autoscale(self, low: int, high: int, metric: str = "cpu", target: int | None = None) -> "MakeEndpoint":
        auto = {"minReplicas": low, "maxReplicas": high, "metric": metric}
        if target is not None:
            auto["target"] = target
        return self.set("autoscaling", auto)

    def scale_down_after(self, seconds: int) -> "MakeEndpoint":
        return self.set("autoscaling.scaleDownStabilizationSeconds", seconds)

    def protocols(self, *names: str) -> "MakeEndpoint":
        return self.set("protocols", list(names))

    def env(self, **values: str) -> "MakeEndpoint":
        return self.set("env", [{"name": k, "value": v} for k, v in values.items()])

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)

    def model(self) -> ModelEndpointSpec:
        return ModelEndpointSpec.model_validate(self.spec)


class MakeDeployment:
    """A Deployment as the API server reports it: generation, and status counts from the controller."""

    def __init__(self, replicas: int = 2, generation: int = 1) -> None:
        self._obj: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "mep", "namespace": "ml", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": generation},
        }

    def counts(self, replicas: int, updated: int, ready: int) -> "MakeDeployment":
        self._obj["status"].update(replicas=replicas, updatedReplicas=updated, readyReplicas=ready)
        return self

    def unobserved(self) -> "MakeDeployment":
        self._obj["status"]["observedGeneration"] = self._obj["metadata"]["generation"] - 1
        return self

    def progressing(self, reason: str) -> "MakeDeployment":
        status = "False" if reason == "ProgressDeadlineExceeded" else "True"
        self._obj["status"]["conditions"] = [{"type": "Progressing", "status": status, "reason": reason}]
        return self

    def obj(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)
