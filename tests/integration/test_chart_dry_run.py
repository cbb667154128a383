"""`helm template` output is accepted by the real API server (server-side dry run), and the operator pod passes restricted Pod Security."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.chart import CHART, REPO, helm, one, release_for, render, render_text
from tests.integration.clusterkit import KubectlError
from tests.integration.operator_fixture import apply_crds

pytestmark = pytest.mark.integration


def dry_run_apply(cluster, manifests: str) -> str:
    """Server-side apply, dry run: admission, schema validation and RBAC escalation checks, nothing stored."""
    return cluster.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", input=manifests).stdout


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_the_rendered_chart_is_accepted_by_the_api_server(cluster, namespace, mode):
    apply_crds(cluster.kubeconfig)  # the dry run of an update needs the CRDs to exist
    values = {"watchNamespaces": [namespace]} if mode == "namespaced" else {}
    out = dry_run_apply(cluster, render_text(values, release=release_for(namespace), namespace=namespace))
    kinds = {line.split("/")[0] for line in out.splitlines()}
    assert {"deployment.apps", "serviceaccount", "customresourcedefinition.apiextensions.k8s.io",
            "poddisruptionbudget.policy"} <= kinds, out
    # Every mode has the leader-election Role (its Lease, in the release namespace); only namespaced mode has others.
    roles = [line.split()[0] for line in out.splitlines() if line.startswith("role.rbac.authorization.k8s.io/")]
    assert any(r.endswith("-leader") for r in roles), out
    assert any(not r.endswith("-leader") for r in roles) == (mode == "namespaced"), out


def test_the_operator_pod_is_admitted_by_restricted_pod_security(cluster, namespace):
    """Deployments only warn on Pod Security; a pod made from the template meets enforcement itself."""
    template = one(render(release=release_for(namespace), namespace=namespace), "Deployment")["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator-pod-check", "namespace": namespace, **template["metadata"]}}
    pod["spec"] = {**template["spec"], "serviceAccountName": "default"}
    out = cluster.kubectl("create", "--dry-run=server", "-o", "name", "-f", "-", input=yaml.safe_dump(pod)).stdout
    assert out.strip() == "pod/operator-pod-check"


def test_a_privileged_pod_is_refused_in_the_same_namespace(cluster, namespace):
    """The check above could fail: the namespace really enforces the restricted profile."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:0", "securityContext": {"privileged": True}}]},
    }
    with pytest.raises(KubectlError, match="violates PodSecurity"):
        cluster.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod))


def test_helm_install_prints_what_to_apply_next_and_its_operator_pod_runs(cluster, namespace):
    """A real `helm install` (CRDs left to crds/: the shared cluster has them), then uninstall."""
    env = {"KUBECONFIG": cluster.kubeconfig, "HELM_CACHE_HOME": "/tmp/kubeforge-helm/cache", "HELM_CONFIG_HOME": "/tmp/kubeforge-helm/config"}
    values = ["--set", "crds.enabled=false", "--set", f"watchNamespaces={{{namespace}}}"]
    release = release_for(namespace)
    install = helm("install", release, str(CHART), "--namespace", namespace, *values, "--wait", "--timeout", "180s", env=env)
    try:
        assert install.returncode == 0, install.stderr
        assert "kubectl apply -f examples/workloads/" in install.stdout
        assert "pod-security.kubernetes.io/enforce=restricted" in install.stdout
        assert f"The operator watches only: {namespace}" in install.stdout
        pods = cluster.kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=operator", "-o", "jsonpath={.items[*].status.phase}").stdout
        assert pods.split() == ["Running", "Running"]  # two replicas: leader and warm standby
    finally:
        uninstall = helm("uninstall", release, "--namespace", namespace, "--wait", env=env)
    assert uninstall.returncode == 0, uninstall.stderr
    leftovers = cluster.kubectl("get", "clusterroles", "-o", "name").stdout
    assert release not in leftovers


def test_the_example_workloads_pass_the_crds_validation(cluster, namespace):
    """examples/workloads against the real CRD schemas and CEL rules, moved into the test namespace."""
    apply_crds(cluster.kubeconfig)
    docs = [d for p in sorted((REPO / "examples" / "workloads").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    moved = [dict(d, metadata={**d["metadata"], "namespace": namespace}) for d in docs if d["kind"] != "Namespace"]
    out = dry_run_apply(cluster, yaml.safe_dump_all(moved))
    assert {line.split(" ")[0] for line in out.splitlines()} == {
        "persistentvolumeclaim/models",
        "trainingjob.kubeforge.io/minilm",
        "modelendpoint.kubeforge.io/minilm",
    }


@pytest.mark.parametrize("kind", ["TrainingJob"])
def test_the_flux_health_expressions_compile_against_the_crd_schema(cluster, kind):
    """The API server's own CEL compiler type-checks Flux's expressions against our status schema.

    Flux evaluates them with the object's fields as variables; as CRD rules on the root they
    read `self.status`. A dry-run create of a renamed copy of the CRD compiles them and stores nothing.
    """
    flux = {d["kind"]: d for d in yaml.safe_load_all((REPO / "examples" / "flux" / "kubeforge.yaml").read_text()) if d}
    exprs = next(e for e in flux["Kustomization"]["spec"]["healthCheckExprs"] if e["kind"] == kind)
    crd = yaml.safe_load((REPO / "crds" / f"kubeforge.io_{kind.lower()}s.yaml").read_text())
    crd["spec"]["group"] = "fluxcheck.kubeforge.io"
    crd["metadata"] = {"name": f"{crd['spec']['names']['plural']}.fluxcheck.kubeforge.io"}
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = [re.sub(r"(?<![.\w])status\b", "self.status", exprs[k]) for k in ("inProgress", "failed", "current") if k in exprs]
    root["x-kubernetes-validations"] = [{"rule": f"({rule}) || true"} for rule in rules]
    out = cluster.kubectl("create", "--dry-run=server", "-o", "name", "-f", "-", input=yaml.safe_dump(crd)).stdout
    assert out.strip() == f"customresourcedefinition.apiextensions.k8s.io/{crd['metadata']['name']}"
