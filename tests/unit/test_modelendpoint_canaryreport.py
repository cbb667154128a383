"""Strategy Canary judged on the canary's own error rate and p95 latency, as its servers report them into the ConfigMap
<name>-canary-report: the verdict (table), the children that give the canary pods their one permission, and the shell
through a canary failed on its error rate and one promoted on clean traffic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubeforge import servecontract as sc
from kubeforge.api.modelendpoint import Canary
from kubeforge.modelendpoint import canary, canaryreport
from tests.unit.fake_kube import FakeKube
from tests.unit.test_modelendpoint_canary import REV, T0, T90, canary_endpoint, pod, started_canary
from tests.unit.test_modelendpoint_revisions import condition, job, reconcile, served_env

LIMITS = Canary(bake_seconds=60, max_error_rate=0.05, max_p95_ms=500)
BAKED = {**REV, "startedAt": T0, "readySince": T0}


def reports(**by_pod: dict[str, Any]) -> dict[str, Any]:
    return {"data": {name: json.dumps(record) for name, record in by_pod.items()}}


@pytest.mark.parametrize("report_map, state, says", [
    (None, "Passed", "no requests reported by 0 pod(s)"),
    (reports(c1={"requests": 200, "errors": 2, "p95Ms": 40.5}), "Passed", "200 requests, 2 answered 5xx (error rate 0.01), p95 40.5 ms"),
    (reports(c1={"requests": 100, "errors": 6, "p95Ms": 40}), "Failed",
     "error rate 0.06 (6 of 100 requests answered 5xx) exceeds maxErrorRate 0.05 during the bake"),
    (reports(c1={"requests": 100, "errors": 0, "p95Ms": 40}, c2={"requests": 50, "errors": 0, "p95Ms": 900}), "Failed",
     "p95 latency 900 ms (pod c2) exceeds maxP95Ms 500 during the bake"),
    (reports(c1={"requests": 100, "errors": 0, "p95Ms": 40}, gone={"requests": 9, "errors": 9, "p95Ms": 9000}), "Passed",
     "100 requests"),  # a pod that is no canary pod of this revision (an earlier canary's) does not count
    (reports(c1="not json"), "Passed", "no requests"),
])
def test_at_the_bakes_end_the_canary_is_judged_on_its_own_traffic(report_map, state, says):
    verdict = canary.judge(REV, BAKED, (pod("c1"), pod("c2")), canary.Bake(2, 60, limits=LIMITS), T90, report_map)
    assert verdict.state == state and says in verdict.message, verdict.message


def test_traffic_is_not_judged_before_the_bakes_end():
    bad = reports(c1={"requests": 100, "errors": 100, "p95Ms": 40})
    verdict = canary.judge(REV, BAKED, (pod("c1"),), canary.Bake(1, 600, limits=LIMITS), T90, bad)
    assert verdict.state == "Baking"


def test_the_canary_pods_may_patch_their_report_and_nothing_else():
    owner = {"apiVersion": "kubeforge.io/v1alpha1", "kind": "ModelEndpoint", "metadata": {"name": "mep", "namespace": "ml", "uid": "u"}}
    account, config_map, role, binding = canaryreport.build_children(owner, {"kubeforge.io/modelendpoint": "mep"})
    assert (account["metadata"]["name"], config_map["metadata"]["name"]) == ("mep-canary", "mep-canary-report")
    assert account["automountServiceAccountToken"] is False and "data" not in config_map
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"], "resourceNames": ["mep-canary-report"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mep-canary", "namespace": "ml"}]


def canary_spec(kube: FakeKube) -> dict[str, Any]:
    return kube.get("apps/v1", "Deployment", "ml", "mep-canary")["spec"]["template"]["spec"]


def test_only_the_canary_pods_get_a_token_and_the_report_env():
    kube = FakeKube(canary_endpoint(bake=60), job("/m/v1", {"accuracy": 0.92}))
    started_canary(kube)
    spec = canary_spec(kube)
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == ("mep-canary", True)
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env[sc.REPORT_CONFIGMAP]["value"] == "mep-canary-report"
    assert env[sc.POD_NAME]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    stable = kube.get("apps/v1", "Deployment", "ml", "mep")["spec"]["template"]["spec"]
    assert stable["automountServiceAccountToken"] is False and "serviceAccountName" not in stable
    assert sc.REPORT_CONFIGMAP not in served_env(kube)
    assert {k for k, _, n in kube.objects if n in ("mep-canary", "mep-canary-report")} >= {"ServiceAccount", "Role", "RoleBinding", "ConfigMap"}


def bake_ended(kube: FakeKube, record: dict[str, Any]) -> dict[str, Any]:
    """The canary pod Ready since long ago and its server's report in the ConfigMap; one more pass."""
    kube.store(pod("mep-canary-1"))
    status = reconcile(kube)  # Ready: the bake starts
    kube.patch_merge("v1", "ConfigMap", "ml", "mep-canary-report", {"data": {"mep-canary-1": json.dumps(record)}})
    endpoint = kube.get("kubeforge.io/v1alpha1", "ModelEndpoint", "ml", "mep")
    kube.patch_status("kubeforge.io/v1alpha1", "ModelEndpoint", "ml", "mep",
                      {"canary": {**endpoint["status"]["canary"], "readySince": "2026-01-01T00:00:00Z"}})
    return reconcile(kube)


def test_a_canary_answering_errors_is_removed_with_its_token_and_the_reason_in_status():
    kube = FakeKube(canary_endpoint(bake=60), job("/m/v1", {"accuracy": 0.92}))
    started_canary(kube)
    status = bake_ended(kube, {"requests": 40, "errors": 10, "p95Ms": 12.0})
    blocked = condition(status, "RolloutBlocked")
    assert (blocked["status"], blocked["reason"]) == ("True", "CanaryFailed")
    assert blocked["message"] == ("new model /m/v2 not promoted: canary of revision 2 failed: error rate 0.25 (10 of 40 requests"
                                  " answered 5xx) exceeds maxErrorRate 0.05 during the bake; canary removed")
    assert status["canary"]["traffic"] == {"requests": 40, "errors": 10, "p95Ms": 12.0}
    assert served_env(kube)["KUBEFORGE_MODEL_URI"] == "/m/v1"
    assert not [n for _, _, n in kube.objects if n in ("mep-canary", "mep-canary-report")]


def test_a_canary_with_clean_traffic_is_promoted():
    kube = FakeKube(canary_endpoint(bake=60), job("/m/v1", {"accuracy": 0.92}))
    started_canary(kube)
    status = bake_ended(kube, {"requests": 40, "errors": 0, "p95Ms": 12.0})
    assert status["model"]["revision"] == 2 and served_env(kube)["KUBEFORGE_MODEL_URI"] == "/m/v2"
    assert "40 requests, 0 answered 5xx" in condition(status, "RolloutBlocked")["message"]
    assert status["model"]["canaryTraffic"] == {"requests": 40, "errors": 0, "p95Ms": 12.0}
    assert not [n for _, _, n in kube.objects if n in ("mep-canary", "mep-canary-report")]
