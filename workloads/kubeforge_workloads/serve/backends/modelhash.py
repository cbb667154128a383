"""Content hash of an ONNX model (with its external-data file): the cache key for derived artifacts."""

from __future__ import annotations

import hashlib
import os


def onnx_model_hash(onnx_path: str) -> str:
    """sha256 over model.onnx and model.onnx.data when the exporter split the weights out."""
    digest = hashlib.sha256()
    for path in (onnx_path, onnx_path + ".data"):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def cache_dir(configured: str) -> str:
    """Where derived artifacts go: the configured dir, else a per-machine temp dir (model dirs may be read-only)."""
    import tempfile

    path = configured or os.path.join(tempfile.gettempdir(), "kubeforge-serve-cache")
    os.makedirs(path, exist_ok=True)
    return path
