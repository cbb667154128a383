"""The README's quick start, end to end: `hack/demo.sh` (what `make demo` runs) on the local cluster.

Cluster, operator, the sample TrainingJob and ModelEndpoint on the fake GPU pools, a real
DeepSpeed run on this CPU (scaled down), and a prediction from the model it produced.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_namespace(cluster):
    # The demo's own namespace, not a fresh one: the demo deletes what a previous `make demo`
    # left there (its endpoint keeps 5 A100 GPUs), or the sample's 32-GPU job could not schedule.
    name = "kubeforge-demo"
    yield name
    # The demo leaves its objects for the user to explore; the suite must not keep their GPUs.
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")
    cluster.kubectl("delete", "pv", f"{name}-models", "--ignore-not-found", "--wait=false")


def test_the_demo_trains_serves_and_predicts(demo_namespace):
    env = dict(os.environ, KUBEFORGE_DEMO_NAMESPACE=demo_namespace, KUBEFORGE_DEMO_STEPS="40", NO_COLOR="1")
    done = subprocess.run(["bash", "hack/demo.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert re.search(r"sentiment-minilm\s+Succeeded", out), out[-6000:]
    assert re.search(r"sentiment-minilm\s+Ready\s+5/5", out), out[-6000:]
    assert "eval accuracy" in out
    predictions = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"text"')]
    assert [p["label"] for p in predictions] == ["positive", "negative"], out[-3000:]
