"""Evaluation: every rank predicts its shard of the eval set, rank 0 scores accuracy and macro F1 with scikit-learn."""

from __future__ import annotations

import torch
import torch.distributed as dist

from .data import Examples, eval_shard


@torch.no_grad()
def predict(model, tokenize, examples: Examples, rows: list[int], device: torch.device, batch_size: int) -> list[tuple[int, int, float]]:
    """(row, predicted label, summed loss) for each row in `rows`."""
    model.eval()
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        batch = tokenize([examples.texts[i] for i in chunk], [examples.labels[i] for i in chunk], device)
        result = model(**batch)
        losses = torch.nn.functional.cross_entropy(result.logits.float(), batch["labels"], reduction="none")
        for row, pred, loss in zip(chunk, result.logits.argmax(-1).tolist(), losses.tolist()):
            out.append((row, pred, loss))
    return out


def scores(labels: list[int], predictions: list[int], losses: list[float]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": round(float(accuracy_score(labels, predictions)), 6),
        "f1": round(float(f1_score(labels, predictions, average="macro", zero_division=0)), 6),
        "evalLoss": round(sum(losses) / max(1, len(losses)), 6),
        "evalSamples": len(labels),
    }


def evaluate(model, tokenize, examples: Examples, device: torch.device, batch_size: int) -> dict:
    """Metrics over the whole eval set (all ranks call; every rank gets the same dict)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    mine = predict(model, tokenize, examples, eval_shard(len(examples.texts), rank, world), device, batch_size)
    gathered: list = [None] * world
    dist.all_gather_object(gathered, mine)
    merged = sorted(item for part in gathered for item in part)
    return scores([examples.labels[r] for r, _, _ in merged], [p for _, p, _ in merged], [l for _, _, l in merged])
