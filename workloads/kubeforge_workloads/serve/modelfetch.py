"""The model download step of a server pod: fetch an s3:// model into the pod's emptyDir, verify it against its manifest, report.

Runs as the init container `model-fetch` (the server image, `python -m kubeforge_workloads.serve.modelfetch`)
before kubeforge-serve starts, and the same way on a laptop. It reads the serving contract's env
(KUBEFORGE_MODEL_URI, KUBEFORGE_MODEL_DIR, optional KUBEFORGE_MODEL_DIGEST) and the object-store env.
Its termination message is one JSON line: on success {"modelUri", "digest", "files", "bytes",
"seconds"}; on failure {"reason", "object", "error"} and exit code 1, which the operator shows
as ModelResolved=False reason=DownloadFailed instead of a bare crash loop.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from kubeforge import contract, servecontract as sc

from .. import objectstore as obs

log = logging.getLogger("kubeforge.serve.fetch")
# Written after a verified download: a restarted init container with the same emptyDir skips the transfer.
VERIFIED_MARKER = ".kubeforge-verified-digest"


def fetch_model(uri: str, dest: Path, expect_digest: str | None = None, settings: obs.Settings | None = None) -> dict:
    """Download the model at `uri` into `dest`, every file checked; returns the success report."""
    started = time.monotonic()
    name, prefix = obs.split_uri(uri)
    bucket = obs.open_bucket(name, settings)
    manifest, digest = obs.read_manifest(bucket, prefix, sc.MODEL_FILES_MANIFEST)
    if expect_digest and digest != expect_digest:
        raise obs.ObjectStoreError(obs.DIGEST_MISMATCH, bucket.uri(obs.join_key(prefix, sc.MODEL_FILES_MANIFEST)),
                                   f"manifest is {digest}, the endpoint expects {expect_digest} (the model was replaced?)")
    files = manifest.get("files") or {}
    marker = dest / VERIFIED_MARKER
    if marker.is_file() and marker.read_text() == digest:
        log.info("%s already downloaded and verified (%s)", uri, digest)
        fetched = 0
    else:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True, exist_ok=True)
        fetched = obs.download_tree(bucket, prefix, files, dest)
        marker.write_text(digest)
    report = {"modelUri": uri, "digest": digest, "files": len(files), "bytes": fetched,
              "seconds": round(time.monotonic() - started, 3)}
    log.info("model %s ready in %s: %s", uri, dest, report)
    return report


def failure_report(exc: BaseException, uri: str) -> dict:
    error = obs.failure(exc, uri)
    return {"reason": error.reason, "object": error.uri, "error": error.detail[:2000]}


def write_message(path: str, report: dict) -> None:
    try:
        Path(path).write_text(json.dumps(report, sort_keys=True, separators=(",", ":"))[:contract.TERMINATION_MESSAGE_LIMIT])
    except OSError as exc:
        log.warning("could not write the termination message to %s: %s", path, exc)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = os.environ
    uri, dest = env.get(sc.MODEL_URI, ""), env.get(sc.MODEL_DIR, "")
    message_path = env.get(contract.TERMINATION_LOG, contract.DEFAULT_TERMINATION_LOG)
    if not uri or not dest:
        write_message(message_path, {"reason": obs.FAILED, "object": uri, "error": f"{sc.MODEL_URI} and {sc.MODEL_DIR} must be set"})
        return 1
    try:
        report = fetch_model(uri, Path(dest), env.get(sc.MODEL_DIGEST) or None)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a report the operator can show
        report = failure_report(exc, uri)
        log.error("cannot download the model: %s %s: %s", report["reason"], report["object"], report["error"])
        write_message(message_path, report)
        return 1
    write_message(message_path, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
