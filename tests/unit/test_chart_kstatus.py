"""What Flux's kstatus makes of a ModelEndpoint's status, as the ModelEndpoint controller builds it.

`kstatus` below follows sigs.k8s.io/cli-utils/pkg/kstatus/status (checkGenericProperties and
checkGeneration): for a custom resource with no type-specific rule, a deletion timestamp means
Terminating, an unobserved generation InProgress, Reconciling=True InProgress, Stalled=True
Failed, anything else Current.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubeforge.modelendpoint.status import Rollout
from tests.unit.status_samples import RESOLVED, TRAINING_FAILED, WAITING, blocked_status, endpoint, endpoint_status_for


def kstatus(obj: dict[str, Any]) -> str:
    if obj["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status") or {}
    generation, observed = obj["metadata"].get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return "InProgress"
    for condition in status.get("conditions") or []:
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return "InProgress"
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return "Failed"
    return "Current"


CASES = {
    "all replicas ready": (endpoint(endpoint_status_for(RESOLVED, Rollout("Complete", 2, 2, 2, 2, True))), "Current"),
    "rolling out": (endpoint(endpoint_status_for(RESOLVED, Rollout("Rolling", 2, 2, 1, 1))), "InProgress"),
    "waiting for its training job": (endpoint(endpoint_status_for(WAITING, Rollout("Missing", 2))), "InProgress"),
    "training job failed": (endpoint(endpoint_status_for(TRAINING_FAILED, Rollout("Missing", 2))), "Failed"),
    "rollout past its deadline": (endpoint(endpoint_status_for(RESOLVED, Rollout("Stalled", 2, 2, 2, 0))), "Failed"),
    "a new model blocked by the promotion gate": (endpoint(blocked_status()), "Failed"),
    "spec changed since the last status": (
        endpoint(endpoint_status_for(RESOLVED, Rollout("Complete", 2, 2, 2, 2, True)), generation=2),
        "InProgress",
    ),
}


@pytest.mark.parametrize("obj, expected", CASES.values(), ids=CASES.keys())
def test_flux_reads_a_model_endpoint_status_as_expected(obj, expected):
    assert kstatus(obj) == expected
