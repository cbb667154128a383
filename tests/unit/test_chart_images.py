"""The Dockerfiles, read as text (no Docker engine here): non-root, the right extras, no torch in the operator."""

from __future__ import annotations

import re
import tomllib

import pytest

from kubeforge.podspec import RUN_AS_USER
from tests.chart import REPO

DOCKER = REPO / "docker"
IMAGES = ("operator", "trainer", "server", "server-tensorrt")


def dockerfile(name: str) -> str:
    return (DOCKER / f"{name}.Dockerfile").read_text()


def final_stage(text: str) -> str:
    return text[text.rindex("\nFROM ") :]


@pytest.mark.parametrize("name", IMAGES)
def test_every_image_runs_as_the_uid_the_pod_specs_expect(name):
    users = re.findall(r"^USER (\S+)", final_stage(dockerfile(name)), re.M)
    assert users and users[-1].split(":")[0] == str(RUN_AS_USER)


@pytest.mark.parametrize("name", IMAGES)
def test_every_build_context_holds_only_the_sources(name):
    ignore = (DOCKER / f"{name}.Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[1] == "*" and "!operator/" in ignore and "!workloads/" in ignore


@pytest.mark.parametrize("name, extra", [("operator", "operator"), ("trainer", "train"), ("server", "serve"), ("server-tensorrt", "serve")])
def test_each_image_installs_its_own_extra_only(name, extra):
    # "./src[extra]", or (the trainer, whose dependencies are a layer below the package) the extra's
    # requirements read from pyproject.toml and the package installed with --no-deps.
    text = dockerfile(name)
    installed = set(re.findall(r"src\[(\w+)\]", text)) | set(re.findall(r'\["optional-dependencies"\]\["(\w+)"\]', text))
    assert installed == {extra}


def test_the_operator_extra_and_image_stay_free_of_torch():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not [r for r in extras["operator"] if re.match(r"(torch|deepspeed|transformers|onnxruntime|tensorrt)\b", r)]
    assert "torch" not in dockerfile("operator").lower().replace("no torch", "")


def test_the_trainer_prebuilds_the_deepspeed_shm_op_so_no_compiler_is_needed_at_run_time():
    text = dockerfile("trainer")
    # The pins come from hack/constraints.txt (the versions the tests ran with), passed with -c.
    assert "DS_BUILD_SHM_COMM=1" in text and re.search(r"-c \./src/constraints\.txt deepspeed\b", text)
    assert "deepspeed==0.19.8" in (REPO / "hack/constraints.txt").read_text().splitlines()
    runtime = [line for line in final_stage(text).splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in runtime if re.search(r"\b(gcc|g\+\+|build-essential|clang)\b", line)]


def test_the_tensorrt_server_starts_from_nvidia_tensorrt_image():
    assert re.search(r"ARG TENSORRT_IMAGE=nvcr\.io/nvidia/tensorrt:\d\d\.\d\d-py3", dockerfile("server-tensorrt"))


def test_the_operator_and_its_controllers_import_without_the_train_and_serve_extras():
    """What the slim operator image installs is enough: torch & co. are blocked, the controllers still load."""
    import subprocess
    import sys

    blocked = ["torch", "deepspeed", "transformers", "onnxruntime", "onnx", "tensorrt", "fastapi", "uvicorn", "numpy", "sklearn"]
    script = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('not in the operator image: ' + name)
sys.meta_path.insert(0, Block())
import kopf
from kubeforge import main
from kubeforge.workqueue import WorkQueue
queue = WorkQueue()
main.setup(kopf.OperatorRegistry(), queue)
assert set(queue.reconcilers) == {{"TrainingJob", "ModelEndpoint"}}, queue.reconcilers
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
