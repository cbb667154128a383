"""Test-suite wide options and what the markers mean at run time.

- Tests under tests/integration, tests/workload and tests/e2e carry the
  marker of their directory even when the file forgets it, so
  `-m "not integration"` reliably means "no cluster".
- `integration`: the `cluster` fixture (tests/integration/conftest.py) skips
  when the cluster's binaries are not built; --require-cluster or
  KUBEFORGE_REQUIRE_CLUSTER=1 (CI) turns that into a failure.
- `gpu`: skipped where no NVIDIA GPU is visible; --require-gpu or
  KUBEFORGE_REQUIRE_GPU=1 (the accelerator machine) makes it a failure.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# One operator for the whole session. Importing the fixture into each module would
# register it once per module: several "session" operators reconciling at once.
pytest_plugins = ["tests.integration.operator_fixture", "tests.s3store"]

TESTS = Path(__file__).resolve().parent
DIRECTORY_MARKERS = ("integration", "workload", "e2e")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubeforge")
    group.addoption("--require-cluster", action="store_true",
                    help="fail (not skip) integration tests when the local cluster cannot start")
    group.addoption("--require-gpu", action="store_true",
                    help="fail (not skip) gpu tests when no NVIDIA GPU is visible")


def pytest_configure(config: pytest.Config) -> None:
    # The cluster fixture reads the env, so the option and the env are one switch.
    if config.getoption("--require-cluster"):
        os.environ["KUBEFORGE_REQUIRE_CLUSTER"] = "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:  # collected from outside tests/
            continue
        if top in DIRECTORY_MARKERS:
            item.add_marker(top)


@functools.cache
def visible_gpus() -> int:
    """NVIDIA GPUs nvidia-smi can see (0 without a driver); no torch import needed."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines())


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") and visible_gpus() == 0:
        reason = "needs an NVIDIA GPU; none visible (nvidia-smi -L)"
        if item.config.getoption("--require-gpu") or os.environ.get("KUBEFORGE_REQUIRE_GPU") == "1":
            pytest.fail(reason + " and a GPU is required here", pytrace=False)
        pytest.skip(reason)
