"""Strategy Canary judged on the canary's own error rate and p95 latency, as its server reports them through the API
server: a real kubeforge-serve process (the tiny model) plays the kwok canary pod's server, with the token of the
ServiceAccount the operator made for the canary, and merge-patches its traffic into <name>-canary-report. A canary
answering 5xx on a cue word (kubeforge) fails at the bake's end and is removed; a clean one is promoted. `pytest -s` prints the
`kubectl get mep` lines and status.canary at each step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from kubernetes import client, config

from kubeforge import servecontract as sc
from tests.integration.clusterkit import wait_for
from tests.integration.modelendpoint_kit import Kit, condition, endpoint, kit_fixture  # noqa: F401 (the fixture `kit`)
from tests.integration.test_chart_rbac import service_account_kubeconfig
from tests.integration.test_modelendpoint_rollout import REF, run_finished
from tests.workload.serve_fixtures import ServerProcess, build_tiny_model, faulty

pytestmark = pytest.mark.integration

ROLLOUT = {"strategy": "Canary", "canary": {"replicas": 1, "bakeSeconds": 600, "maxErrorRate": 0.05, "maxP95Ms": 5000},
           "promotion": {"thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}]}}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def canary_pod(kit: Kit, revision: int, other_than: str = "") -> str:
    def found() -> str:
        pods = [p for p in kit.core.list_namespaced_pod(kit.namespace, label_selector=f"kubeforge.io/canary-revision={revision}").items
                if p.metadata.deletion_timestamp is None and p.metadata.name != other_than]
        assert pods, f"no canary pod of revision {revision} yet"
        return pods[0].metadata.name
    return wait_for(found, timeout=60, message=f"revision {revision}'s canary pod")


def run_2_canary(kit: Kit) -> str:
    """Run 1 served, run 2 (better) passed the gate: its canary pod's name."""
    kit.create_suspended_job("train")
    kit.create(endpoint("gated", model=REF, replicas=3, rollout=ROLLOUT))
    run_finished(kit, 1, 0.92)
    kit.wait_phase("gated", "Ready", modelUri="/models/train/v1")
    run_finished(kit, 2, 0.95)
    return canary_pod(kit, 2)


def account_dir(kit: Kit, tmp_path: Path) -> Path:
    """What the kubelet mounts into the canary pod: the canary ServiceAccount's token and the cluster's CA."""
    folder = tmp_path / "serviceaccount"
    folder.mkdir(exist_ok=True)
    token = kit.cluster.kubectl("-n", kit.namespace, "create", "token", "gated-canary", "--duration=10m").stdout.strip()
    (folder / "token").write_text(token)
    (folder / "ca.crt").write_bytes(Path(kit.cluster.api.configuration.ssl_ca_cert).read_bytes())
    return folder


def canary_server(kit: Kit, model: Path, pod: str, tmp_path: Path, launcher: tuple[str, ...] | None = None) -> ServerProcess:
    """kubeforge-serve with the env the canary's pod template gives it (and the API server where the pod finds it)."""
    api = urlparse(kit.cluster.api.configuration.host)
    env = {sc.REPORT_CONFIGMAP: "gated-canary-report", sc.POD_NAME: pod, sc.POD_NAMESPACE: kit.namespace, sc.REPORT_EVERY_S: "0.5",
           "KUBERNETES_SERVICE_HOST": api.hostname, "KUBERNETES_SERVICE_PORT": str(api.port)}
    args = ["--service-account-dir", str(account_dir(kit, tmp_path))]
    server = ServerProcess(model, tmp_path / f"{pod}.log", args, env, **({"launcher": launcher} if launcher else {}))
    return server.start().wait_ready()


def send(server: ServerProcess, texts: list[str]) -> list[int]:
    return [httpx.post(server.url + "/predict", json={"texts": [t]}, timeout=30).status_code for t in texts]


def reported(kit: Kit, pod: str, requests: int) -> dict[str, Any]:
    def arrived() -> dict[str, Any]:
        data = kit.core.read_namespaced_config_map("gated-canary-report", kit.namespace).data or {}
        record = json.loads(data.get(pod) or "{}")
        assert record.get("requests") == requests, record
        return record
    return wait_for(arrived, timeout=30, message=f"{pod}'s report of {requests} requests")


def end_bake_and_wait_for_failure(kit: Kit) -> dict[str, Any]:
    """bakeSeconds cut to 1 (the canary has been Ready longer): judged now; v1 keeps serving, CanaryFailed."""
    kit.patch_spec("gated", {"rollout": {"canary": {"bakeSeconds": 1}}})

    def failed() -> dict[str, Any]:
        obj = kit.check_phase("gated", "Ready", modelUri="/models/train/v1")
        assert condition(obj, "RolloutBlocked")["reason"] == "CanaryFailed", condition(obj, "RolloutBlocked")
        return obj
    return wait_for(failed, timeout=60, message="the canary failed")


def show(kit: Kit, step: str) -> None:
    print(f"\n--- {step}\n$ kubectl get mep gated -o wide\n" + kit.kubectl("get", "mep", "gated", "-o", "wide"))
    for field in ("{.status.canary}", "{.status.model}"):
        print(f"$ kubectl get mep gated -o jsonpath='{field}'\n" + kit.kubectl("get", "mep", "gated", "-o", f"jsonpath={field}"))


def test_a_canary_is_judged_on_the_errors_its_server_reports_and_a_clean_one_promoted(kit: Kit, operator, tiny_model, tmp_path):  # noqa: F811
    pod = run_2_canary(kit)
    server = canary_server(kit, tiny_model, pod, tmp_path, faulty("fail", "kubeforge"))
    try:
        codes = send(server, ["a fine day"] * 16 + ["kubeforge test"] * 4)
        assert sorted(set(codes)) == [200, 500], codes
        record = reported(kit, pod, 20)
        assert (record["errors"], record["revision"]) == (4, ""), record  # no header env in this process: revision ""
        # The canary's token may write its report and nothing else.
        path = service_account_kubeconfig(kit.cluster.kubeconfig, (tmp_path / "serviceaccount" / "token").read_text(),
                                          tmp_path / "canary.kubeconfig")
        as_canary = client.CoreV1Api(config.new_client_from_config(config_file=path))
        with pytest.raises(client.ApiException) as refused:
            as_canary.patch_namespaced_pod(pod, kit.namespace, {"metadata": {"labels": {"x": "y"}}})
        assert refused.value.status == 403
        show(kit, "run 2's canary (revision 2) baking, its server reported 20 requests, 4 answered 500")
        operator.restart()  # mid-bake: the bake's end still reads the report
        obj = end_bake_and_wait_for_failure(kit)
    finally:
        server.terminate()
    assert condition(obj, "RolloutBlocked")["message"] == (
        "new model /models/train/v2 not promoted: canary of revision 2 failed: error rate 0.2 (4 of 20 requests answered 5xx)"
        " exceeds maxErrorRate 0.05 during the bake; canary removed")
    assert obj["status"]["canary"]["traffic"]["requests"] == 20
    wait_for(lambda: kit.cluster.kubectl("-n", kit.namespace, "get", "deploy/gated-canary", "sa/gated-canary", "cm/gated-canary-report",
                                         check=False).stdout.strip() == "", timeout=30, message="the canary and its report removed")
    show(kit, "run 2's canary failed on its error rate: removed, v1 serving")

    kit.patch_spec("gated", {"rollout": {"canary": {"bakeSeconds": 600}}})
    run_finished(kit, 3, 0.96)
    pod = canary_pod(kit, 2, other_than=pod)  # run 3's model is revision 2 too: run 2's was never served
    server = canary_server(kit, tiny_model, pod, tmp_path)
    try:
        assert set(send(server, ["a fine day", "terrible food"] * 10)) == {200}
        reported(kit, pod, 20)
        kit.patch_spec("gated", {"rollout": {"canary": {"bakeSeconds": 1}}})
        obj = wait_for(lambda: kit.check_phase("gated", "Ready", modelUri="/models/train/v3"), timeout=60, message="v3 promoted")
    finally:
        server.terminate()
    model = obj["status"]["model"]
    assert (model["revision"], model["canaryTraffic"]["requests"], model["canaryTraffic"]["errors"]) == (2, 20, 0), model
    show(kit, "run 3's canary (revision 2): 20 requests, no 5xx, p95 within 5000 ms: promoted")


def test_a_slow_canary_fails_on_p95_from_a_report_written_as_its_pod_would(kit: Kit, operator, tmp_path):  # noqa: F811
    """kwok runs no server: the test patches the report with the canary ServiceAccount's own token, as the pod would."""
    pod = run_2_canary(kit)
    token = kit.cluster.kubectl("-n", kit.namespace, "create", "token", "gated-canary", "--duration=10m").stdout.strip()
    as_canary = client.CoreV1Api(config.new_client_from_config(
        config_file=service_account_kubeconfig(kit.cluster.kubeconfig, token, tmp_path / "canary.kubeconfig")))
    record = {"requests": 300, "errors": 0, "p95Ms": 7250.5, "revision": "revision=2; uri=/models/train/v2", "at": "2026-12-01T07:00:00Z"}
    as_canary.patch_namespaced_config_map("gated-canary-report", kit.namespace, {"data": {pod: json.dumps(record)}})
    obj = end_bake_and_wait_for_failure(kit)
    assert condition(obj, "RolloutBlocked")["message"] == (
        f"new model /models/train/v2 not promoted: canary of revision 2 failed: p95 latency 7250.5 ms (pod {pod}) exceeds maxP95Ms 5000"
        " during the bake; canary removed")
    show(kit, "run 2's canary reported p95 7250.5 ms: removed")
