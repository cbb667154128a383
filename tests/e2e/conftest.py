"""The e2e tests share the integration tests' local cluster (hack/cluster.sh up, or reused)."""

import pytest

from tests.integration.clusterkit import Cluster, start_cluster


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return start_cluster()
