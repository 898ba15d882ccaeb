"""Tabular family: preprocessing statistics from the training rows, and a training pipeline that encodes the rows
once when they fit, which changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from models import tabular
from models.spec import TabularSpec
from tests.factories import churn_frame, pipeline_slowdowns


@pytest.fixture(scope="module")
def pieces() -> tuple[dict[str, np.ndarray], np.ndarray, object]:
    frame = churn_frame(rows=300)
    frame.loc[::7, "charges"] = np.nan  # missing values take the fill path too
    columns = [{"name": "tenure", "kind": "numeric"}, {"name": "plan", "kind": "categorical"}]
    columns += [{"name": "charges", "kind": "numeric"}, {"name": "churn", "kind": "categorical"}]
    spec = TabularSpec()
    plan = tabular.make_plan(frame, columns=columns, target="churn", task="classification", spec=spec)
    inputs = tabular.raw_inputs(frame, plan)
    return inputs, tabular.encode_target(frame["churn"], plan), tabular.feature_space(plan, spec, inputs)


def _batches(inputs, y, space, *, shuffle_seed) -> list[tuple[np.ndarray, np.ndarray]]:
    ds = tabular.dataset(inputs, y, space, batch_size=32, shuffle_seed=shuffle_seed)
    return [(x.numpy(), t.numpy()) for x, t in ds]


@pytest.mark.parametrize("shuffle_seed", [None, 3])
def test_encoding_once_gives_the_batches_that_encoding_per_batch_gives(pieces, monkeypatch, shuffle_seed) -> None:
    inputs, y, space = pieces
    once = _batches(inputs, y, space, shuffle_seed=shuffle_seed)
    monkeypatch.setattr(tabular, "ENCODED_BUDGET_BYTES", 0)  # too big to keep: encode per batch in tf.data
    per_batch = _batches(inputs, y, space, shuffle_seed=shuffle_seed)
    assert len(once) == len(per_batch) == 10
    for (x1, t1), (x2, t2) in zip(once, per_batch, strict=True):
        np.testing.assert_allclose(x1, x2, rtol=1e-6)
        np.testing.assert_array_equal(t1, t2)
    if shuffle_seed is not None:
        assert not np.array_equal(np.concatenate([t for _, t in once]), y), "the training rows were not shuffled"


def test_each_epoch_sees_the_rows_in_a_new_order(pieces) -> None:
    inputs, y, space = pieces
    ds = tabular.dataset(inputs, y, space, batch_size=32, shuffle_seed=3)
    first, second = ([x.numpy() for x, _ in ds] for _ in range(2))
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    assert np.allclose(np.sort(np.concatenate(first), axis=0), np.sort(np.concatenate(second), axis=0))


def test_numeric_columns_are_standardised_by_the_training_rows(pieces) -> None:
    inputs, _, space = pieces
    encoded = tabular.encode(inputs, space)
    for name in ("tenure", "charges"):  # each a column of the encoding: mean 0, variance 1 on these rows
        column = inputs[name][:, 0].astype("float64")
        matches = [
            i
            for i in range(encoded.shape[1])
            if np.allclose(encoded[:, i], (column - column.mean()) / column.std(), atol=1e-5)
        ]
        assert len(matches) == 1, name
    assert encoded.shape[1] == 2 + 4  # and the plan column, one-hot: basic, plus, premium and an unknown slot


def test_a_table_without_string_columns_gets_a_feature_space() -> None:
    frame = churn_frame(rows=120).drop(columns=["plan"])
    columns = [{"name": "tenure", "kind": "numeric"}, {"name": "charges", "kind": "numeric"}]
    spec = TabularSpec()
    plan = tabular.make_plan(frame, columns=columns, target="churn", task="classification", spec=spec)
    inputs = tabular.raw_inputs(frame, plan)
    encoded = tabular.encode(inputs, tabular.feature_space(plan, spec, inputs))
    assert encoded.shape == (120, 2)
    np.testing.assert_allclose(encoded.mean(axis=0), 0, atol=1e-5)


@pytest.mark.parametrize("kept", [True, False])
def test_the_pipelines_keep_their_prefetch_under_op_determinism(pieces, monkeypatch, kept) -> None:
    if not kept:
        monkeypatch.setattr(tabular, "ENCODED_BUDGET_BYTES", 0)  # encoded per batch: a lookup in a map, as expected
    inputs, y, space = pieces
    problems = pipeline_slowdowns(tabular.dataset(inputs, y, space, batch_size=32, shuffle_seed=3))
    assert problems == ([] if kept else ["stateful op LookupTableFindV2 in a tf.data function"])
