# syntax=docker/dockerfile:1.7
# The kubeforge operator: Python, kopf, the kubernetes client, prometheus-client. No torch.
# Build from the repository root: docker build -f docker/operator.Dockerfile -t ghcr.io/kubeforge/operator:0.1.0 .
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/kubeforge
COPY pyproject.toml README.md ./src/
COPY operator ./src/operator
COPY workloads ./src/workloads
# A regular (not editable) install, so the runtime stage needs only the venv.
RUN /opt/kubeforge/bin/pip install "./src[operator]"

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/kubeforge /opt/kubeforge
# The UID the chart's securityContext and kubeforge/podspec.py run as (restricted Pod Security).
RUN useradd --uid 10001 --gid 0 --no-create-home --shell /usr/sbin/nologin kubeforge
USER 10001:10001
ENV PATH=/opt/kubeforge/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8081 8082
ENTRYPOINT ["kubeforge-operator"]
