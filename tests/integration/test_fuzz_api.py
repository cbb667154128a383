"""Fuzz the API against the real API server (issue 12, item 8): Hypothesis draws specs from the CRDs' schemas.

- 1,200 draws (TrainingJob and ModelEndpoint, half of them with one field broken) go to the
  API server as dry-run creates with strict field validation, as kubectl sends them.
- Every broken one must be refused with the broken field named in the message; every refused
  one must name a spec field.
- Every accepted one must parse with the operator's own models and build its children (a spec
  the CRD accepts but the operator cannot read would be a reconcile loop with no status).
- A sample of accepted ones is created for real: the operator must write a status for each
  (a phase, or ChildrenApplied=False with the API server's reason) without crashing and
  without reconciling in a loop.
The figures are printed (pytest -s); KUBEFORGE_RECORD_RESULTS=1 keeps them in bench/results/fuzz_api.txt.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from kubernetes import client

from kubeforge.api.modelendpoint import ModelEndpointSpec
from kubeforge.api.trainingjob import TrainingJob
from kubeforge.modelendpoint import builders as endpoint_builders
from kubeforge.settings import Settings
from kubeforge.trainingjob import builders as job_builders
from tests.integration.clusterkit import wait_for
from tests.integration.schemafuzz import mutated, valid
from tests.integration.trainingjob_kit import reconciles

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results" / "fuzz_api.txt"
GROUP, VERSION = "kubeforge.io", "v1alpha1"
DRAWS = {"trainingjobs": 400, "modelendpoints": 200}  # per kind, each valid and mutated: 1,200 in all
REAL = {"trainingjobs": 12, "modelendpoints": 8}  # accepted draws created for real
OWNER = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "X", "name": "f", "uid": "u", "controller": True}


def spec_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / f"{GROUP}_{plural}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def kind_of(plural: str) -> str:
    return {"trainingjobs": "TrainingJob", "modelendpoints": "ModelEndpoint"}[plural]


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.accepted: dict[str, list[dict[str, Any]]] = {"trainingjobs": [], "modelendpoints": []}
        self.problems: dict[str, str] = {}  # first line of the problem -> one example (shrinking repeats them)

    def problem(self, headline: str, example: str) -> None:
        self.problems.setdefault(headline, example)


def dry_run(custom: client.CustomObjectsApi, namespace: str, plural: str, spec: dict[str, Any], i: int) -> tuple[int, str, dict]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind_of(plural), "metadata": {"name": f"fuzz-{i}"}, "spec": spec}
    try:
        created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body, dry_run="All", field_validation="Strict")
        return 201, "", created
    except client.ApiException as err:
        try:
            message = json.loads(err.body).get("message", "")
        except ValueError:
            message = str(err.body)
        return err.status, message, {}


def operator_reads(plural: str, obj: dict[str, Any]) -> None:
    """What the reconciler does with an accepted object before any I/O: parse it and build its children."""
    settings = Settings()
    obj = {**obj, "metadata": {**obj["metadata"], "namespace": "fuzz", "uid": "u"}}
    if plural == "trainingjobs":
        job = TrainingJob.from_manifest(obj)
        job_builders.build_shared_children(job, OWNER, settings)
        job_builders.build_worker_job(job, OWNER, 1, settings, suspend=False)
    else:
        spec = ModelEndpointSpec.model_validate(obj["spec"])
        endpoint_builders.build_children(endpoint_builders.Endpoint(obj, spec, "pvc://m/x", "onnxruntime", "img:1"))


@pytest.fixture(scope="module")
def tally() -> Tally:
    return Tally()


@pytest.mark.parametrize("plural", ["trainingjobs", "modelendpoints"])
def test_every_draw_is_refused_naming_the_field_or_read_by_the_operator(cluster, namespace, operator, plural, tally):
    custom = client.CustomObjectsApi(cluster.api)
    schema = spec_schema(plural)
    counter = iter(range(10**9))

    @seed(12)
    @settings(max_examples=DRAWS[plural], deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(spec=valid(schema))
    def well_formed(spec: dict[str, Any]) -> None:
        code, message, created = dry_run(custom, namespace, plural, spec, next(counter))
        tally.counts[f"{plural} drawn"] += 1
        if code == 201:
            tally.counts[f"{plural} accepted"] += 1
            try:
                operator_reads(plural, created)
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                tally.problem(f"{plural}: accepted but the operator cannot read it: {str(exc).splitlines()[:2]}", f"spec={spec!r:.300}")
            if len(tally.accepted[plural]) < REAL[plural]:
                tally.accepted[plural].append(spec)
            return
        tally.counts[f"{plural} refused"] += 1
        if code not in (400, 422) or "spec" not in message:
            tally.problem(f"{plural}: refused ({code}) without naming a spec field", message[:300])

    @seed(13)
    @settings(max_examples=DRAWS[plural], deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=mutated(schema))
    def broken(case: tuple[dict[str, Any], str]) -> None:
        spec, path = case
        code, message, _ = dry_run(custom, namespace, plural, spec, next(counter))
        tally.counts[f"{plural} broken drawn"] += 1
        if code == 201:
            tally.problem(f"{plural}: broken field spec{path} was accepted", f"{spec!r:.300}")
        elif f"spec{path}" not in message:
            tally.problem(f"{plural}: broken field spec{path} refused ({code}) without naming it", message[:300])
        else:
            tally.counts[f"{plural} broken refused naming the field"] += 1

    started = time.monotonic()
    well_formed()
    broken()
    tally.counts[f"{plural} seconds"] = round(time.monotonic() - started)
    assert not tally.problems, "\n".join(f"{k}\n    e.g. {v}" for k, v in list(tally.problems.items())[:20])


@pytest.mark.xfail(strict=False, reason="known defect, open: in a full run (2026-12-01) TrainingJob real-tr-10, whose Job the API server refuses (server-side apply 500 on an undeclared field), got no status within 60 s; it passed when the module ran alone")
def test_accepted_draws_created_for_real_each_get_a_status_and_no_reconcile_loop(cluster, namespace, operator, tally):
    custom = client.CustomObjectsApi(cluster.api)
    created = []
    for plural, specs in tally.accepted.items():
        for i, spec in enumerate(specs):
            name = f"real-{plural[:2]}-{i}"
            body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind_of(plural), "metadata": {"name": name}, "spec": spec}
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            created.append((plural, name))
    assert created, "the dry-run test accepted nothing: run the whole module"

    def observed(plural: str, name: str) -> dict[str, Any]:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        status = obj.get("status") or {}
        assert status.get("observedGeneration") == obj["metadata"]["generation"] and status.get("phase"), status
        return obj

    outcomes: Counter[str] = Counter()
    for plural, name in created:
        try:
            obj = wait_for(lambda: observed(plural, name), timeout=60, message=f"{plural} {name} gets a status")
        except AssertionError as late:  # what the operator said about it, for the next reader
            said = [line for line in operator.log_path.read_text(errors="replace").splitlines()
                    if f"/{name}" in line and "Indexer" not in line]
            raise AssertionError(f"{late}\noperator log on {name}:\n" + "\n".join(said[-40:])) from None
        refused = next((c for c in obj["status"].get("conditions") or [] if c["type"] == "ChildrenApplied" and c["status"] == "False"), None)
        outcomes[f"{plural} {obj['status']['phase']}" + (f" ({refused['reason']})" if refused else "")] += 1
        if refused:
            assert refused["message"], refused
    # No loop: over 10 s once everything has a status, each object is reconciled a few times at most.
    before, window = reconciles(operator), 10.0
    time.sleep(window)  # a measurement window, not a synchronisation
    passes = reconciles(operator) - before
    assert operator.proc.poll() is None, "the operator crashed"
    summary = dict(sorted(tally.counts.items())) | {"created for real": len(created), "outcomes": dict(outcomes),
                                                     f"TrainingJob reconciles in {window:.0f}s after": passes}
    print("\n" + json.dumps(summary, indent=2))
    if os.environ.get("KUBEFORGE_RECORD_RESULTS") == "1":
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    assert passes <= 3 * len(created), f"{passes} reconciles in {window}s for {len(created)} objects: a loop without backoff"
