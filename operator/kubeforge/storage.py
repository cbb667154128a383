"""Model and checkpoint locations: how a URI maps to a volume, an object store and a path inside the pod.

Shared by the TrainingJob builders (where the trainer writes), the ModelEndpoint
builders (what the server mounts or downloads) and the workloads. An s3:// location
also has a local path: the staging directory (an emptyDir in pods) where the trainer
writes before it uploads and where the server's download lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

# Every PVC a kubeforge pod mounts lands under this root, named after the claim.
PVC_MOUNT_ROOT = "/mnt/kubeforge"
# Object-store locations are staged under this root (an emptyDir in pods), by bucket and key.
STAGING_ROOT = "/var/lib/kubeforge/staging"
OBJECT_SCHEMES = ("s3",)

# The object-store settings a pod that reads or writes s3:// receives (built from spec.storage by
# kubeforge.podspec.object_storage_env, read by kubeforge_workloads.objectstore). The standard AWS
# names where one exists, so the AWS SDKs in a user's own training command read the same store.
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
REGION_ENV = "AWS_REGION"
ACCESS_KEY_ID_ENV = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY_ENV = "AWS_SECRET_ACCESS_KEY"
SESSION_TOKEN_ENV = "AWS_SESSION_TOKEN"
PATH_STYLE_ENV = "KUBEFORGE_S3_PATH_STYLE"  # "true" | "false"; unset: path style with an endpoint, virtual hosts without
INSECURE_SKIP_VERIFY_ENV = "KUBEFORGE_S3_INSECURE_SKIP_VERIFY"  # "true" accepts any TLS certificate
CA_FILE_ENV = "KUBEFORGE_S3_CA_FILE"  # PEM bundle trusted in addition to the system roots


class UnsupportedURI(ValueError):
    """A URI kubeforge cannot serve or write (yet); the message says why."""


@dataclass(frozen=True)
class Location:
    """Where a URI lives: a PVC (claim + sub path) or a plain path in the image / on the host."""

    uri: str
    claim: str | None
    subpath: str
    bucket: str | None = None  # set for s3://bucket/key; subpath is then the key prefix

    @property
    def is_object_store(self) -> bool:
        return self.bucket is not None

    @property
    def local_path(self) -> str:
        """The path a pod (or a local run) reads and writes; for s3:// the staging copy."""
        if self.claim:
            return f"{PVC_MOUNT_ROOT}/{self.claim}/{self.subpath}".rstrip("/")
        if self.bucket:
            return f"{STAGING_ROOT}/{self.bucket}/{self.subpath}".rstrip("/")
        return self.subpath

    @property
    def volume_name(self) -> str | None:
        return f"pvc-{self.claim}" if self.claim else None


def parse_uri(uri: str) -> Location:
    """pvc://claim/sub/path, s3://bucket/prefix, file:///abs/path or /abs/path; others are refused clearly."""
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
    if parsed.scheme in OBJECT_SCHEMES:
        if not parsed.netloc:
            raise UnsupportedURI(f"{uri!r}: s3:// URIs need a bucket name, e.g. s3://models/run-1")
        return Location(uri=uri, claim=None, subpath=parsed.path.strip("/"), bucket=parsed.netloc)
    if parsed.scheme in {"gs", "gcs", "az", "http", "https"}:
        raise UnsupportedURI(
            f"{uri!r}: {parsed.scheme}:// is not supported yet; use s3:// (GCS and others through their S3 API), "
            "pvc://claim/path or an absolute path")
    raise UnsupportedURI(f"{uri!r}: expected pvc://claim/path, s3://bucket/prefix, file:///path or an absolute path")


def is_object_uri(uri: str) -> bool:
    return urlparse(uri).scheme in OBJECT_SCHEMES


def join(uri: str, *parts: str) -> str:
    """Append path parts to a URI, keeping its scheme."""
    tail = "/".join(p.strip("/") for p in parts if p)
    return f"{uri.rstrip('/')}/{tail}" if tail else uri
