"""The ModelEndpoint's children as pure functions of its spec: Deployment, Service, HPA, PodDisruptionBudget."""

from __future__ import annotations

import pytest

from kubeforge import servecontract as sc
from kubeforge.modelendpoint import builders
from kubeforge.modelendpoint.runtime import resolve_runtime
from tests.unit.modelendpoint_wrappers import MakeEndpoint

IMAGE = "registry.example/server:1"


def children(make: MakeEndpoint, uri: str = "pvc://models/run-1") -> builders.Children:
    spec = make.model()
    return builders.build_children(builders.Endpoint(make.obj(), spec, uri, resolve_runtime(spec), IMAGE))


def kinds(c: builders.Children) -> list[str]:
    return [o["kind"] for o in c.apply]


def deployment(make: MakeEndpoint, uri: str = "pvc://models/run-1") -> dict:
    return children(make, uri).apply[0]


def container(make: MakeEndpoint, uri: str = "pvc://models/run-1") -> dict:
    return deployment(make, uri)["spec"]["template"]["spec"]["containers"][0]


def env(make: MakeEndpoint, uri: str = "pvc://models/run-1") -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container(make, uri)["env"]}


@pytest.mark.parametrize(
    "make, applied, absent",
    [
        (MakeEndpoint(), ["Deployment", "Service"], ["HorizontalPodAutoscaler", "PodDisruptionBudget"]),
        (MakeEndpoint().replicas(3), ["Deployment", "Service", "PodDisruptionBudget"], ["HorizontalPodAutoscaler"]),
        (MakeEndpoint().autoscale(1, 4), ["Deployment", "Service", "HorizontalPodAutoscaler"], ["PodDisruptionBudget"]),
        (MakeEndpoint().autoscale(2, 8), ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"], []),
    ],
    ids=["one replica", "three replicas", "autoscaled from one", "autoscaled from two"],
)
def test_optional_children_exist_only_when_the_spec_wants_them(make, applied, absent):
    c = children(make)
    assert kinds(c) == applied
    assert [kind for _, kind, _ in c.absent] == absent


def test_every_child_is_owned_by_the_endpoint_and_labelled_with_its_name():
    for obj in children(MakeEndpoint("bert").autoscale(2, 8)).apply:
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-bert"
        assert obj["metadata"]["ownerReferences"][0]["controller"] is True
        assert obj["metadata"]["labels"][builders.LABEL] == "bert"
        assert obj["metadata"]["name"] == "bert"


def test_deployment_carries_the_replicas_unless_an_hpa_owns_them():
    assert deployment(MakeEndpoint().replicas(3))["spec"]["replicas"] == 3
    assert "replicas" not in deployment(MakeEndpoint().replicas(3).autoscale(2, 8))["spec"]


def test_rollout_never_drops_capacity():
    strategy = deployment(MakeEndpoint())["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def test_pvc_model_is_mounted_read_only_and_its_local_path_is_the_model_dir():
    pod = deployment(MakeEndpoint())["spec"]["template"]["spec"]
    assert {"name": "pvc-models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in pod["volumes"]
    assert {"name": "pvc-models", "mountPath": "/mnt/kubeforge/models", "readOnly": True} in \
        container(MakeEndpoint())["volumeMounts"]
    assert env(MakeEndpoint())[sc.MODEL_DIR] == "/mnt/kubeforge/models/run-1"


def test_a_model_baked_into_the_image_needs_no_model_volume():
    pod = deployment(MakeEndpoint().uri("/models/minilm"), "/models/minilm")["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert env(MakeEndpoint().uri("/models/minilm"), "/models/minilm")[sc.MODEL_DIR] == "/models/minilm"


@pytest.mark.parametrize(
    "make, expected",
    [
        (MakeEndpoint("bert"), {sc.MODEL_NAME: "bert", sc.RUNTIME: "auto", sc.MODEL_FORMAT: "onnx",
                                sc.TASK: "text-classification", sc.MAX_BATCH_SIZE: "32", sc.MAX_DELAY_MS: "5",
                                sc.PORT: str(sc.DEFAULT_PORT), sc.MODEL_URI: "pvc://models/run-1"}),
        (MakeEndpoint().gpus(1), {sc.RUNTIME: "auto", sc.ENGINE_CACHE_DIR: "/var/cache/kubeforge/engines"}),
        (MakeEndpoint().gpus(1).runtime("onnxruntime"), {sc.RUNTIME: "onnxruntime", sc.ENGINE_CACHE_DIR: None}),
        (MakeEndpoint().set("batching", {"maxBatchSize": 8, "maxDelayMs": 20}), {sc.MAX_BATCH_SIZE: "8", sc.MAX_DELAY_MS: "20"}),
        (MakeEndpoint().env(KUBEFORGE_MAX_BATCH_SIZE="4", EXTRA="1"), {sc.MAX_BATCH_SIZE: "4", "EXTRA": "1"}),
    ],
    ids=["contract", "gpu auto keeps a tensorrt engine cache", "explicit runtime passes through", "batching", "user env wins"],
)
def test_server_env_follows_the_serving_contract(make, expected):
    actual = env(make)
    assert {k: actual.get(k) for k in expected} == expected


def test_user_env_replaces_ours_instead_of_duplicating_it():
    names = [e["name"] for e in container(MakeEndpoint().env(KUBEFORGE_MAX_BATCH_SIZE="4"))["env"]]
    assert names.count(sc.MAX_BATCH_SIZE) == 1


def test_tensorrt_pods_get_an_engine_cache_that_survives_container_restarts():
    c = container(MakeEndpoint().gpus(1))
    assert env(MakeEndpoint().gpus(1))[sc.ENGINE_CACHE_DIR] == builders.ENGINE_CACHE_PATH
    assert {"name": "engine-cache", "mountPath": builders.ENGINE_CACHE_PATH} in c["volumeMounts"]
    assert sc.ENGINE_CACHE_DIR not in env(MakeEndpoint())


def test_gpu_pods_request_the_gpu_resource_and_tolerate_the_pool_taint():
    make = MakeEndpoint().gpus(2).pool("a100")
    pod = deployment(make)["spec"]["template"]["spec"]
    assert container(make)["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert pod["nodeSelector"] == {"kubeforge.io/pool": "a100"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_cpu_pods_get_no_gpu_and_no_gpu_toleration():
    pod = deployment(MakeEndpoint().set("resources", {"cpu": "2", "memory": "4Gi"}))["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert "tolerations" not in pod


def test_probes_hit_the_server_health_routes_and_startup_allows_a_slow_model_load():
    c = container(MakeEndpoint())
    assert c["readinessProbe"]["httpGet"] == {"path": sc.READY_PATH, "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": sc.LIVE_PATH, "port": "http"}
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 20 * builders.MEASURED_COLD_START_S


def test_the_startup_probe_polls_well_inside_the_measured_cold_start_and_waits_for_tensorrt_engine_builds():
    cpu, trt = container(MakeEndpoint())["startupProbe"], container(MakeEndpoint().gpus(1))["startupProbe"]
    assert cpu["periodSeconds"] <= builders.MEASURED_COLD_START_S / 2
    assert trt["periodSeconds"] * trt["failureThreshold"] >= 900


def test_the_startup_probe_is_sized_from_at_least_the_cold_start_the_serve_bench_measured():
    import json
    from pathlib import Path

    results = Path(__file__).resolve().parents[2] / "bench" / "results" / "serve_bench.json"
    measured = json.loads(results.read_text())["startup"]["kubeforge"]["cold_start_s"]
    assert builders.MEASURED_COLD_START_S >= measured, "re-size the startup probe from the new bench figure"


def test_pods_pass_the_restricted_pod_security_profile():
    pod = deployment(MakeEndpoint())["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_server_root_filesystem_is_read_only_with_a_writable_tmp():
    c = container(MakeEndpoint())
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in deployment(MakeEndpoint())["spec"]["template"]["spec"]["volumes"]


def test_server_pods_drain_before_they_stop():
    # preStop sleeps while endpoints drop the pod; the grace period covers it, the drain delay and the drain.
    pod = deployment(MakeEndpoint())["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": sc.PRESTOP_SLEEP_S}}}
    assert pod["terminationGracePeriodSeconds"] > \
        sc.PRESTOP_SLEEP_S + sc.DEFAULT_DRAIN_DELAY_S + sc.DEFAULT_DRAIN_TIMEOUT_S


def test_server_pods_carry_no_api_token_and_no_service_env():
    pod = deployment(MakeEndpoint())["spec"]["template"]["spec"]
    assert (pod["automountServiceAccountToken"], pod["enableServiceLinks"]) == (False, False)


def test_pods_are_scraped_by_prometheus_and_user_annotations_win():
    template = deployment(MakeEndpoint().set("podAnnotations", {"prometheus.io/scrape": "false", "team": "ml"}))["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/path"] == sc.METRICS_PATH
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "false"
    assert template["metadata"]["annotations"]["team"] == "ml"


def test_service_exposes_http_on_port_80_to_the_endpoint_pods():
    svc = children(MakeEndpoint("bert")).apply[1]
    assert svc["spec"]["selector"] == {builders.LABEL: "bert"}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert builders.service_url("bert", "ml") == "http://bert.ml.svc"


def test_grpc_gets_a_container_port_the_server_env_and_an_h2c_service_port():
    make = MakeEndpoint("bert").protocols("http", "grpc")
    assert {"name": "grpc", "containerPort": sc.DEFAULT_GRPC_PORT, "protocol": "TCP"} in container(make)["ports"]
    assert env(make)[sc.GRPC_PORT] == str(sc.DEFAULT_GRPC_PORT)
    assert children(make).apply[1]["spec"]["ports"][1] == {
        "name": "grpc", "port": 8081, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"}


def test_http_only_endpoints_open_no_grpc_port():
    assert [p["name"] for p in container(MakeEndpoint())["ports"]] == ["http"]
    assert sc.GRPC_PORT not in env(MakeEndpoint())


@pytest.mark.parametrize(
    "make, metric",
    [
        (MakeEndpoint().autoscale(2, 8), {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}),
        (MakeEndpoint().autoscale(2, 8, "cpu", 50), {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}),
        (MakeEndpoint().autoscale(2, 8, "inflight"), {"type": "Pods", "pods": {"metric": {"name": sc.INFLIGHT_METRIC}, "target": {"type": "AverageValue", "averageValue": "8"}}}),
        (MakeEndpoint().autoscale(2, 8, "inflight", 3), {"type": "Pods", "pods": {"metric": {"name": sc.INFLIGHT_METRIC}, "target": {"type": "AverageValue", "averageValue": "3"}}}),
    ],
    ids=["cpu default", "cpu target", "inflight default", "inflight target"],
)
def test_hpa_targets_the_deployment_with_the_chosen_metric(make, metric):
    hpa = next(o for o in children(make).apply if o["kind"] == "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mep"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["metrics"] == [metric]


def test_hpa_scales_down_after_the_cluster_default_unless_the_spec_shortens_it():
    def hpa(make):
        return next(o for o in children(make).apply if o["kind"] == "HorizontalPodAutoscaler")["spec"]
    assert "behavior" not in hpa(MakeEndpoint().autoscale(1, 3))
    assert hpa(MakeEndpoint().autoscale(1, 3).scale_down_after(30))["behavior"] == {
        "scaleDown": {"stabilizationWindowSeconds": 30}}


def test_pdb_lets_one_pod_go_at_a_time():
    pdb = next(o for o in children(MakeEndpoint().replicas(3)).apply if o["kind"] == "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {builders.LABEL: "mep"}}}


def test_builders_are_deterministic():
    make = MakeEndpoint().gpus(1).autoscale(2, 8, "inflight").pool("a100")
    assert children(make) == children(make)


def test_a_new_autoscaled_deployment_starts_at_min_replicas_when_asked():
    make = MakeEndpoint().autoscale(2, 8)
    spec = make.model()
    ep = builders.Endpoint(make.obj(), spec, "pvc://models/run-1", "onnxruntime", IMAGE, initial_replicas=2)
    assert builders.build_deployment(ep)["spec"]["replicas"] == 2
