"""Atomic checkpoint directories: naming, the completeness manifest, finding the newest complete one, retention.

A checkpoint is written into a temporary directory, then a manifest listing every file
with its size and sha256 is written last, then the directory is renamed to `step-NNNNNNNN`. A crash
mid-write leaves only a `.tmp-*` directory; a checkpoint whose files were truncated
afterwards (a full disk, a half-copied volume) fails the size check. Both are ignored
in favour of the previous complete one. The engine-specific files (DeepSpeed's shards,
or a torch state dict) are written by `engines`; this module only owns the frame.
Checkpoints in an object store use the same names and manifest (`checkpoint_store`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from ..objectstore import describe_files

log = logging.getLogger(__name__)

MANIFEST = "kubeforge-checkpoint.json"
_FINAL = re.compile(r"^step-(\d{8})$")
KEEP_LAST = 2


def final_name(step: int) -> str:
    return f"step-{step:08d}"


def is_final_name(name: str) -> bool:
    return bool(_FINAL.match(name))


def temp_name(step: int) -> str:
    return f".tmp-{final_name(step)}"


def write_manifest(directory: Path, state: dict) -> None:
    """Seal a fully written temp checkpoint: the manifest names every file with its size and sha256."""
    files = describe_files(directory, skip=(MANIFEST, MANIFEST + ".partial"))
    body = json.dumps({"state": state, "files": files}, indent=1, sort_keys=True)
    tmp = directory / (MANIFEST + ".partial")
    with open(tmp, "w") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / MANIFEST)


def publish(root: Path, step: int) -> Path:
    """Rename the sealed temp directory to its final name (atomic on one filesystem)."""
    source, target = root / temp_name(step), root / final_name(step)
    if target.exists():
        shutil.rmtree(target)
    os.replace(source, target)
    _fsync_dir(root)
    return target


def read_complete(directory: Path) -> dict | None:
    """The saved state of a complete checkpoint, or None (with the reason logged) when it is not."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        log.warning("ignoring checkpoint %s: no readable manifest (%s)", directory, exc)
        return None
    for rel, entry in manifest.get("files", {}).items():
        size = entry["size"] if isinstance(entry, dict) else entry  # older manifests: the size alone
        path = directory / rel
        if not path.is_file() or path.stat().st_size != size:
            log.warning("ignoring checkpoint %s: %s is missing or truncated", directory, rel)
            return None
    return manifest.get("state", {})


def newest_complete(root: Path) -> tuple[Path, dict] | None:
    """The highest-step complete checkpoint under `root` and its state, or None."""
    if not root.is_dir():
        return None
    candidates = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _FINAL.match(p.name)))
    for _, directory in reversed(candidates):
        state = read_complete(directory)
        if state is not None:
            return directory, state
    return None


def prune(root: Path, keep: int = KEEP_LAST) -> None:
    """Keep the newest `keep` complete checkpoints; drop older ones, broken ones and leftover temp directories."""
    finals = sorted((p for p in root.iterdir() if _FINAL.match(p.name)), reverse=True)
    kept = [p for p in finals if read_complete(p) is not None][:keep]
    doomed = [p for p in finals if p not in kept] + [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    for directory in doomed:
        shutil.rmtree(directory, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry itself reaches the disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
