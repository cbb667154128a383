"""Ray Data: read a CSV, map_batches over it, and print what came out."""

import os

import ray

ds = ray.data.read_csv(os.environ["CSV_PATH"])


def add_features(batch):
    batch["total"] = batch["price"] * batch["quantity"]
    return batch


out = ds.map_batches(add_features, batch_format="pandas")
rows = sorted(out.take_all(), key=lambda row: row["id"])
print("rows", len(rows), "revenue", sum(row["total"] for row in rows))
print("first", {k: rows[0][k] for k in ("id", "price", "quantity", "total")})
