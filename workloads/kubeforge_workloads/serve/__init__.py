"""kubeforge-serve: the inference server every ModelEndpoint pod runs.

Split the way KServe's Python server is split: a model interface with
backends (backends/, model.py), a model repository (repository.py), a
transport-agnostic data plane (dataplane.py), protocol codecs (protocol/),
thin FastAPI routers (routes.py) and one error-to-HTTP map (errors.py).
"""
