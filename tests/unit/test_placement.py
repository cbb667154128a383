"""A gang that can never fit its pool is told apart from one that waits for room, with the numbers."""

from __future__ import annotations

import pytest

from kubeforge.placement import Demand, judge, quantity


def node(name: str, pool: str, gpus: int = 8, cpu: str = "95330m", memory: str = "1174016Mi", taint: str | None = None,
         cordoned: bool = False) -> dict:
    spec: dict = {"unschedulable": cordoned}
    if taint:
        spec["taints"] = [{"key": taint, "value": "present", "effect": "NoSchedule"}]
    return {"metadata": {"name": name, "labels": {"kubeforge.io/pool": pool}}, "spec": spec,
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus), "cpu": cpu, "memory": memory}}}


NODES = [node(f"a100-{i}", "a100") for i in range(4)] + [node(f"h100-{i}", "h100", taint="nvidia.com/gpu") for i in range(2)] + [
    node(f"cpu-{i}", "cpu", gpus=0, cpu="15630m", memory="62Gi") for i in range(3)]
A100 = {"kubeforge.io/pool": "a100"}
GPU_TOLERATION = ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)


def gang(pods: int, gpus: int = 8, selector=A100, tolerations=(), **more: str) -> Demand:
    return Demand(pods, {"nvidia.com/gpu": str(gpus), **more}, selector, tolerations)


@pytest.mark.parametrize(("demand", "reason", "message"), [
    pytest.param(gang(4), "FitsPool", "pool kubeforge.io/pool=a100 can hold all 4 pods when free", id="exactly-full"),
    pytest.param(gang(6), "ExceedsPoolCapacity",
                 "6 pods x 8 nvidia.com/gpu need room for 6; pool kubeforge.io/pool=a100 holds at most 4 (4 nodes, 32 nvidia.com/gpu in all)",
                 id="six-by-eight-on-four-by-eight"),
    pytest.param(gang(1, gpus=16), "ExceedsLargestNode",
                 "each pod asks for 16 nvidia.com/gpu; the largest node in pool kubeforge.io/pool=a100 has 8", id="sixteen-gpus-per-pod"),
    pytest.param(gang(5, gpus=5), "ExceedsPoolCapacity",
                 "5 pods x 5 nvidia.com/gpu need room for 5; pool kubeforge.io/pool=a100 holds at most 4 (4 nodes, 32 nvidia.com/gpu in all)",
                 id="five-gpus-fit-once-per-node"),
    pytest.param(gang(1, gpus=0, cpu="200"), "ExceedsLargestNode",
                 "each pod asks for 200 cpu; the largest node in pool kubeforge.io/pool=a100 has 95.33", id="cpu"),
    pytest.param(gang(2, selector={"kubeforge.io/pool": "h100"}), "NoNodeInPool",
                 "no schedulable node matches pool kubeforge.io/pool=h100", id="taint-not-tolerated"),
    pytest.param(gang(2, selector={"kubeforge.io/pool": "h100"}, tolerations=GPU_TOLERATION), "FitsPool",
                 "pool kubeforge.io/pool=h100 can hold all 2 pods when free", id="taint-tolerated"),
    pytest.param(gang(1, selector={"kubeforge.io/pool": "tpu"}), "NoNodeInPool", "no schedulable node matches pool kubeforge.io/pool=tpu",
                 id="no-such-pool"),
    pytest.param(gang(1, gpus=1, selector={"kubeforge.io/pool": "cpu"}), "ExceedsLargestNode",
                 "each pod asks for 1 nvidia.com/gpu; the largest node in pool kubeforge.io/pool=cpu has 0", id="gpu-on-cpu-pool"),
])
def test_a_gang_against_its_pool(demand, reason, message):
    verdict = judge(demand, NODES)
    assert verdict.reason == reason
    if message:
        assert verdict.message == message
    assert verdict.fits is (reason == "FitsPool")


def test_cordoned_nodes_do_not_count():
    nodes = [node("a100-0", "a100", cordoned=True), node("a100-1", "a100")]
    assert judge(gang(2), nodes).reason == "ExceedsPoolCapacity"


@pytest.mark.parametrize(("text", "value"), [("8", 8), ("95330m", 95.33), ("1Gi", 2**30), ("500M", 5e8), ("bogus", 0)])
def test_quantities(text, value):
    assert quantity(text) == pytest.approx(value)
