"""Copies an image from Docker into the real node's containerd, sending only the layers it lacks.

`docker save | ctr images import` writes every layer of the archive into containerd's ingest area
before containerd can see that the content is already stored: a Docker archive names its layers by
directory and gives their digests only in manifest.json, at its end. After a code change only the
trainer's ~2 MB package layer is new, yet that import rewrote its 6 GB dependency layer each time
(~2 min, and 6 GB of free disk needed for it).

Here the Docker archive streams through once and is rewritten as an OCI archive for `ctr images
import`: the layers are known in advance from `docker image inspect` (RootFS.Layers, the digests of
the uncompressed layer tars, which is how the Docker-archive import stores them), so a layer.tar whose
size equals that of one of those layers already in containerd's namespace is left out, and the rest
are hashed. If the layers found do not add up to RootFS.Layers in order, nothing is imported and the
exit code is 2: the caller then falls back to the plain import.

    python3 import_image.py DOCKER_HOST CONTAINERD_ADDRESS CONTENT_ROOT NAMESPACE IMAGE
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

MIN_SKIPPED = 1 << 20  # smaller layers are cheap to send again, and sizes of tiny tars repeat
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"


def stored_sizes(ctr: list[str], content_root: str, wanted: list[str]) -> dict[int, str]:
    """Size -> digest of this image's layers that containerd already holds in the namespace (unique sizes only)."""
    present = set(subprocess.run([*ctr, "content", "ls", "-q"], check=True, capture_output=True, text=True).stdout.split())
    by_size: dict[int, list[str]] = {}
    for digest in dict.fromkeys(wanted):
        blob = os.path.join(content_root, "blobs", *digest.split(":", 1))
        if digest in present and os.path.exists(blob):
            by_size.setdefault(os.path.getsize(blob), []).append(digest)
    return {size: digests[0] for size, digests in by_size.items() if len(digests) == 1 and size >= MIN_SKIPPED}


def read_archive(save: subprocess.Popen, stored: dict[int, str], spool: str) -> tuple[dict, dict, bytes, list]:
    """One pass over `docker save`: layer dir -> (digest, size, spooled path or None), config bytes, manifest."""
    layers: dict[str, tuple[str, int, str | None]] = {}
    links: dict[str, str] = {}
    configs: dict[str, bytes] = {}
    manifest: list = []
    with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
        for member in archive:
            if member.name.endswith("/layer.tar") and member.issym():
                links[member.name] = os.path.normpath(os.path.join(os.path.dirname(member.name), member.linkname))
            elif member.name.endswith("/layer.tar"):
                if member.size in stored:  # already in containerd: read past it
                    layers[member.name] = (stored[member.size], member.size, None)
                    continue
                digest = hashlib.sha256()
                fd, path = tempfile.mkstemp(dir=spool)
                with os.fdopen(fd, "wb") as out, archive.extractfile(member) as data:
                    while chunk := data.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
                layers[member.name] = (f"sha256:{digest.hexdigest()}", member.size, path)
            elif member.name == "manifest.json":
                manifest = json.load(archive.extractfile(member))
            elif member.isfile() and "/" not in member.name and member.name.endswith(".json"):
                configs[member.name] = archive.extractfile(member).read()
    for name, target in links.items():
        layers[name] = layers[target]
    entry = manifest[0]
    return layers, configs, configs[entry["Config"]], entry["Layers"]


def oci_archive(out, image: str, config: bytes, order: list[tuple[str, int, str | None]]) -> None:
    """An OCI image layout tar: the config, the manifest, the index naming the image, the layers sent."""
    def add(name: str, data: bytes | None = None, path: str | None = None) -> None:
        info = tarfile.TarInfo(name)
        if path is not None:
            info.size = os.path.getsize(path)
            with open(path, "rb") as f:
                tar.addfile(info, f)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    def blob(data: bytes, media_type: str) -> dict:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        add(f"blobs/sha256/{digest.split(':', 1)[1]}", data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    with tarfile.open(fileobj=out, mode="w|") as tar:
        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        sent = set()
        for digest, _, path in order:
            if path is not None and digest not in sent:
                add(f"blobs/sha256/{digest.split(':', 1)[1]}", path=path)
                sent.add(digest)
        manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": blob(config, DOCKER_CONFIG),
                    "layers": [{"mediaType": DOCKER_LAYER, "digest": d, "size": s} for d, s, _ in order]}
        desc = blob(json.dumps(manifest).encode(), DOCKER_MANIFEST)
        desc["annotations"] = {"io.containerd.image.name": image}
        add("index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode())


def main(docker_host: str, address: str, content_root: str, namespace: str, image: str) -> int:
    docker = ["/usr/bin/docker", "-H", docker_host]
    ctr = ["/usr/bin/ctr", "--address", address, "-n", namespace]
    inspect = json.loads(subprocess.run([*docker, "image", "inspect", image], check=True, capture_output=True).stdout)[0]
    wanted = inspect["RootFS"]["Layers"]
    stored = stored_sizes(ctr, content_root, wanted)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(content_root)) as spool:
        save = subprocess.Popen([*docker, "save", image], stdout=subprocess.PIPE)
        layers, _, config, names = read_archive(save, stored, spool)
        if save.wait() != 0:
            raise SystemExit(f"docker save {image} failed")
        order = [layers[name] for name in names]
        if [digest for digest, _, _ in order] != wanted or f"sha256:{hashlib.sha256(config).hexdigest()}" != inspect["Id"]:
            print(f"import_image: the layers of {image} do not match its RootFS; use the plain import", file=sys.stderr)
            return 2
        load = subprocess.Popen([*ctr, "images", "import", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        oci_archive(load.stdin, image, config, order)
        load.stdin.close()
        if load.wait() != 0:
            raise SystemExit(f"ctr images import of {image} failed")
    skipped = sum(size for _, size, path in order if path is None)
    print(f"import_image: {image}: {len(order)} layers, {skipped / 1e9:.2f} GB already in containerd, not sent",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
