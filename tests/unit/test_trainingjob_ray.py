"""launcher ray: the API's rules, the env contract's Ray part, and what the builders add to the pods and Service."""

from __future__ import annotations

import pytest

from kubeforge import contract
from kubeforge.api.trainingjob import DEFINITION
from kubeforge.contract import LaunchEnv, RayEnv
from kubeforge.crds import build_crd
from kubeforge.settings import Settings
from kubeforge.trainingjob.builders import build_service, build_worker_job
from kubeforge.trainingjob.env import launch_env, memory_bytes
from tests.unit.trainingjob_wrappers import MakeTrainingJob

OWNER = {"apiVersion": "kubeforge.io/v1alpha1", "kind": "TrainingJob", "name": "train", "uid": "u1", "controller": True}


def pod_spec(wrapper: MakeTrainingJob) -> dict:
    return build_worker_job(wrapper.model(), OWNER, 1, Settings(), suspend=False)["spec"]["template"]["spec"]


def container(wrapper: MakeTrainingJob) -> dict:
    return pod_spec(wrapper)["containers"][0]


def env_of(wrapper: MakeTrainingJob) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(wrapper)["env"]}


def spec_rules() -> dict[str, str]:
    schema = build_crd(DEFINITION)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return {v["rule"]: v["message"] for v in schema["x-kubernetes-validations"]}


@pytest.mark.parametrize("rule", [
    "!has(self.ray) || self.launcher == 'ray'",
    "self.launcher != 'ray' || has(self.command)",
    "self.launcher != 'ray' || !has(self.elastic)",
    "self.launcher != 'ray' || !has(self.procsPerNode)",
])
def test_the_crd_refuses_what_launcher_ray_cannot_run(rule):
    assert rule in spec_rules()


def test_the_ray_defaults_are_a_quiet_small_cluster():
    ray = MakeTrainingJob().ray(dashboard=False).model().spec.ray
    assert (ray.dashboard, ray.version, ray.object_store_memory, ray.start_args, ray.join_timeout_seconds) == (
        False, None, None, [], 300)


@pytest.mark.parametrize(("quantity", "expected"), [
    ("32Gi", 32 * 2**30), ("512Mi", 512 * 2**20), ("1G", 10**9), ("1.5Gi", int(1.5 * 2**30)), ("1000", 1000), (None, None)])
def test_memory_quantities_in_bytes(quantity, expected):
    assert memory_bytes(quantity) == expected


def test_the_object_store_defaults_to_rays_share_of_the_memory_limit():
    assert launch_env(MakeTrainingJob().ray().memory("10Gi").model()).ray.object_store_memory == int(10 * 2**30 * 0.3)


def test_an_explicit_object_store_wins():
    job = MakeTrainingJob().ray(objectStoreMemory="2Gi").memory("10Gi").model()
    assert launch_env(job).ray.object_store_memory == 2 * 2**30


def test_without_a_memory_limit_ray_sizes_its_own_object_store():
    assert launch_env(MakeTrainingJob().ray().model()).ray.object_store_memory is None


def test_ray_counts_the_pods_cpu_limit_as_whole_cpus():
    assert launch_env(MakeTrainingJob().ray().cpu("2500m").model()).ray.num_cpus == 2
    assert launch_env(MakeTrainingJob().ray().cpu("500m").model()).ray.num_cpus == 1


def test_other_launchers_carry_no_ray_env():
    assert launch_env(MakeTrainingJob().model()).ray is None
    assert not any(k.startswith("KUBEFORGE_RAY_") for k in env_of(MakeTrainingJob()))


def test_the_ray_env_round_trips_through_the_contract():
    ray = RayEnv(port=7000, client_port=7001, node_manager_port=7002, dashboard_port=8265, num_cpus=3,
                 object_store_memory=10**8, start_args=("--resources", '{"disk": 1}'), version="2.60.0", join_timeout_s=60)
    launch = LaunchEnv(job_name="j", namespace="n", master_addr="h", nnodes=2, nproc_per_node=1, node_rank=1,
                       launcher="ray", pod_ip="10.0.0.5", ray=ray)
    assert LaunchEnv.from_env(launch.to_env()) == launch


def test_pods_get_the_ray_env_and_their_own_ip_from_the_downward_api():
    env = env_of(MakeTrainingJob().ray(dashboard=True, version="2.60.0", startArgs=["--resources={\"disk\": 1}"]))
    assert env[contract.LAUNCHER] == "ray"
    assert env[contract.POD_IP] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert (env[contract.RAY_PORT], env[contract.RAY_CLIENT_PORT], env[contract.RAY_NODE_MANAGER_PORT]) == ("6379", "10001", "6380")
    assert (env[contract.RAY_DASHBOARD_PORT], env[contract.RAY_VERSION]) == ("8265", "2.60.0")
    assert env[contract.RAY_START_ARGS] == '["--resources={\\"disk\\": 1}"]'
    assert env[contract.MASTER_ADDR] == "train-a1-0.train-workers"  # workers join the head through the headless Service


def test_the_dashboard_is_off_unless_asked():
    assert contract.RAY_DASHBOARD_PORT not in env_of(MakeTrainingJob().ray())
    assert "ray-dashboard" not in {p["name"] for p in container(MakeTrainingJob().ray())["ports"]}


def test_pods_expose_the_heads_ports_and_their_raylets():
    ports = {p["name"]: p["containerPort"] for p in container(MakeTrainingJob().ray(dashboard=True))["ports"]}
    assert ports == {"ray-gcs": 6379, "ray-client": 10001, "ray-node": 6380, "ray-dashboard": 8265}


def test_a_pod_is_ready_when_its_raylet_listens():
    probe = container(MakeTrainingJob().ray())["readinessProbe"]
    assert probe["tcpSocket"] == {"port": "ray-node"}


def test_other_launchers_keep_the_rendezvous_port_and_no_probe():
    assert container(MakeTrainingJob())["ports"] == [{"name": "rendezvous", "containerPort": 29500}]
    assert "readinessProbe" not in container(MakeTrainingJob())


def test_dev_shm_holds_the_whole_object_store():
    shm = pod_spec(MakeTrainingJob().ray(objectStoreMemory="1500M"))["volumes"][0]
    assert shm == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1431Mi"}}


def test_dev_shm_is_unbounded_when_ray_sizes_the_store_itself():
    assert "sizeLimit" not in pod_spec(MakeTrainingJob().ray())["volumes"][0]["emptyDir"]


def test_the_headless_service_names_the_heads_gcs_port():
    service = build_service(MakeTrainingJob("bert").ray().model(), OWNER)
    assert service["spec"]["ports"] == [{"name": "ray-gcs", "port": 6379, "targetPort": 6379}]
    assert service["spec"]["publishNotReadyAddresses"] is True  # workers resolve the head before it is Ready


def test_the_ray_sample_is_a_two_node_ray_job_with_a_driver():
    from pathlib import Path

    from kubeforge.localrun import load_trainingjob

    job = load_trainingjob(str(Path(__file__).resolve().parents[2] / "samples" / "trainingjob-ray.yaml"))
    assert (job.spec.launcher, job.spec.nodes, job.spec.ray.version) == ("ray", 2, "2.60.0")
    assert job.spec.command[:2] == ["python", "-c"] and "ray.get([compute.remote(i) for i in range(4)])" in job.spec.command[2]
