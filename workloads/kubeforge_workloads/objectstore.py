"""S3-compatible object storage for the trainer and the server: the client, the file manifest, committed uploads, verified downloads.

The client is obstore (Rust's object_store behind a small Python API): one 5.6 MB wheel with no
Python dependencies (boto3 + botocore + s3transfer: 17 MB of wheels, 32 MB installed), multipart
uploads and the SigV4 signing done in Rust without the GIL, its own retries with backoff.

A tree of files (a checkpoint, an exported model) is committed in three steps: the old manifest
is deleted, every file is uploaded (hashed as it is read, once), then the manifest (each file's size and sha256) is written
last. A reader that finds no manifest has nothing to read; one that finds it can check every
file it downloads against it. The manifest's own sha256 is the tree's digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlparse

from kubeforge import storage

log = logging.getLogger(__name__)
T = TypeVar("T")

# Object sizes: parts of 16 MiB, 8 at once per file, up to 4 files at once (measured in bench/s3_bench.py).
CHUNK_SIZE = 16 * 1024 * 1024
PART_CONCURRENCY = 8
FILE_CONCURRENCY = 4
READ_BLOCK = 1024 * 1024
ATTEMPTS = 4  # our retries around the library's own (which cover single requests)

# Why a transfer failed; the server's download step reports these, the operator shows them.
MISSING_OBJECT = "MissingObject"
ACCESS_DENIED = "AccessDenied"
UNREACHABLE = "EndpointUnreachable"
DIGEST_MISMATCH = "DigestMismatch"
INCOMPLETE = "ManifestMissing"
FAILED = "TransferFailed"


class ObjectStoreError(Exception):
    """A transfer that failed for good: `reason` is one of the constants above, `uri` the object."""

    def __init__(self, reason: str, uri: str, detail: str):
        super().__init__(f"{reason}: {uri}: {detail}")
        self.reason, self.uri, self.detail = reason, uri, detail


@dataclass(frozen=True)
class Settings:
    """How to reach the store, from the env the operator injects (kubeforge.storage *_ENV)."""

    endpoint: str | None = None
    region: str | None = None
    path_style: bool | None = None
    insecure_skip_verify: bool = False
    ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        path_style = env.get(storage.PATH_STYLE_ENV, "").lower()
        return cls(
            endpoint=env.get(storage.ENDPOINT_ENV) or None,
            region=env.get(storage.REGION_ENV) or env.get("AWS_DEFAULT_REGION") or None,
            path_style={"true": True, "false": False}.get(path_style),
            insecure_skip_verify=env.get(storage.INSECURE_SKIP_VERIFY_ENV, "").lower() == "true",
            ca_file=env.get(storage.CA_FILE_ENV) or None,
        )


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix")."""
    parsed = urlparse(uri)
    if parsed.scheme not in storage.OBJECT_SCHEMES or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    return parsed.netloc, parsed.path.strip("/")


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


@dataclass(frozen=True)
class Bucket:
    """One bucket of the store; keys are full keys inside it."""

    name: str
    store: object

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}"


def open_bucket(name: str, settings: Settings | None = None) -> Bucket:
    """An obstore S3Store for `name`; credentials come from the env (AWS_ACCESS_KEY_ID...) or the pod's identity."""
    from obstore.store import S3Store

    settings = settings or Settings.from_env()
    config: dict = {}
    path_style = settings.path_style if settings.path_style is not None else bool(settings.endpoint)
    if settings.endpoint:
        endpoint = settings.endpoint.rstrip("/")
        if not path_style:  # virtual-hosted style: the bucket is part of the host name
            scheme, _, host = endpoint.partition("://")
            endpoint = f"{scheme}://{name}.{host}"
        config["endpoint"] = endpoint
    config["virtual_hosted_style_request"] = not path_style
    if settings.region:
        config["region"] = settings.region
    client = {"allow_http": bool(settings.endpoint and settings.endpoint.startswith("http://")),
              "connect_timeout": timedelta(seconds=5), "timeout": timedelta(seconds=300)}
    if settings.insecure_skip_verify:
        client["allow_invalid_certificates"] = True
    if settings.ca_file:
        client["root_certificate"] = Path(settings.ca_file).read_text()
    retry = {"max_retries": 5, "retry_timeout": timedelta(seconds=60),
             "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2}}
    return Bucket(name, S3Store(name, config=config, client_options=client, retry_config=retry))


def classify(exc: BaseException) -> str:
    """Map a client error to one of the reasons; the message is kept as the detail."""
    from obstore import exceptions as ox

    if isinstance(exc, ObjectStoreError):
        return exc.reason
    if isinstance(exc, (ox.NotFoundError, FileNotFoundError)):  # obstore raises NotFound as FileNotFoundError
        return MISSING_OBJECT
    if isinstance(exc, (ox.PermissionDeniedError, ox.UnauthenticatedError)):
        return ACCESS_DENIED
    text = str(exc)
    if any(s in text for s in ("403 Forbidden", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied")):
        return ACCESS_DENIED
    if "NoSuchBucket" in text or "404 Not Found" in text:
        return MISSING_OBJECT
    if any(s in text for s in ("error sending request", "Connection refused", "connect", "dns error", "timed out")):
        return UNREACHABLE
    return FAILED


def failure(exc: BaseException, uri: str) -> ObjectStoreError:
    if isinstance(exc, ObjectStoreError):
        return exc
    if "NoSuchBucket" in str(exc):
        return ObjectStoreError(MISSING_OBJECT, uri, f"the bucket does not exist: {_short(str(exc), 300)}")
    return ObjectStoreError(classify(exc), uri, _short(str(exc)))


def _short(text: str, limit: int = 600) -> str:
    # object_store errors append a Rust debug dump of the whole request chain; the first lines carry the cause.
    text = " ".join(text.split("Debug source:")[0].split())
    return text if len(text) <= limit else text[:limit] + "..."


def with_retries(call: Callable[[], T], what: str, attempts: int = ATTEMPTS, sleep: Callable[[float], None] = time.sleep,
                 base_delay: float = 0.5) -> T:
    """Retry a transfer whose failure may pass (unreachable, a 5xx after the client's own retries), with backoff.

    A missing object, a refused key or a bad digest fails at once: trying again changes nothing.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - classified below
            reason = classify(exc)
            if reason in (MISSING_OBJECT, ACCESS_DENIED, DIGEST_MISMATCH, INCOMPLETE) or attempt == attempts:
                raise
            delay = base_delay * 2 ** (attempt - 1) * (1 + random.random() / 4)
            log.warning("%s failed (%s: %s); retry %d/%d in %.1f s", what, reason, _short(str(exc), 200), attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")


# -- the manifest ------------------------------------------------------------------------------

def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(READ_BLOCK * 4):
            digest.update(block)
    return digest.hexdigest()


def describe_files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, dict]:
    """{relative path: {"size", "sha256"}} for every file under root (names in `skip` left out)."""
    paths = [p for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip]
    with ThreadPoolExecutor(FILE_CONCURRENCY) as pool:  # hashlib drops the GIL on big buffers
        digests = list(pool.map(file_digest, paths))
    return {str(p.relative_to(root)): {"size": p.stat().st_size, "sha256": d} for p, d in zip(paths, digests)}


def manifest_bytes(files: dict[str, dict], **extra) -> bytes:
    return json.dumps({**extra, "files": files}, indent=1, sort_keys=True).encode()


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


# -- transfers ---------------------------------------------------------------------------------

def put_file(bucket: Bucket, key: str, path: Path, chunk_size: int = CHUNK_SIZE, concurrency: int = PART_CONCURRENCY) -> dict:
    """Upload one file, hashing it on the way (the file is read once); returns its manifest entry {"size", "sha256"}.

    Larger than one part: a multipart upload fed block by block, `concurrency` parts in flight.
    """
    import obstore

    def attempt() -> dict:
        digest, size = hashlib.sha256(), 0
        if path.stat().st_size <= chunk_size:
            body = path.read_bytes()
            digest.update(body)
            obstore.put(bucket.store, key, body, use_multipart=False)
            return {"size": len(body), "sha256": digest.hexdigest()}

        def blocks():
            nonlocal size
            with open(path, "rb") as handle:
                while block := handle.read(chunk_size):
                    digest.update(block)  # hashlib drops the GIL: parts already read keep uploading
                    size += len(block)
                    yield block

        obstore.put(bucket.store, key, blocks(), chunk_size=chunk_size, max_concurrency=concurrency)
        return {"size": size, "sha256": digest.hexdigest()}

    return with_retries(attempt, f"upload of {bucket.uri(key)}")


def put_bytes(bucket: Bucket, key: str, body: bytes) -> None:
    import obstore

    with_retries(lambda: obstore.put(bucket.store, key, body, use_multipart=False), f"upload of {bucket.uri(key)}")


def get_bytes(bucket: Bucket, key: str) -> bytes:
    import obstore

    try:
        return bytes(with_retries(lambda: obstore.get(bucket.store, key).bytes(), f"download of {bucket.uri(key)}"))
    except Exception as exc:  # noqa: BLE001
        raise failure(exc, bucket.uri(key)) from exc


def delete_keys(bucket: Bucket, keys: list[str]) -> None:
    import obstore

    for start in range(0, len(keys), 1000):
        batch = keys[start:start + 1000]
        with_retries(lambda: obstore.delete(bucket.store, batch), f"delete of {len(batch)} objects")


def list_sizes(bucket: Bucket, prefix: str) -> dict[str, int]:
    """{key: size} of every object under prefix/."""
    import obstore

    def listing() -> dict[str, int]:
        found: dict[str, int] = {}
        # object_store matches prefixes by whole path segments: "a/b" lists a/b/..., never a/bc.
        for batch in obstore.list(bucket.store, prefix=prefix.strip("/") or None, chunk_size=1000):
            found.update({meta["path"]: meta["size"] for meta in batch})
        return found

    try:
        return with_retries(listing, f"listing of {bucket.uri(prefix)}")
    except Exception as exc:  # noqa: BLE001
        raise failure(exc, bucket.uri(prefix)) from exc


def delete_prefix(bucket: Bucket, prefix: str) -> int:
    """Delete every object under prefix/ (whole path segments, as list_sizes); returns how many there were."""
    keys = sorted(list_sizes(bucket, prefix))
    delete_keys(bucket, keys)
    return len(keys)


def tree_files(root: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Every file under root, relative, largest first (the long uploads start first)."""
    paths = [p for p in root.rglob("*") if p.is_file() and p.name not in skip]
    return [str(p.relative_to(root)) for p in sorted(paths, key=lambda p: -p.stat().st_size)]


def upload_tree(bucket: Bucket, root: Path, prefix: str, rels: list[str]) -> dict[str, dict]:
    """Upload files (relative to root) under prefix/, several at a time; returns their manifest entries."""
    def one(rel: str) -> dict:
        try:
            return put_file(bucket, join_key(prefix, rel), root / rel)
        except Exception as exc:  # noqa: BLE001
            raise failure(exc, bucket.uri(join_key(prefix, rel))) from exc

    with ThreadPoolExecutor(FILE_CONCURRENCY) as pool:
        return dict(zip(rels, pool.map(one, rels)))


def commit_tree(bucket: Bucket, root: Path, prefix: str, manifest_name: str, **extra) -> str:
    """The commit protocol (old manifest gone, files, new manifest last); returns the manifest's digest."""
    manifest_key = join_key(prefix, manifest_name)
    delete_keys(bucket, [manifest_key])
    files = upload_tree(bucket, root, prefix, tree_files(root, skip=(manifest_name,)))
    body = manifest_bytes(files, **extra)
    put_bytes(bucket, manifest_key, body)
    return digest_of(body)


def read_manifest(bucket: Bucket, prefix: str, manifest_name: str) -> tuple[dict, str]:
    """(manifest, digest); a missing manifest is an incomplete tree, reported as such."""
    key = join_key(prefix, manifest_name)
    try:
        body = get_bytes(bucket, key)
    except ObjectStoreError as exc:
        if exc.reason == MISSING_OBJECT and not exc.detail.startswith("the bucket does not exist"):
            raise ObjectStoreError(INCOMPLETE, bucket.uri(key), "no manifest: the upload never completed, or nothing is there") from exc
        raise
    try:
        return json.loads(body), digest_of(body)
    except ValueError as exc:
        raise ObjectStoreError(INCOMPLETE, bucket.uri(key), f"unreadable manifest: {exc}") from exc


def download_file(bucket: Bucket, key: str, target: Path, size: int, sha256: str) -> None:
    """Stream one object to `target`, hashing on the way; a size or digest that differs fails."""
    import obstore

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")

    def fetch() -> str:
        digest = hashlib.sha256()
        with open(partial, "wb") as handle:
            for chunk in obstore.get(bucket.store, key).stream(min_chunk_size=READ_BLOCK * 8):
                handle.write(chunk)
                digest.update(chunk)
        return digest.hexdigest()

    try:
        got = with_retries(fetch, f"download of {bucket.uri(key)}")
    except Exception as exc:  # noqa: BLE001
        partial.unlink(missing_ok=True)
        raise failure(exc, bucket.uri(key)) from exc
    got_size = partial.stat().st_size
    if got_size != size or got != sha256:
        partial.unlink(missing_ok=True)
        raise ObjectStoreError(DIGEST_MISMATCH, bucket.uri(key),
                               f"expected {size} bytes sha256:{sha256[:16]}..., got {got_size} bytes sha256:{got[:16]}...")
    os.replace(partial, target)


def download_tree(bucket: Bucket, prefix: str, files: dict[str, dict], dest: Path) -> int:
    """Download every file of a manifest under prefix/ into dest, verified; returns the bytes fetched."""
    def one(rel: str) -> None:
        entry = files[rel]
        download_file(bucket, join_key(prefix, rel), dest / rel, int(entry["size"]), entry["sha256"])

    with ThreadPoolExecutor(FILE_CONCURRENCY) as pool:
        list(pool.map(one, sorted(files, key=lambda r: -int(files[r]["size"]))))
    return sum(int(e["size"]) for e in files.values())
