"""The cluster's own check (`hack/cluster.sh check`): the integration tests' cluster and namespace fixtures, nothing of kubeforge."""

from tests.integration.conftest import cluster, namespace  # noqa: F401 (the fixtures)
