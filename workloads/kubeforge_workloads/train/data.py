"""Training data: reading CSV / JSONL / Parquet (or the builtin synthetic sentiment set), labels, split, sharded batches."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from .recipe import BUILTIN_PREFIX, DatasetSpec

SENTIMENT_LABELS = ["negative", "positive"]
SENTIMENT_DEFAULT_SIZE = 600
_SUBJECTS = ["The movie", "This film", "The story", "The acting", "The soundtrack", "The ending", "The cast", "This show"]
_POSITIVE = ["wonderful", "brilliant", "delightful", "moving", "superb", "charming", "excellent", "great", "enjoyable"]
_NEGATIVE = ["terrible", "boring", "awful", "dull", "painful", "clumsy", "dreadful", "bad", "tedious"]
_TAILS = ["from start to finish.", "and I would watch it again.", "and the theatre agreed.", "overall.", "in every scene."]
_NEG_TAILS = ["from start to finish.", "and I left early.", "and the theatre agreed.", "overall.", "in every scene."]


@dataclass(frozen=True)
class Examples:
    """Texts with integer labels; `label_names[i]` names label i."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]

    def subset(self, indices: list[int]) -> "Examples":
        return Examples([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.label_names)


def builtin_sentiment(size: int = SENTIMENT_DEFAULT_SIZE, seed: int = 1234) -> Examples:
    """A deterministic synthetic movie-review set: same size and seed, same rows, on every node.

    A third of the rows are negated ("was not dull") so that a bag of words is not enough.
    """
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(size):
        positive, negated = i % 2 == 0, rng.random() < 1 / 3
        words = _POSITIVE if positive != negated else _NEGATIVE
        tails = _TAILS if positive else _NEG_TAILS
        first, second = rng.sample(words, 2)
        verb = "was not" if negated else "was"
        texts.append(f"{rng.choice(_SUBJECTS)} {verb} {first} or {second} {rng.choice(tails)}" if negated
                     else f"{rng.choice(_SUBJECTS)} {verb} {first} and {second} {rng.choice(tails)}")
        labels.append(1 if positive else 0)
    return Examples(texts, labels, list(SENTIMENT_LABELS))


def load_examples(spec: DatasetSpec) -> Examples:
    """Rows from `spec.path` with their text and label columns; string labels are numbered in sorted order."""
    if spec.path.startswith(BUILTIN_PREFIX):
        name, _, query = spec.path[len(BUILTIN_PREFIX):].partition("?")
        if name != "sentiment":
            raise ValueError(f"unknown builtin dataset {spec.path!r}; available: builtin:sentiment")
        size = spec.size or _size_from_query(query) or SENTIMENT_DEFAULT_SIZE
        return builtin_sentiment(size)
    frame = _read_table(Path(spec.path), spec.format)
    for column in (spec.text_column, spec.label_column):
        if column not in frame.columns:
            raise ValueError(f"{spec.path}: no column {column!r}; columns are {list(frame.columns)}")
    frame = frame.dropna(subset=[spec.text_column, spec.label_column])
    texts = [str(t) for t in frame[spec.text_column]]
    labels, names = number_labels(list(frame[spec.label_column]))
    return Examples(texts, labels, names)


def _size_from_query(query: str) -> int | None:
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key == "size":
            return int(value)
    return None


def _read_table(path: Path, fmt: str):
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"dataset {path} does not exist (mount it, or use builtin:sentiment)")
    fmt = fmt if fmt != "auto" else _format_from_suffix(path)
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    if fmt == "parquet":
        return pd.read_parquet(path)
    raise ValueError(f"dataset format {fmt!r} is not supported; use csv, jsonl or parquet")


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    formats = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
    if suffix not in formats:
        raise ValueError(f"{path}: cannot tell the format from {suffix!r}; set recipe.dataset.format")
    return formats[suffix]


def number_labels(raw: list) -> tuple[list[int], list[str]]:
    """Integer labels 0..k-1 keep their numbers; any other labels are numbered in sorted order."""
    if all(isinstance(v, int) or (hasattr(v, "is_integer") and float(v).is_integer()) for v in raw):
        ints = [int(v) for v in raw]
        if ints and min(ints) >= 0:
            return ints, [str(i) for i in range(max(ints) + 1)]
    names = sorted({str(v) for v in raw})
    index = {name: i for i, name in enumerate(names)}
    return [index[str(v)] for v in raw], names


def train_eval_split(examples: Examples, eval_fraction: float, seed: int) -> tuple[Examples, Examples]:
    """A seeded shuffle, then the last `eval_fraction` of rows for evaluation (at least one row each)."""
    order = list(range(len(examples.texts)))
    random.Random(seed).shuffle(order)
    n_eval = min(max(1, round(len(order) * eval_fraction)), len(order) - 1)
    return examples.subset(order[n_eval:]), examples.subset(order[:n_eval])


def epoch_batches(n_rows: int, batch_size: int, rank: int, world_size: int, seed: int, epoch: int) -> list[list[int]]:
    """This rank's batches of row indices for one epoch: the same permutation on every rank, then sharded.

    Deterministic in (seed, epoch), so a resumed run skips exactly the batches it already
    trained on. Every rank gets the same number of full batches: a rank with one batch more
    would wait forever in the gradient all-reduce.
    """
    import torch

    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(n_rows, generator=generator).tolist()
    per_rank = n_rows // world_size // batch_size * batch_size
    mine = order[rank::world_size][:per_rank]
    return [mine[i:i + batch_size] for i in range(0, per_rank, batch_size)]


def eval_shard(n_rows: int, rank: int, world_size: int) -> list[int]:
    """Rows this rank evaluates: every row exactly once across ranks (no padding, so metrics are exact)."""
    return list(range(rank, n_rows, world_size))
