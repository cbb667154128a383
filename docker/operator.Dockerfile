# The kubeforge operator: Python, kopf, the kubernetes client, prometheus-client. No torch.
# Build from the repository root: docker build -f docker/operator.Dockerfile -t ghcr.io/kubeforge/operator:0.1.0 .
# PYTHON_IMAGE is the standard base; hack/images.sh passes one made from Debian's packages
# (hack/realnode/base-images.sh) where no registry is reachable. No `# syntax=` line: that would
# pull a frontend image; the RUN --mount flags below are in Docker's built-in frontend since 20.10.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/kubeforge
COPY pyproject.toml README.md hack/constraints.txt ./src/
COPY operator ./src/operator
COPY workloads ./src/workloads
# A regular (not editable) install, so the runtime stage needs only the venv. pip's cache is a
# BuildKit cache mount (never a layer); a CA bundle that pip must trust (a TLS-intercepting proxy)
# comes in as the optional build secret `pip-cert` and is never written into the image.
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    /opt/kubeforge/bin/pip install -c ./src/constraints.txt "./src[operator]"

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/kubeforge /opt/kubeforge
# The UID the chart's securityContext and kubeforge/podspec.py run as (restricted Pod Security).
RUN useradd --uid 10001 --gid 0 --no-create-home --shell /usr/sbin/nologin kubeforge
USER 10001:10001
ENV PATH=/opt/kubeforge/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8081 8082
ENTRYPOINT ["kubeforge-operator"]
