"""What `helm template` renders: the operator Deployment, its settings, CRDs, metrics, and helm lint."""

from __future__ import annotations

from pathlib import Path

import yaml

from kubeforge.settings import Settings
from tests.chart import CHART, REPO, helm, objects, one, render, render_text


def operator_container(docs):
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def test_helm_lint_passes_in_both_modes():
    for extra in ([], ["--set", "watchNamespaces={team-a}"]):
        result = helm("lint", "--strict", str(CHART), *extra)
        assert result.returncode == 0, result.stdout + result.stderr


def test_values_outside_the_schema_are_refused():
    result = helm("template", "x", str(CHART), "--set", "operator.workerz=3")
    assert result.returncode != 0 and "workerz" in result.stderr


def test_two_replicas_elect_a_leader_on_the_release_lease():
    spec = one(render(), "Deployment")["spec"]
    settings = Settings.from_env({e["name"]: e["value"] for e in operator_container(render())["env"] if "value" in e})
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
    assert settings.leader_election and settings.leader_election_lease == "kubeforge"
    assert settings.leader_election_namespace == "kubeforge-system"


def test_the_replicas_prefer_different_nodes_and_a_drain_keeps_one():
    docs = render()
    anti = one(docs, "Deployment")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"]["matchLabels"] == term["labelSelector"]["matchLabels"]


def test_one_replica_without_leader_election_is_recreated_never_run_twice():
    docs = render({"replicaCount": 1, "leaderElection": {"enabled": False}})
    spec = one(docs, "Deployment")["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert objects(docs, "PodDisruptionBudget") == []


def test_two_replicas_without_leader_election_are_refused():
    result = helm("template", "x", str(CHART), "--set", "leaderElection.enabled=false")
    assert result.returncode != 0 and "leaderElection" in result.stderr


def test_the_operator_pod_meets_the_restricted_pod_security_profile():
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True


def test_liveness_probes_the_port_the_operator_serves_health_on():
    container = operator_container(render({"healthPort": 9000}))
    settings = Settings.from_env({e["name"]: e["value"] for e in container["env"] if "value" in e})
    health = next(p for p in container["ports"] if p["name"] == "health")
    assert settings.health_addr == "0.0.0.0:9000" and health["containerPort"] == 9000
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_values_reach_the_operator_settings():
    values = {
        "watchNamespaces": ["team-a", "team-b"],
        "metricsPort": 9100,
        "operator": {"gpuResource": "amd.com/gpu", "trainerImage": "t:1", "serverImage": "s:1", "workers": 7},
    }
    container = operator_container(render(values))
    settings = Settings.from_env({e["name"]: e["value"] for e in container["env"] if "value" in e})
    assert settings.watch_namespaces == ("team-a", "team-b")
    assert (settings.gpu_resource, settings.trainer_image, settings.server_image) == ("amd.com/gpu", "t:1", "s:1")
    assert settings.workers == 7 and settings.metrics_addr == "0.0.0.0:9100"


def test_the_image_tag_defaults_to_the_app_version():
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert operator_container(render())["image"] == f"ghcr.io/kubeforge/operator:{app_version}"
    assert operator_container(render({"image": {"repository": "r/op", "tag": "dev"}}))["image"] == "r/op:dev"


def test_the_service_monitor_is_rendered_only_when_enabled():
    assert objects(render(), "ServiceMonitor") == []
    monitor = one(render({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_the_chart_crds_are_the_generated_ones_kept_on_uninstall():
    generated = {p.name: yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))}
    rendered = objects(render(), "CustomResourceDefinition")
    assert {f"kubeforge.io_{c['spec']['names']['plural']}.yaml" for c in rendered} == set(generated)
    for crd in rendered:
        assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert crd == generated[f"kubeforge.io_{crd['spec']['names']['plural']}.yaml"]


def test_crds_enabled_false_leaves_the_crds_out():
    assert objects(render({"crds": {"enabled": False}}), "CustomResourceDefinition") == []


def test_every_value_is_documented_by_a_comment():
    """A key line needs a comment right above it, except inside free-form maps (resources, labels...)."""
    free_form = ("resources:", "podAnnotations:", "podLabels:", "nodeSelector:", "affinity:", "labels:", "annotations:")
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented, free_indent = [], None
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#") or ":" not in stripped:
            continue
        indent = len(line) - len(stripped)
        if free_indent is not None and indent > free_indent:
            continue
        free_indent = indent if stripped.startswith(free_form) else None
        previous = next((p.strip() for p in reversed(lines[:i]) if p.strip()), "")
        if not previous.startswith("#"):
            undocumented.append(line)
    assert undocumented == []


def test_the_render_has_no_leftover_template_markers():
    assert "{{" not in render_text() and "<no value>" not in render_text()


def test_no_file_under_templates_is_empty_by_accident():
    templates = [p for p in Path(CHART / "templates").rglob("*") if p.is_file()]
    assert all(p.read_text().strip() for p in templates)


def test_a_long_release_name_still_yields_valid_object_names():
    docs = render({"watchNamespaces": ["team-a"]}, release="r" * 53)
    too_long = [d["metadata"]["name"] for d in docs if d["kind"] != "CustomResourceDefinition" and len(d["metadata"]["name"]) > 63]
    assert too_long == []
