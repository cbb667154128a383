"""Helpers for the TrainingJob integration tests: create jobs, read them and their pods, drive fake workers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from tests.integration import fakepods
from tests.integration.clusterkit import Cluster, wait_for
from tests.unit.trainingjob_wrappers import MakeTrainingJob

GROUP, VERSION, PLURAL = "kubeforge.io", "v1alpha1", "trainingjobs"
SUMMARY = '{"metrics":{"accuracy":0.91,"f1":0.9},"modelUri":"pvc://models/demo","steps":4}'


def fake_job(name: str, nodes: int = 2) -> MakeTrainingJob:
    """A small job on the a100 pool: fake pods need no image, one GPU each keeps the pool shareable."""
    return MakeTrainingJob(name).nodes(nodes).gpus(1).pool("a100").set("image", fakepods.IMAGE)


class TrainingJobKit:
    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.custom = client.CustomObjectsApi(cluster.api)
        self.core = client.CoreV1Api(cluster.api)
        self.batch = client.BatchV1Api(cluster.api)

    def create(self, wrapper: MakeTrainingJob) -> dict[str, Any]:
        obj = wrapper.obj()
        for key in ("uid", "generation", "namespace"):
            obj["metadata"].pop(key, None)
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, obj)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec})

    def pods(self, name: str, attempt: int | None = None, live: bool = True) -> list[Any]:
        selector = f"kubeforge.io/trainingjob={name}" + (f",kubeforge.io/attempt={attempt}" if attempt else "")
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return [p for p in pods if not (live and p.metadata.deletion_timestamp)]

    def jobs(self, name: str) -> list[Any]:
        return self.batch.list_namespaced_job(self.namespace, label_selector=f"kubeforge.io/trainingjob={name}").items

    def worker(self, name: str, attempt: int, index: int) -> Any:
        return next(p for p in self.pods(name, attempt) if p.metadata.annotations.get("batch.kubernetes.io/job-completion-index") == str(index))

    def annotate_pod(self, pod_name: str, annotations: dict[str, str]) -> None:
        self.core.patch_namespaced_pod(pod_name, self.namespace, {"metadata": {"annotations": annotations}})

    def report_progress(self, name: str, record: dict[str, Any]) -> None:
        """What rank 0's reporter sends: the record under key `progress` of the job's progress ConfigMap."""
        body = {"data": {"progress": json.dumps(record)}}
        self.core.patch_namespaced_config_map(f"{name}-progress", self.namespace, body)

    def fail_worker(self, name: str, attempt: int, index: int, code: int) -> str:
        """Make a live worker exit with `code` now, as a crashed or OOM-killed process would."""
        pod = self.worker(name, attempt, index).metadata.name
        self.annotate_pod(pod, fakepods.fake_exit(code))
        return pod

    def wide(self, name: str) -> list[str]:
        """The job's line of `kubectl get tj -o wide`, split (printed: closing notes quote these lines)."""
        out = self.cluster.kubectl("get", "tj", name, "-n", self.namespace, "-o", "wide").stdout
        print(out)
        return out.splitlines()[1].split()

    def events(self, name: str) -> list[Any]:
        selector = f"involvedObject.name={name},involvedObject.kind=TrainingJob"
        return self.core.list_namespaced_event(self.namespace, field_selector=selector).items

    def wait_status(self, name: str, timeout: float = 60, **expected: Any) -> dict[str, Any]:
        """Until status shows every `expected` field (phase="Running", restarts=1, ...); returns the object."""

        def reached() -> dict[str, Any]:
            obj = self.get(name)
            status = obj.get("status") or {}
            seen = {k: status.get(k) for k in ("phase", "restarts", "message", *expected)}
            for key, value in expected.items():
                assert status.get(key) == value, seen
            return obj

        return wait_for(reached, timeout=timeout, message=f"TrainingJob {name} status {expected}")

    def wait_running(self, name: str, nodes: int = 2, timeout: float = 60, **expected: Any) -> dict[str, Any]:
        return self.wait_status(name, timeout, phase="Running", **expected)

    def wait_gone(self, name: str, timeout: float = 60) -> None:
        def gone() -> bool:
            try:
                self.get(name)
            except client.ApiException as err:
                return err.status == 404
            return False

        wait_for(gone, timeout=timeout, message=f"TrainingJob {name} deleted")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def reconciles(operator) -> float:
    """TrainingJob reconcile passes the operator finished so far (its Prometheus counter)."""
    from tests.integration.operator_fixture import http_get

    _, body = http_get(operator.metrics_url)
    prefix = 'kubeforge_operator_reconciles_total{kind="TrainingJob",result="ok"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(prefix))


@pytest.fixture(name="kit")
def kit_fixture(cluster, namespace, operator) -> TrainingJobKit:
    """A kit in a fresh namespace with the operator running; test modules import it."""
    return TrainingJobKit(cluster, namespace)
