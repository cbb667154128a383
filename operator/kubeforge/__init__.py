"""kubeforge: a Kubernetes operator for multi-node training and model serving.

Importing this package must stay cheap and torch-free: the trainer and the
server import `kubeforge.contract` and `kubeforge.storage` from it.
"""

__version__ = "0.1.0"
GROUP = "kubeforge.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FIELD_MANAGER = "kubeforge"
