"""Ray Train: a TorchTrainer with ScalingConfig(num_workers=2) fits a tiny linear model with DDP over gloo.

Each worker records the Ray node it ran on in RESULT_DIR, so the test can see the two
workers on two nodes; the driver prints the final loss.
"""

import os
import tempfile
from pathlib import Path

import ray
import ray.train
import torch
from ray.train import Checkpoint, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer, prepare_model

RESULT_DIR = Path(os.environ["RESULT_DIR"])


def train_loop(config):
    torch.manual_seed(0)
    model = prepare_model(torch.nn.Linear(4, 1))  # DistributedDataParallel across the workers
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    rank = ray.train.get_context().get_world_rank()
    generator = torch.Generator().manual_seed(rank)
    x = torch.randn(64, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True)  # learnable exactly: weights 1, bias 0
    for _ in range(config["steps"]):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    (RESULT_DIR / f"rank-{rank}.node").write_text(ray.get_runtime_context().get_node_id())
    metrics = {"loss": loss.item(), "world_size": ray.train.get_context().get_world_size()}
    with tempfile.TemporaryDirectory() as checkpoint_dir:  # Ray Train keeps metrics with the checkpoint they came with
        if rank == 0:
            torch.save(model.module.state_dict(), os.path.join(checkpoint_dir, "model.pt"))
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(checkpoint_dir) if rank == 0 else None)


trainer = TorchTrainer(
    train_loop,
    train_loop_config={"steps": 60},
    scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
    run_config=RunConfig(name="tiny-linear", storage_path=str(RESULT_DIR / "ray_results")),
)
result = trainer.fit()
weights = torch.load(os.path.join(result.checkpoint.path, "model.pt"))["weight"].flatten().tolist()
print(f"world size {result.metrics['world_size']}, final loss {result.metrics['loss']:.6f}, "
      f"weights {[round(w, 3) for w in weights]}")
