"""Model and checkpoint locations: how a URI maps to a volume and a path inside the pod.

Shared by the TrainingJob builders (where the trainer writes), the ModelEndpoint
builders (what the server mounts) and the workloads (which only see local paths).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

# Every PVC a kubeforge pod mounts lands under this root, named after the claim.
PVC_MOUNT_ROOT = "/mnt/kubeforge"


class UnsupportedURI(ValueError):
    """A URI kubeforge cannot serve or write (yet); the message says why."""


@dataclass(frozen=True)
class Location:
    """Where a URI lives: a PVC (claim + sub path) or a plain path in the image / on the host."""

    uri: str
    claim: str | None
    subpath: str

    @property
    def local_path(self) -> str:
        """The path a pod (or a local run) reads and writes."""
        if self.claim:
            return f"{PVC_MOUNT_ROOT}/{self.claim}/{self.subpath}".rstrip("/")
        return self.subpath

    @property
    def volume_name(self) -> str | None:
        return f"pvc-{self.claim}" if self.claim else None


def parse_uri(uri: str) -> Location:
    """pvc://claim/sub/path, file:///abs/path or /abs/path; s3:// and others are refused clearly."""
    if not uri:
        raise UnsupportedURI("empty URI")
    parsed = urlparse(uri)
    if parsed.scheme == "pvc":
        if not parsed.netloc:
            raise UnsupportedURI(f"{uri!r}: pvc:// URIs need a claim name, e.g. pvc://models/run-1")
        return Location(uri=uri, claim=parsed.netloc, subpath=parsed.path.lstrip("/"))
    if parsed.scheme == "file":
        return Location(uri=uri, claim=None, subpath=parsed.path)
    if parsed.scheme == "" and uri.startswith("/"):
        return Location(uri=uri, claim=None, subpath=uri)
    if parsed.scheme in {"s3", "gs", "gcs", "az", "http", "https"}:
        raise UnsupportedURI(f"{uri!r}: {parsed.scheme}:// is not supported yet; use pvc://claim/path or an absolute path")
    raise UnsupportedURI(f"{uri!r}: expected pvc://claim/path, file:///path or an absolute path")


def join(uri: str, *parts: str) -> str:
    """Append path parts to a URI, keeping its scheme."""
    tail = "/".join(p.strip("/") for p in parts if p)
    return f"{uri.rstrip('/')}/{tail}" if tail else uri
