# The kubeforge inference server on ONNX Runtime (CPU): FastAPI, uvicorn, tokenizers. No torch.
# Build from the repository root: docker build -f docker/server.Dockerfile -t ghcr.io/kubeforge/server:0.1.0 .
# PYTHON_IMAGE, the pip cache mount and the `pip-cert` secret: as in operator.Dockerfile.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/kubeforge
COPY pyproject.toml README.md hack/constraints.txt ./src/
COPY operator ./src/operator
COPY workloads ./src/workloads
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    /opt/kubeforge/bin/pip install -c ./src/constraints.txt "./src[serve]"

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/kubeforge /opt/kubeforge
RUN useradd --uid 10001 --gid 0 --no-create-home --shell /usr/sbin/nologin kubeforge
USER 10001:10001
ENV PATH=/opt/kubeforge/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 KUBEFORGE_HOST=0.0.0.0 KUBEFORGE_PORT=8080
EXPOSE 8080
ENTRYPOINT ["kubeforge-serve"]
