"""The local S3-compatible store (SeaweedFS, hack/s3.sh) as a session fixture, and a fresh key prefix per test.

`s3` starts the store (or reuses the one running for KUBEFORGE_CLUSTER_NAME) and puts its
endpoint and test keys into os.environ, so processes the tests start reach it as a pod
would. It skips when the `weed` binary is not built; KUBEFORGE_REQUIRE_CLUSTER=1 (CI,
`make test`) turns that into a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "hack" / "s3.sh"
NOT_BUILT_EXIT = 3


@dataclass(frozen=True)
class S3:
    """The running store: what a client needs to reach it."""

    env: dict[str, str]

    @property
    def endpoint(self) -> str:
        return self.env["AWS_ENDPOINT_URL"]

    @property
    def bucket(self) -> str:
        return self.env["KUBEFORGE_S3_BUCKET"]

    @property
    def access_key(self) -> str:
        return self.env["AWS_ACCESS_KEY_ID"]

    @property
    def secret_key(self) -> str:
        return self.env["AWS_SECRET_ACCESS_KEY"]

    def uri(self, *parts: str) -> str:
        return "s3://" + "/".join([self.bucket, *(p.strip("/") for p in parts)])


def parse_env(text: str) -> dict[str, str]:
    return dict(re.findall(r"^export (\w+)=(.*)$", text, flags=re.M))


def start_store() -> S3:
    env = {**os.environ, "KUBEFORGE_NO_BUILD": "1"}
    done = subprocess.run([str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        reason = f"hack/s3.sh up failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}"
        if done.returncode == NOT_BUILT_EXIT and os.environ.get("KUBEFORGE_REQUIRE_CLUSTER") != "1":
            pytest.skip(reason)
        pytest.fail(reason, pytrace=False)
    return S3(parse_env(done.stdout))


@pytest.fixture(scope="session")
def s3() -> S3:
    """The store, started once per session; its settings are exported to this process and its children."""
    store = start_store()
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        os.environ[name] = store.env[name]
    return store


@pytest.fixture
def s3_prefix(s3: S3):
    """A key prefix no other test uses, emptied after the test: the store lives on across sessions
    (~/.cache/kubeforge/s3), and leftovers once filled it until writes failed with 500."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    yield prefix
    from kubeforge_workloads import objectstore as obs

    obs.delete_prefix(obs.open_bucket(s3.bucket), prefix)
