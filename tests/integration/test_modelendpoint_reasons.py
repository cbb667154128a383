"""A ModelEndpoint that cannot serve says why, in its conditions and in `kubectl get mep -o wide`."""

from __future__ import annotations

import pytest

from tests.integration import fakepods
from tests.integration.clusterkit import wait_for
from tests.integration.modelendpoint_kit import Kit, condition, endpoint, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration


def wide(kit: Kit, name: str) -> list[str]:
    out = kit.kubectl("get", "mep", name, "-o", "wide")
    print(out)  # the closing note quotes these lines
    return out.splitlines()[1].split()


def events(kit: Kit, name: str) -> set[str]:
    selector = f"involvedObject.name={name},involvedObject.kind=ModelEndpoint"
    return {e.reason for e in kit.core.list_namespaced_event(kit.namespace, field_selector=selector).items}


def test_a_model_claim_that_does_not_exist_is_not_resolved(kit: Kit):
    kit.create(endpoint("probe", replicas=2, model={"uri": "pvc://models/probe"}))
    waiting = kit.wait_phase("probe", "WaitingForModel", reason="ModelClaimNotFound")
    resolved = condition(waiting, "ModelResolved")
    assert (resolved["status"], resolved["reason"]) == ("False", "ModelClaimNotFound")
    assert resolved["message"] == 'persistentvolumeclaim "models" not found: pvc://models/probe cannot be mounted'
    assert condition(waiting, "Ready")["status"] == "False"
    assert wide(kit, "probe")[1:3] == ["WaitingForModel", "ModelClaimNotFound"]
    assert "ModelClaimNotFound" in events(kit, "probe")
    assert not kit.apps.list_namespaced_deployment(kit.namespace).items, "nothing deployed for a model no pod can mount"

    # The claim appears (GitOps applied it later): the model resolves and the pods roll out.
    kit.core.create_namespaced_persistent_volume_claim(kit.namespace, {
        "metadata": {"name": "models"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": ""}})
    deploying = wait_for(lambda: condition(kit.mep("probe"), "ModelResolved")["status"] == "True" and kit.mep("probe"),
                         timeout=90, message="ModelResolved once the claim exists")
    assert deploying["status"]["modelUri"] == "pvc://models/probe"


def test_crash_looping_server_pods_say_their_exit_and_turn_degraded_past_the_start_deadline(kit: Kit):
    crash = fakepods.fake_waiting("CrashLoopBackOff", "back-off 40s restarting failed container=server", last_exit_code=3,
                                  termination_message="ValueError: model.onnx not found in /models/minilm\nTraceback ...")
    kit.create(endpoint("crashy", replicas=2, podAnnotations=crash, startDeadlineSeconds=8))

    def explained() -> dict:
        obj = kit.mep("crashy")
        assert (obj.get("status") or {}).get("reason") == "CrashLoopBackOff", obj.get("status")
        return obj

    deploying = wait_for(explained, timeout=60, message="the crash loop in status")
    message = condition(deploying, "Ready")["message"]
    assert "exited with code 3: ValueError: model.onnx not found in /models/minilm" in message, message
    assert "Traceback" not in message
    wide(kit, "crashy")

    degraded = kit.wait_phase("crashy", "Degraded", timeout=60)
    ready = condition(degraded, "Ready")
    assert ready["reason"] == "StartDeadlineExceeded" and "server pods not ready for" in ready["message"], ready
    assert "exited with code 3" in ready["message"]
    assert condition(degraded, "Stalled")["status"] == "True"  # Flux kstatus: Failed
    assert wide(kit, "crashy")[1:3] == ["Degraded", "CrashLoopBackOff"]
    assert "StartDeadlineExceeded" in events(kit, "crashy")


def test_a_missing_secret_and_a_failing_readiness_probe_are_named(kit: Kit):
    config = fakepods.fake_waiting("CreateContainerConfigError", 'secret "hf-token" not found')
    kit.create(endpoint("nosecret", replicas=1, podAnnotations=config))
    obj = wait_for(lambda: (kit.mep("nosecret").get("status") or {}).get("reason") == "CreateContainerConfigError" and kit.mep("nosecret"),
                   timeout=60, message="the config error in status")
    assert 'secret "hf-token" not found' in condition(obj, "Ready")["message"]
    wide(kit, "nosecret")

    kit.create(endpoint("unready", replicas=1, podAnnotations={fakepods.READY: "false"}))
    obj = wait_for(lambda: (kit.mep("unready").get("status") or {}).get("reason") == "ReadinessProbeFailing" and kit.mep("unready"),
                   timeout=60, message="the failing readiness probe in status")
    assert "running but not ready (readiness probe failing)" in condition(obj, "Ready")["message"]
    wide(kit, "unready")
