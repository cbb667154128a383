"""The chart's RBAC: least privilege in both modes, no wildcards, no secrets; and the check that says so can fail."""

from __future__ import annotations

import pytest

from tests.chart import forbidden_grants, objects, one, rbac_rules, render

CLUSTER_WIDE: dict = {}
NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}


@pytest.mark.parametrize(
    "rule, problem",
    [
        ({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}, "wildcard in apiGroups"),
        ({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, "wildcard in resources"),
        ({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}, "wildcard in resources"),
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}, "wildcard in verbs"),
        ({"nonResourceURLs": ["/metrics/*"], "verbs": ["get"]}, "wildcard in nonResourceURLs"),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, "on secrets"),
        ({"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["list"]}, "on secrets"),
    ],
)
def test_the_grant_check_flags_wildcards_and_secrets(rule, problem):
    assert any(problem in p for p in forbidden_grants([rule]))


def test_the_grant_check_accepts_a_narrow_rule():
    assert forbidden_grants([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]) == []


@pytest.mark.parametrize("values", [CLUSTER_WIDE, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_no_rendered_role_grants_a_wildcard_or_secrets(values):
    for name, rules in rbac_rules(render(values)).items():
        assert forbidden_grants(rules) == [], name


LEADER_ROLE = "kubeforge-leader"


def operator_roles(docs: list) -> list:
    """Roles granting the operator's work, not the leader-election Role."""
    return [r for r in objects(docs, "Role") if r["metadata"]["name"] != LEADER_ROLE]


def test_cluster_wide_mode_binds_one_cluster_role_to_the_operator():
    docs = render(CLUSTER_WIDE)
    assert operator_roles(docs) == [] and [b["metadata"]["name"] for b in objects(docs, "RoleBinding")] == [LEADER_ROLE]
    binding = objects(docs, "ClusterRoleBinding")[0]
    assert binding["roleRef"]["name"] == "kubeforge"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kubeforge", "namespace": "kubeforge-system"}]


def test_namespaced_mode_grants_nothing_cluster_wide():
    docs = render(NAMESPACED)
    assert objects(docs, "ClusterRole") == []
    assert objects(docs, "ClusterRoleBinding") == []
    assert sorted(r["metadata"]["namespace"] for r in operator_roles(docs)) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in objects(docs, "RoleBinding")) == ["kubeforge-system", "team-a", "team-b"]


def test_both_modes_grant_the_same_rules():
    cluster_rules = rbac_rules(render(CLUSTER_WIDE))["ClusterRole//kubeforge"]
    assert all(rules == cluster_rules for name, rules in rbac_rules(render(NAMESPACED)).items()
               if name.startswith("Role/") and not name.endswith(f"/{LEADER_ROLE}"))


def test_the_leader_lease_is_granted_in_the_release_namespace_only_and_by_name():
    role = one([r for r in objects(render(CLUSTER_WIDE), "Role") if r["metadata"]["name"] == LEADER_ROLE], "Role")
    assert role["metadata"]["namespace"] == "kubeforge-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["kubeforge"], "verbs": ["get", "update"]},
    ]


def test_without_leader_election_no_lease_is_granted():
    docs = render({"replicaCount": 1, "leaderElection": {"enabled": False}})
    assert [r for r in objects(docs, "Role") if r["metadata"]["name"] == LEADER_ROLE] == []


def test_the_operator_can_neither_bind_nor_escalate_nor_write_pods():
    """Each job's Role grants only what the operator holds itself (configmaps patch), so no bind/escalate is needed."""
    rules = rbac_rules(render(CLUSTER_WIDE))["ClusterRole//kubeforge"]
    assert not [r for r in rules if {"bind", "escalate", "impersonate"} & set(r["verbs"])]
    pod_verbs = {v for r in rules if "pods" in r["resources"] for v in r["verbs"]}
    assert pod_verbs == {"list", "watch"}


def test_rbac_create_false_renders_no_rbac():
    docs = render({"rbac": {"create": False}})
    assert not [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io")]


def test_every_granted_resource_is_one_the_operator_code_talks_to():
    """A grant for a kind kubeforge/kube.py does not know is a stale grant."""
    from kubeforge.kube import PLURALS

    rules = rbac_rules(render(CLUSTER_WIDE))["ClusterRole//kubeforge"]
    granted = {r.split("/")[0] for rule in rules for r in rule["resources"]}
    assert granted - set(PLURALS.values()) == set()
