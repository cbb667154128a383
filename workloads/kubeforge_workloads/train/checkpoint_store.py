"""Checkpoints in an object store (s3://): each node uploads its shards, rank 0 commits the manifest, resume takes the newest complete one.

The same frame as the local checkpoints of `checkpoint` (step-NNNNNNNN, the manifest
kubeforge-checkpoint.json written last), with nothing shared between nodes but the store:
every node writes its ranks' shards into its own staging directory and uploads them; rank 0
gathers the file lists (sizes, sha256) and writes the manifest only when every node's
uploads succeeded. A step without a manifest, or whose listed objects are missing or of
another size, is never resumed from; a download whose digest differs is refused too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .. import objectstore as obs
from . import checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointStore:
    """The checkpoints of one job: s3://bucket/prefix/step-NNNNNNNN/..."""

    bucket: obs.Bucket
    prefix: str

    @classmethod
    def from_uri(cls, uri: str, settings: obs.Settings | None = None) -> "CheckpointStore":
        name, prefix = obs.split_uri(uri)
        return cls(obs.open_bucket(name, settings), prefix)

    def key(self, tag: str, rel: str = "") -> str:
        return obs.join_key(self.prefix, tag, rel)

    def uri(self, tag: str) -> str:
        return self.bucket.uri(self.key(tag))

    def upload_shards(self, local: Path, tag: str) -> dict[str, dict]:
        """Upload every file a node wrote under local/ (one step), hashed on the way; returns their manifest entries."""
        return obs.upload_tree(self.bucket, local, self.key(tag), obs.tree_files(local)) if local.is_dir() else {}

    def commit(self, tag: str, state: dict, files: dict[str, dict]) -> str:
        """Write the manifest last: from now on this step is complete. Returns its digest."""
        body = obs.manifest_bytes(files, state=state)
        obs.put_bytes(self.bucket, self.key(tag, checkpoint.MANIFEST), body)
        return obs.digest_of(body)

    def complete(self) -> list[tuple[str, dict]]:
        """(tag, manifest) of every complete checkpoint, newest first, judged from one listing."""
        listing = obs.list_sizes(self.bucket, self.prefix)
        tags = sorted({tag for key in listing if (tag := _tag_of(key, self.prefix))}, reverse=True)
        found = []
        for tag in tags:
            manifest = self._checked_manifest(tag, listing)
            if manifest is not None:
                found.append((tag, manifest))
        return found

    def _checked_manifest(self, tag: str, listing: dict[str, int]) -> dict | None:
        if self.key(tag, checkpoint.MANIFEST) not in listing:
            log.warning("ignoring checkpoint %s: no manifest (an upload that never completed)", self.uri(tag))
            return None
        try:
            manifest, _ = obs.read_manifest(self.bucket, self.key(tag), checkpoint.MANIFEST)
        except obs.ObjectStoreError as exc:
            log.warning("ignoring checkpoint %s: %s", self.uri(tag), exc)
            return None
        for rel, entry in manifest.get("files", {}).items():
            if listing.get(self.key(tag, rel)) != int(entry["size"]):
                log.warning("ignoring checkpoint %s: %s is missing or truncated", self.uri(tag), rel)
                return None
        return manifest

    def download(self, tag: str, manifest: dict, dest: Path) -> Path:
        """Every file of a checkpoint into dest/tag, each checked against the manifest's sha256."""
        target = dest / tag
        obs.download_tree(self.bucket, self.key(tag), manifest["files"], target)
        return target

    def prune(self, keep: int = checkpoint.KEEP_LAST) -> None:
        """Keep the newest `keep` complete checkpoints; delete older ones and incomplete uploads."""
        listing = obs.list_sizes(self.bucket, self.prefix)
        kept = {tag for tag, _ in self.complete()[:keep]}
        doomed = [key for key in listing if (tag := _tag_of(key, self.prefix)) and tag not in kept]
        if doomed:
            obs.delete_keys(self.bucket, doomed)


def _tag_of(key: str, prefix: str) -> str | None:
    rest = key[len(prefix):].lstrip("/") if prefix else key
    tag = rest.split("/", 1)[0]
    return tag if checkpoint.is_final_name(tag) else None


def merge_shard_lists(per_node: list[dict[str, dict]]) -> dict[str, dict]:
    """One file list from every node's; two nodes claiming one name with different content is an error."""
    merged: dict[str, dict] = {}
    for files in per_node:
        for rel, entry in (files or {}).items():
            if rel in merged and merged[rel] != entry:
                raise RuntimeError(f"two nodes wrote different {rel} for the same checkpoint")
            merged[rel] = entry
    return merged
