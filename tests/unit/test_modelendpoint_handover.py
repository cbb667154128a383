"""Handing the Deployment's replicas to the HPA: who owns spec.replicas, read from managedFields."""

from __future__ import annotations

from kubeforge.modelendpoint import handover


def deployment(*managers: tuple[str, str, dict]) -> dict:
    fields = [{"manager": m, "operation": op, "fieldsV1": {"f:spec": spec}} for m, op, spec in managers]
    return {"metadata": {"name": "mep", "namespace": "ml", "managedFields": fields}, "spec": {"replicas": 4}}


def test_kubeforge_owns_replicas_it_applied():
    assert handover.owns_replicas(deployment(("kubeforge", "Apply", {"f:replicas": {}, "f:template": {}})))


def test_kubeforge_does_not_own_replicas_it_left_out():
    d = deployment(("kubeforge", "Apply", {"f:template": {}}), ("kube-controller-manager", "Update", {"f:replicas": {}}))
    assert not handover.owns_replicas(d)


def test_the_claim_keeps_the_current_value_and_nothing_else():
    claim = handover.claim(deployment())
    assert claim["spec"] == {"replicas": 4}
    assert claim["metadata"] == {"name": "mep", "namespace": "ml"}
