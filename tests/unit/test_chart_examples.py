"""The examples users apply (workloads, Argo CD, Flux) parse, validate against the API models, and point at this chart."""

from __future__ import annotations

import yaml

from kubeforge.api.modelendpoint import ModelEndpointSpec
from kubeforge.api.trainingjob import TrainingJob
from tests.chart import CHART, REPO

EXAMPLES = REPO / "examples"


def documents(path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def workloads() -> dict[str, dict]:
    return {d["kind"]: d for p in sorted((EXAMPLES / "workloads").glob("*.yaml")) for d in documents(p)}


def test_the_example_training_job_and_endpoint_satisfy_the_api_models():
    objs = workloads()
    job = TrainingJob.from_manifest(objs["TrainingJob"])
    endpoint = ModelEndpointSpec.model_validate(objs["ModelEndpoint"]["spec"])
    assert job.spec.recipe is not None and job.spec.output.uri.startswith("pvc://models/")
    assert endpoint.model.training_job_ref.name == job.name


def test_the_example_namespace_enforces_restricted_pod_security_and_holds_everything():
    objs = workloads()
    labels = objs["Namespace"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    name = objs["Namespace"]["metadata"]["name"]
    assert {o["metadata"]["namespace"] for kind, o in objs.items() if kind != "Namespace"} == {name}


def test_the_argocd_application_installs_this_chart_with_server_side_apply():
    app = documents(EXAMPLES / "argocd" / "application.yaml")[0]
    assert app["spec"]["source"]["path"] == str(CHART.relative_to(REPO))
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert set(app["spec"]["source"]["helm"]["valuesObject"]) <= set(yaml.safe_load((CHART / "values.yaml").read_text()))


def test_the_flux_release_installs_this_chart_and_waits_for_training_jobs_to_succeed():
    docs = {d["kind"]: d for d in documents(EXAMPLES / "flux" / "kubeforge.yaml")}
    assert docs["HelmRelease"]["spec"]["chart"]["spec"]["chart"] == "./" + str(CHART.relative_to(REPO))
    assert set(docs["HelmRelease"]["spec"]["values"]) <= set(yaml.safe_load((CHART / "values.yaml").read_text()))
    kinds = {e["kind"] for e in docs["Kustomization"]["spec"]["healthCheckExprs"]}
    assert kinds == {"TrainingJob"} and docs["Kustomization"]["spec"]["wait"] is True
