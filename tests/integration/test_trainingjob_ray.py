"""launcher ray on the local cluster: the API server's rules, and what the worker pods get (env, ports, /dev/shm,
readiness), through the operator and the restricted Pod Security admission of the test namespace."""

from __future__ import annotations

import json

import pytest

from tests.integration import fakepods
from tests.integration.clusterkit import KubectlError
from tests.integration.trainingjob_kit import TrainingJobKit, fake_job

pytestmark = pytest.mark.integration


@pytest.fixture
def kit(cluster, namespace, operator):  # noqa: F811
    kit = TrainingJobKit(cluster, namespace)
    return kit


def ray_job(name: str, **ray) -> object:
    return fake_job(name, nodes=2).ray("python", "driver.py", **ray).memory("8Gi")


def container_of(pod) -> object:
    return pod.spec.containers[0]


def test_ray_pods_get_the_ray_env_ports_shm_and_a_readiness_probe(kit):
    kit.create(ray_job("rayjob", dashboard=True))
    kit.wait_running("rayjob")
    head = kit.worker("rayjob", 1, 0)
    main = container_of(head)
    env = {e.name: e for e in main.env}
    assert env["KUBEFORGE_LAUNCHER"].value == "ray" and env["MASTER_ADDR"].value == "rayjob-a1-0.rayjob-workers"
    assert env["KUBEFORGE_RAY_PORT"].value == "6379" and env["KUBEFORGE_RAY_DASHBOARD_PORT"].value == "8265"
    assert env["KUBEFORGE_RAY_OBJECT_STORE_MEMORY"].value == str(int(8 * 2**30 * 0.3))
    assert env["KUBEFORGE_POD_IP"].value_from.field_ref.field_path == "status.podIP"
    assert main.args == ["--", "python", "driver.py"]
    assert {p.name: p.container_port for p in main.ports} == {
        "ray-gcs": 6379, "ray-client": 10001, "ray-node": 6380, "ray-dashboard": 8265}
    assert main.readiness_probe.tcp_socket.port == "ray-node"
    shm = next(v for v in head.spec.volumes if v.name == "dshm")
    assert (shm.empty_dir.medium, shm.empty_dir.size_limit) == ("Memory", "2458Mi")  # 30% of 8Gi, rounded up to Mi
    service = kit.core.read_namespaced_service("rayjob-workers", kit.namespace)
    assert [(p.name, p.port) for p in service.spec.ports] == [("ray-gcs", 6379)]


def workers(ready: int) -> dict:
    return {"summary": f"{ready}/2", "total": 2, "ready": ready, "succeeded": 0, "failed": 0}


def test_the_job_runs_once_every_ray_node_is_ready(kit):
    kit.create(ray_job("slowhead").pod_annotations(**{fakepods.READY: "false"}))  # raylets not listening yet
    kit.wait_status("slowhead", phase="Pending", workers=workers(0))
    kit.annotate_pod(kit.worker("slowhead", 1, 0).metadata.name, {fakepods.READY: "true"})  # the head is up
    kit.wait_status("slowhead", phase="Pending", workers=workers(1))
    kit.annotate_pod(kit.worker("slowhead", 1, 1).metadata.name, {fakepods.READY: "true"})
    kit.wait_status("slowhead", phase="Running", workers=workers(2))


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"launcher": "ray"}, "spec.command", "Ray driver"),  # the recipe cannot be a driver
        ({"ray": {"dashboard": True}}, "spec.ray", "launcher: ray"),
        ({"launcher": "ray", "command": ["python", "d.py"], "procsPerNode": 2}, "spec.procsPerNode", "one Ray node per pod"),
        ({"launcher": "ray", "command": ["python", "d.py"], "elastic": {"minNodes": 1, "maxNodes": 2}}, "spec.elastic", "elastic"),
        ({"launcher": "ray", "command": ["python", "d.py"], "ray": {"objectStoreMemory": "lots"}}, "spec.ray.objectStoreMemory", ""),
    ],
)
def test_what_launcher_ray_cannot_run_is_refused_naming_the_field(kit, spec, field, words):
    manifest = fake_job("bad").obj()
    manifest["metadata"] = {"name": "bad", "namespace": kit.namespace}
    if "command" in spec:
        manifest["spec"].pop("recipe")
    manifest["spec"].update(spec)
    with pytest.raises(KubectlError) as refused:
        kit.cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert field in str(refused.value) and words in str(refused.value)
