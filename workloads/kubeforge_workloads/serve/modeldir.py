"""Reading a model directory: the kubeforge layout (servecontract), a plain ONNX dir or a plain Hugging Face dir."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from kubeforge import servecontract as sc

from .errors import ModelLoadError

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
DEFAULT_MAX_SEQ_LENGTH = 512


@dataclass(frozen=True)
class ModelFiles:
    """The artifacts a backend may load, found once at startup."""

    root: str
    layout: str  # kubeforge | onnx | huggingface
    onnx_path: str | None
    hf_dir: str | None
    tokenizer_dir: str
    labels: tuple[str, ...]
    max_seq_length: int


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


def _has_tokenizer(d: str | None) -> bool:
    return bool(d) and any(os.path.isfile(os.path.join(d, n)) for n in TOKENIZER_FILES)


def labels_from_config(config: dict) -> tuple[str, ...]:
    """id2label ordered by id; LABEL_i names when the config has none (HF's own default)."""
    id2label = config.get("id2label") or {}
    if id2label:
        return tuple(str(id2label[k]) for k in sorted(id2label, key=int))
    return tuple(f"LABEL_{i}" for i in range(int(config.get("num_labels", 2))))


def _config_near(*dirs: str | None) -> dict:
    """The first config.json among dirs ({} if none): it carries id2label and the position limit."""
    for d in dirs:
        if d and os.path.isfile(os.path.join(d, "config.json")):
            return _read_json(os.path.join(d, "config.json"))
    return {}


def _seq_limit(config: dict, manifest: dict) -> int:
    declared = manifest.get("maxSeqLength") or config.get("max_position_embeddings") or DEFAULT_MAX_SEQ_LENGTH
    return min(int(declared), DEFAULT_MAX_SEQ_LENGTH)


def _existing(path: str | None, kind) -> str | None:
    return path if path and kind(path) else None


def find_model_files(root: str) -> ModelFiles:
    """Recognise the directory's layout; raise ModelLoadError naming what is missing."""
    if not os.path.isdir(root):
        raise ModelLoadError(f"model directory {root!r} does not exist")
    manifest_path = os.path.join(root, sc.MODEL_MANIFEST)
    if os.path.isfile(manifest_path):
        manifest = _read_json(manifest_path)
        onnx = _existing(os.path.join(root, manifest.get("onnx", "onnx/model.onnx")), os.path.isfile)
        hf = _existing(os.path.join(root, manifest.get("huggingface", "hf")), os.path.isdir)
        layout = "kubeforge"
    elif os.path.isfile(os.path.join(root, "model.onnx")):
        manifest, onnx, hf, layout = {}, os.path.join(root, "model.onnx"), None, "onnx"
    elif os.path.isfile(os.path.join(root, "config.json")):
        manifest, onnx, hf, layout = {}, None, root, "huggingface"
    else:
        raise ModelLoadError(f"{root!r} has neither {sc.MODEL_MANIFEST}, model.onnx nor config.json")
    if not onnx and not hf:
        raise ModelLoadError(f"{root!r}: the manifest names no ONNX model or Hugging Face directory that exists")
    onnx_dir = os.path.dirname(onnx) if onnx else None
    tokenizer_dir = next((d for d in (onnx_dir, hf, root) if _has_tokenizer(d)), None)
    if tokenizer_dir is None:
        raise ModelLoadError(f"{root!r}: no tokenizer files ({', '.join(TOKENIZER_FILES)}) next to the model")
    config = _config_near(hf, onnx_dir, root)
    labels = tuple(manifest.get("labels") or labels_from_config(config))
    return ModelFiles(root, layout, onnx, hf, tokenizer_dir, labels, _seq_limit(config, manifest))
