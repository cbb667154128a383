"""A plain Ray program: four tasks, squared; prints the results, then how many Ray nodes ran them."""

import time

import ray

ray.init()


@ray.remote(num_cpus=1)
def compute(i):
    time.sleep(1.0)  # long enough that the four tasks overlap and the head's one CPU spills to the worker
    return i * i, ray.get_runtime_context().get_node_id()


results = ray.get([compute.remote(i) for i in range(4)])
print([square for square, _ in results])
print("nodes used:", len({node for _, node in results}), "of", len([n for n in ray.nodes() if n["Alive"]]))
