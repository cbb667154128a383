# syntax=docker/dockerfile:1.7
# The kubeforge inference server with TensorRT, on NVIDIA's TensorRT image (CUDA, cuDNN, TensorRT,
# its Python bindings). Engines are built from the model's ONNX on first start and cached
# (KUBEFORGE_ENGINE_CACHE_DIR), so mount a volume there to skip the build on restarts.
# Build from the repository root: docker build -f docker/server-tensorrt.Dockerfile -t ghcr.io/kubeforge/server:0.1.0-tensorrt .
ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:25.01-py3
FROM ${TENSORRT_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# A venv that sees the image's system packages, so the preinstalled tensorrt bindings stay in use.
RUN python3 -m venv --system-site-packages /opt/kubeforge
COPY pyproject.toml README.md /tmp/src/
COPY operator /tmp/src/operator
COPY workloads /tmp/src/workloads
# onnxruntime-gpu replaces the CPU wheel (both install the `onnxruntime` package): CUDA EP fallback.
RUN /opt/kubeforge/bin/pip install "/tmp/src[serve]" \
    && /opt/kubeforge/bin/pip uninstall -y onnxruntime \
    && /opt/kubeforge/bin/pip install onnxruntime-gpu \
    && rm -rf /tmp/src \
    && useradd --uid 10001 --gid 0 --create-home --home-dir /home/kubeforge --shell /usr/sbin/nologin kubeforge \
    && mkdir -p /var/cache/kubeforge/engines && chown 10001:0 /var/cache/kubeforge/engines
USER 10001:10001
ENV PATH=/opt/kubeforge/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 KUBEFORGE_HOST=0.0.0.0 KUBEFORGE_PORT=8080 KUBEFORGE_RUNTIME=tensorrt \
    KUBEFORGE_ENGINE_CACHE_DIR=/var/cache/kubeforge/engines
EXPOSE 8080
ENTRYPOINT ["kubeforge-serve"]
