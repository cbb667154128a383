"""`python -m kubeforge` and `kubeforge-operator` run the operator (kubeforge.main), without the kubernetes client library."""

import sys


def run() -> None:
    # kopf imports the kubernetes client library wherever it is installed, only to recognise its model
    # classes: ~45 MB of RSS for nothing, as kubeforge.kube talks to the API server through
    # kubeforge.transport. Kept out unless the kubeconfig needs a plugin that only the library runs.
    from kubeforge.transport import Endpoint

    try:
        endpoint = Endpoint.load()
    except (OSError, ValueError, KeyError, TypeError):
        endpoint = None  # no usable credentials (or `--help` with none): the login reports it, not the start
    if endpoint is not None:
        sys.modules.setdefault("kubernetes", None)  # `import kubernetes` now raises ImportError
    from kubeforge.main import main

    main()


if __name__ == "__main__":
    run()
