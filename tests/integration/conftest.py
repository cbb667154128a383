"""Fixtures of the integration tests: the shared local cluster and a fresh
namespace per test. Helpers to import: tests.integration.clusterkit.wait_for
(poll with a deadline) and tests.integration.fakepods (pod manifests, the
fake-lifecycle annotations of hack/kwok/README.md).
"""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.integration.clusterkit import Cluster, namespace_name, start_cluster, wait_for

# Pods of the test namespaces must pass the strictest Pod Security level, as
# the operator's children have to in a hardened cluster.
POD_SECURITY = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
} | {"pod-security.kubernetes.io/enforce-version": "latest"}


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The local cluster (hack/cluster.sh up: started, or reused when running).

    Skips when its binaries are not built, fails instead under
    KUBEFORGE_REQUIRE_CLUSTER=1 (CI).
    """
    return start_cluster()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (restricted Pod Security), deleted after the test."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(cluster.api)
    name = namespace_name(request.node.name)
    core.create_namespace({"metadata": {"name": name, "labels": {"kubeforge.io/test": "true", **POD_SECURITY}}})

    # Pods are refused until the controller-manager has made the namespace's
    # default ServiceAccount (the ServiceAccount admission plugin needs it).
    def default_service_account() -> bool:
        try:
            return bool(core.read_namespaced_service_account("default", name))
        except ApiException as err:
            assert err.status == 404, err
            raise AssertionError("no ServiceAccount default yet") from None

    wait_for(default_service_account, timeout=30, message=f"ServiceAccount default in {name}")
    yield name
    # Not waiting for the namespace to go: its pods end through the kwok
    # stages in the background, and the next test has its own namespace.
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except ApiException as err:
        if err.status != 404:
            raise


# --- operator fixture -------------------------------------------------------
# The `operator` fixture (kubeforge-operator as a subprocess against `cluster`,
# healthy on 127.0.0.1) lives in tests/integration/operator_fixture.py; test
# modules import it from there. Session-wide operator wiring goes here.
# ---------------------------------------------------------------------------
