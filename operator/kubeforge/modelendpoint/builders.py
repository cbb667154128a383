"""Pure builders for a ModelEndpoint's children: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget.

Spec and names in, manifests out: no I/O, no clock. The reconciler applies what
`build_children` returns with server-side apply and deletes what it lists as absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubeforge import podspec, servecontract as sc, storage
from kubeforge.api.common import ObjectStorage
from kubeforge.api.modelendpoint import ModelEndpointSpec
from kubeforge.modelendpoint.download import add_download_step
from kubeforge.modelendpoint.evaluation import add_evaluation_step

LABEL = "kubeforge.io/modelendpoint"
CONTAINER = "server"
SERVICE_PORT = 80
SERVICE_GRPC_PORT = sc.DEFAULT_GRPC_PORT
ENGINE_CACHE_PATH = "/var/cache/kubeforge/engines"
# The startup probe, sized from kubeforge-serve's measured cold start: process start to its first answer,
# ONNX Runtime on CPU, MiniLM-L6, on 2 shared cores (bench/serve_bench.py; bench/results/serve_bench.json
# startup.kubeforge.cold_start_s; a unit test keeps this at or above the committed figure).
MEASURED_COLD_START_S = 4
# Polled every 2 s, a pod turns Ready within 2 s of its server (a 10 s period made a 4 s start take 10 s).
STARTUP_PERIOD_S = 2
# How long a load may take before the kubelet restarts the container: 20x the measured start covers models
# ~20x MiniLM's size; TensorRT builds its engine at first start (minutes per GPU model), so it gets 15 min.
STARTUP_BUDGET_S = {"tensorrt": 900}
DEFAULT_STARTUP_BUDGET_S = max(120, 20 * MEASURED_COLD_START_S)
PROGRESS_DEADLINE_S = 900
# Room for the whole shutdown (servecontract: preStop sleep, drain delay, drain timeout) and 5 s to spare.
TERMINATION_GRACE_S = int(sc.PRESTOP_SLEEP_S + sc.DEFAULT_DRAIN_DELAY_S + sc.DEFAULT_DRAIN_TIMEOUT_S) + 5
TMP_PATH = "/tmp"
DEFAULT_TARGETS = {"cpu": 70, "inflight": 8}


@dataclass(frozen=True)
class Endpoint:
    """Everything the builders need about one ModelEndpoint, resolved by the reconciler."""

    owner: dict[str, Any]  # the ModelEndpoint as read (for name, namespace, uid)
    spec: ModelEndpointSpec
    model_uri: str
    runtime: str
    image: str
    gpu_resource: str = "nvidia.com/gpu"
    # Autoscaled and about to be created: start at minReplicas (see handover.py), not the default of 1.
    initial_replicas: int | None = None
    model_revision: str | None = None  # the server's X-Kubeforge-Model header (modelendpoint.revisions.model_header)
    # s3:// models: the store (spec.storage, else the referenced TrainingJob's) and the digest to insist on.
    storage: ObjectStorage | None = None
    model_digest: str | None = None
    # A candidate under spec.rollout.promotion.evaluation: its pods score the held-out file against this gate first.
    evaluation_gate: list[dict[str, Any]] | None = None

    @property
    def name(self) -> str:
        return self.owner["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.owner["metadata"]["namespace"]


@dataclass(frozen=True)
class Children:
    """Objects to apply, and (apiVersion, kind, name) of optional children that must not exist."""

    apply: list[dict[str, Any]]
    absent: list[tuple[str, str, str]] = field(default_factory=list)


def selector_labels(name: str) -> dict[str, str]:
    return {LABEL: name}


def selector_string(name: str) -> str:
    """The pods' label selector as the scale subresource wants it (status.selector)."""
    return ",".join(f"{k}={v}" for k, v in selector_labels(name).items())


def service_url(name: str, namespace: str) -> str:
    # <svc>.<ns>.svc resolves through every pod's DNS search path, whatever the cluster domain.
    return f"http://{name}.{namespace}.svc"


def labels(name: str) -> dict[str, str]:
    return {
        **selector_labels(name),
        "app.kubernetes.io/name": "kubeforge-server",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "inference-server",
        "app.kubernetes.io/managed-by": "kubeforge",
    }


def desired_replica_floor(spec: ModelEndpointSpec) -> int:
    """The fewest replicas the endpoint asks for: what decides whether a PodDisruptionBudget helps."""
    return spec.autoscaling.min_replicas if spec.autoscaling else spec.replicas


def build_children(ep: Endpoint) -> Children:
    apply = [build_deployment(ep), build_service(ep)]
    absent: list[tuple[str, str, str]] = []
    if ep.spec.autoscaling:
        apply.append(build_hpa(ep))
    else:
        absent.append(("autoscaling/v2", "HorizontalPodAutoscaler", ep.name))
    if desired_replica_floor(ep.spec) > 1:
        apply.append(build_pdb(ep))
    else:
        absent.append(("policy/v1", "PodDisruptionBudget", ep.name))
    return Children(apply=apply, absent=absent)


def _metadata(ep: Endpoint) -> dict[str, Any]:
    return {
        "name": ep.name,
        "namespace": ep.namespace,
        "labels": labels(ep.name),
        "ownerReferences": [podspec.owner_reference(ep.owner)],
    }


def build_deployment(ep: Endpoint) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(ep.name)},
        # Capacity never drops during a rollout: a new pod must be Ready before an old one goes.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
        "revisionHistoryLimit": 3,
        "template": build_pod_template(ep),
    }
    if not ep.spec.autoscaling:
        spec = {"replicas": ep.spec.replicas, **spec}
    elif ep.initial_replicas is not None:
        spec = {"replicas": ep.initial_replicas, **spec}
    # Otherwise, with an HPA, the field is left out: server-side apply then leaves the HPA's value alone.
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(ep), "spec": spec}


def build_pod_template(ep: Endpoint) -> dict[str, Any]:
    location = storage.parse_uri(ep.model_uri)
    volumes, mounts = _volumes(ep, location)
    container = {
        "name": CONTAINER,
        "image": ep.image,
        "command": ["kubeforge-serve"],
        "ports": container_ports(ep.spec),
        "env": podspec.merge_env(server_env(ep, location), ep.spec.env),
        "resources": podspec.container_resources(ep.spec.resources, ep.gpu_resource),
        # The root filesystem is read-only; the server writes only to /tmp (int8 models without an
        # engine cache dir) and the engine cache, both emptyDirs.
        "securityContext": {**podspec.container_security_context(), "readOnlyRootFilesystem": True},
        **probes(ep.runtime),
        # The kubelet sleeps before SIGTERM while the endpoints controller and kube-proxies drop the pod,
        # so no new connection reaches a closing server (the sleep action needs no shell in the image).
        "lifecycle": {"preStop": {"sleep": {"seconds": sc.PRESTOP_SLEEP_S}}},
    }
    container["volumeMounts"] = mounts
    pod: dict[str, Any] = {
        # The server never calls the API server; no token in the pod is one less thing to steal.
        "automountServiceAccountToken": False,
        # Service env vars for every Service in the namespace are noise the server never reads.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "securityContext": podspec.pod_security_context(),
        "containers": [container],
        **podspec.placement(ep.spec.node_pool, ep.spec.resources.gpus, ep.gpu_resource),
    }
    pod["volumes"] = volumes
    if location.is_object_store:
        add_download_step(pod, container, ep.image, location, ep.storage or ep.spec.storage, ep.spec.resources, ep.model_digest)
    evaluation = ep.spec.rollout.promotion.evaluation if ep.spec.rollout.promotion else None
    if evaluation is not None and ep.evaluation_gate is not None:
        add_evaluation_step(pod, container, evaluation, ep.evaluation_gate, ep.storage or ep.spec.storage)
    annotations = {**scrape_annotations(), **ep.spec.pod_annotations}
    return {"metadata": {"labels": labels(ep.name), "annotations": annotations}, "spec": pod}


def container_ports(spec: ModelEndpointSpec) -> list[dict[str, Any]]:
    ports = [{"name": "http", "containerPort": sc.DEFAULT_PORT, "protocol": "TCP"}]
    if "grpc" in spec.protocols:
        ports.append({"name": "grpc", "containerPort": sc.DEFAULT_GRPC_PORT, "protocol": "TCP"})
    return ports


def server_env(ep: Endpoint, location: storage.Location) -> list[dict[str, Any]]:
    """The serving contract (kubeforge.servecontract) as container env."""
    values = {
        sc.MODEL_DIR: location.local_path,
        sc.MODEL_URI: ep.model_uri,
        sc.MODEL_NAME: ep.name,
        sc.MODEL_FORMAT: ep.spec.model.format,
        sc.TASK: ep.spec.model.task,
        # The user's choice, not our resolution: with `auto` the server itself falls back to
        # ONNX Runtime's CUDA provider when the image lacks TensorRT, instead of exiting.
        sc.RUNTIME: ep.spec.runtime,
        sc.MAX_BATCH_SIZE: str(ep.spec.batching.max_batch_size),
        sc.MAX_DELAY_MS: str(ep.spec.batching.max_delay_ms),
        # Inside the pod the server must answer the kubelet's probes on the pod IP.
        sc.HOST: "0.0.0.0",
        sc.PORT: str(sc.DEFAULT_PORT),
    }
    if ep.model_revision:
        values[sc.MODEL_REVISION] = ep.model_revision
    if "grpc" in ep.spec.protocols:
        values[sc.GRPC_PORT] = str(sc.DEFAULT_GRPC_PORT)
    if ep.runtime == "tensorrt":
        values[sc.ENGINE_CACHE_DIR] = ENGINE_CACHE_PATH
    return [{"name": k, "value": v} for k, v in values.items()]


def _volumes(ep: Endpoint, location: storage.Location) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes = [{"name": "tmp", "emptyDir": {}}]
    mounts = [{"name": "tmp", "mountPath": TMP_PATH}]
    pvc = podspec.pvc_volume(location, read_only=True)
    if pvc:
        volumes.append(pvc[0])
        mounts.append(pvc[1])
    if ep.runtime == "tensorrt":
        # Engines are built per GPU model at first start; an emptyDir survives container restarts.
        volumes.append({"name": "engine-cache", "emptyDir": {}})
        mounts.append({"name": "engine-cache", "mountPath": ENGINE_CACHE_PATH})
    return volumes, mounts


def probes(runtime: str) -> dict[str, Any]:
    """Startup waits for the model load (TensorRT engine builds take minutes); then liveness takes over."""
    def http(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}}

    return {
        "startupProbe": {**http(sc.READY_PATH), "periodSeconds": STARTUP_PERIOD_S,
                         "failureThreshold": STARTUP_BUDGET_S.get(runtime, DEFAULT_STARTUP_BUDGET_S) // STARTUP_PERIOD_S},
        "readinessProbe": {**http(sc.READY_PATH), "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {**http(sc.LIVE_PATH), "periodSeconds": 10, "failureThreshold": 3},
    }


def scrape_annotations() -> dict[str, str]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(sc.DEFAULT_PORT), "prometheus.io/path": sc.METRICS_PATH}


def build_service(ep: Endpoint) -> dict[str, Any]:
    ports = [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]
    if "grpc" in ep.spec.protocols:
        # appProtocol h2c: gRPC without TLS, so meshes and gateways route it as HTTP/2 (KEP-3726's standard name).
        ports.append({"name": "grpc", "port": SERVICE_GRPC_PORT, "targetPort": "grpc", "protocol": "TCP",
                      "appProtocol": "kubernetes.io/h2c"})
    spec = {"type": "ClusterIP", "selector": selector_labels(ep.name), "ports": ports}
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(ep), "spec": spec}


def build_hpa(ep: Endpoint) -> dict[str, Any]:
    auto = ep.spec.autoscaling
    assert auto is not None
    target = auto.target or DEFAULT_TARGETS[auto.metric]
    if auto.metric == "cpu":
        metric = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}
    else:
        metric = {
            "type": "Pods",
            "pods": {"metric": {"name": sc.INFLIGHT_METRIC}, "target": {"type": "AverageValue", "averageValue": str(target)}},
        }
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": ep.name},
        "minReplicas": auto.min_replicas,
        "maxReplicas": auto.max_replicas,
        "metrics": [metric],
    }
    if auto.scale_down_stabilization_seconds is not None:
        spec["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": auto.scale_down_stabilization_seconds}}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _metadata(ep), "spec": spec}


def build_pdb(ep: Endpoint) -> dict[str, Any]:
    # maxUnavailable 1 (not minAvailable) keeps working when the HPA changes the count.
    spec = {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(ep.name)}}
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _metadata(ep), "spec": spec}
