"""Table checks: every planted defect is reported, with evidence and a fix; a clean table passes."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest

from backend import i18n as messages
from backend.data import SAMPLES
from backend.quality import gate as quality
from backend.quality import tables as table_checks
from backend.quality.common import CheckResult, Context, remedy, result
from tests import factories


def learnable_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A classification table whose label follows from the features almost without noise."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows).round(3), rng.normal(size=rows).round(3)
    plan = rng.choice(["basic", "plus", "premium"], rows)
    tenure = rng.integers(1, 72, rows)
    score = x1 + 0.8 * x2 - 0.03 * tenure + (plan == "basic") + rng.normal(0, 0.1, rows)
    label = np.where(score > np.median(score), "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "tenure": tenure, "label": label})


def flip_labels(frame: pd.DataFrame, share: float, seed: int = 1) -> tuple[pd.DataFrame, list[int]]:
    rng = np.random.default_rng(seed)
    rows = sorted(rng.choice(len(frame), int(share * len(frame)), replace=False).tolist())
    flipped = frame.copy()
    flipped.loc[rows, "label"] = np.where(frame.loc[rows, "label"] == "yes", "no", "yes")
    return flipped, rows


def check(
    name: str, frame: pd.DataFrame, target: str | None = "label", task: str | None = "classification"
) -> CheckResult:
    return getattr(table_checks, name)(Context(frame, target, task))


def failing(frame: pd.DataFrame, target: str = "label", task: str = "classification") -> list[str]:
    return [c.id for c in quality.run_checks(frame, target=target, task=task) if not c.passed]


# -- clean data and the shape of the report ---------------------------------------------------------------------
def test_a_clean_learnable_table_passes_every_check() -> None:
    assert failing(learnable_frame()) == []


def test_the_churn_sample_raises_no_blocker() -> None:
    checks = quality.run_checks(factories.churn_frame(rows=2000), target="churn", task="classification")
    assert quality.blockers(checks) == []


def test_checks_run_blockers_first() -> None:
    order = ["blocker", "warning", "info"]
    severities = [c.severity for c in quality.run_checks(learnable_frame(), target="label", task="classification")]
    assert severities == sorted(severities, key=order.index)


def test_a_result_carries_a_remedy_only_when_one_is_given() -> None:
    plain = result("duplicate_rows", "warning", True, "ok")
    fixed = result("duplicate_rows", "warning", False, "fail", remedy=remedy("drop_duplicate_rows"), n=1, share="1%")
    assert (plain.remedy is not None, fixed.remedy.to_dict()) == (False, {"action": "drop_duplicate_rows"})


def planted_frame() -> pd.DataFrame:
    """One table with many defects at once: a leak, an ID, mixed types, an outlier, a nearly constant column,
    a rare class, conflicting labels and duplicates. (Flipped labels have a test of their own: a leaking
    column would explain them.)"""
    frame = learnable_frame()
    rows = len(frame)
    frame.loc[:59, "label"] = "maybe"
    frame["label_code"] = frame["label"].map({"yes": "Y", "no": "N", "maybe": "M"})
    frame["customer_id"] = np.arange(100_000, 100_000 + rows)
    frame["income"] = pd.Series(np.arange(rows) % 97, dtype="str").where(np.arange(rows) % 10 != 0, "n/a")
    frame.loc[7, "x1"] = 250.0
    frame["country"] = np.where(np.arange(rows) == 3, "BE", "NL")
    copies = frame.iloc[[10, 11, 12]]
    clash = frame.iloc[[1000]].assign(label="no" if frame.loc[1000, "label"] == "yes" else "yes")
    return pd.concat([frame, copies, clash], ignore_index=True)


def test_every_planted_defect_is_reported() -> None:
    assert failing(planted_frame()) == [
        "target_leakage",
        "duplicate_rows",
        "conflicting_labels",
        "id_like_columns",
        "mixed_types",
        "class_imbalance",
        "near_constant_columns",
        "numeric_outliers",
    ]


def test_every_result_renders_in_both_languages_and_is_plain_json() -> None:
    checks = quality.run_checks(planted_frame(), target="label", task="classification")
    for c in checks:
        for lang in ("en", "zh"):
            text = messages.render(lang, c.key, **c.params)
            assert text != c.key and "{" not in text
        for part in ("title", "why", "fix"):
            assert f"check.{c.id}.{part}" in messages.EN
    stored = [c.to_dict() for c in checks]
    assert json.loads(json.dumps(stored)) == stored
    assert [CheckResult.from_dict(d) for d in stored] == checks  # a stored report reads back as it was


def test_failing_checks_with_a_clear_fix_offer_it_and_passing_checks_offer_none() -> None:
    frame = planted_frame()
    checks = quality.run_checks(frame, target="label", task="classification")
    offered = {c.id: c.remedy.action for c in checks if c.remedy is not None}
    assert offered == {
        "target_leakage": "drop_columns",
        "duplicate_rows": "drop_duplicate_rows",
        "conflicting_labels": "drop_rows",
        "id_like_columns": "drop_columns",
        "mixed_types": "coerce_numeric",
        "near_constant_columns": "drop_columns",
    }
    assert [c.id for c in checks if c.passed and c.remedy is not None] == []


# -- blockers ------------------------------------------------------------------------------------------------------
def test_a_column_mapping_the_target_one_to_one_is_a_blocking_leak() -> None:
    frame = learnable_frame().assign(label_code=lambda f: f["label"].map({"yes": 1, "no": 0}))
    leak = check("target_leakage", frame)
    assert (leak.severity, leak.passed, leak.evidence["columns"], leak.remedy.to_dict()) == (
        "blocker",
        False,
        ["label_code"],
        {"action": "drop_columns", "params": {"columns": ["label_code"]}},
    )
    assert leak.evidence["scores"]["label_code"] == 1.0


def test_a_rescaled_copy_of_a_regression_target_leaks() -> None:
    frame = factories.price_frame(rows=600).assign(price_eur=lambda f: f["price"] * 0.92)
    leak = check("target_leakage", frame, "price", "regression")
    assert (leak.passed, leak.evidence["columns"], leak.evidence["metric"]) == (False, ["price_eur"], "r2")


def test_a_strong_honest_feature_is_not_a_leak() -> None:
    leak = check("target_leakage", learnable_frame())
    assert (leak.passed, leak.evidence["scores"]["x1"] < table_checks.LEAK_SCORE) == (True, True)


def test_rows_of_a_single_row_class_can_be_dropped() -> None:
    frame = learnable_frame()
    frame.loc[5, "label"] = "maybe"
    rare = check("too_few_classes", frame)
    assert (rare.passed, rare.remedy.to_dict()) == (False, {"action": "drop_rows", "params": {"rows": [5]}})


# -- warnings ------------------------------------------------------------------------------------------------------
def test_duplicate_rows_are_found_and_can_be_dropped() -> None:
    frame = learnable_frame()
    frame = pd.concat([frame, frame.iloc[[4, 9, 9]]], ignore_index=True)
    dup = check("duplicate_rows", frame)
    assert (dup.passed, dup.evidence, dup.remedy.to_dict()) == (
        False,
        {"duplicates": 3, "example_rows": [2000, 2001, 2002]},
        {"action": "drop_duplicate_rows"},
    )


def test_duplicates_are_counted_as_pandas_counts_them_with_missing_values() -> None:
    frame = learnable_frame(rows=400)
    frame.loc[::7, "x1"] = np.nan
    frame.loc[::11, "plan"] = None
    frame.loc[::13, "x2"] = -0.0
    frame = pd.concat([frame, frame.iloc[::9].assign(x2=lambda f: f["x2"].where(f["x2"] != 0, 0.0))])
    assert check("duplicate_rows", frame).evidence["duplicates"] == int(frame.duplicated().sum())


def test_rows_with_equal_features_and_different_labels_conflict() -> None:
    frame = learnable_frame()
    other = {"yes": "no", "no": "yes"}
    clash = frame.iloc[[3, 8]].assign(label=lambda f: f["label"].map(other))
    conflict = check("conflicting_labels", pd.concat([frame, clash], ignore_index=True))
    assert (conflict.passed, conflict.evidence, conflict.remedy.to_dict()) == (
        False,
        {"rows": 4, "groups": 2, "example_rows": [3, 2000, 8, 2001]},
        {"action": "drop_rows", "params": {"rows": [3, 8, 2000, 2001]}},
    )


def test_exact_copies_are_duplicates_not_conflicts() -> None:
    frame = learnable_frame()
    assert check("conflicting_labels", pd.concat([frame, frame.iloc[[3, 8]]], ignore_index=True)).passed is True


def test_equal_features_with_different_numeric_targets_are_noise_not_conflicts() -> None:
    frame = factories.price_frame()
    frame = pd.concat([frame, frame.iloc[[3]].assign(price=lambda f: f["price"] + 100)], ignore_index=True)
    assert check("conflicting_labels", frame, "price", "regression").key == "check.conflicting_labels.na"


def test_a_column_far_better_alone_than_a_model_on_the_others_is_a_leak() -> None:
    """A status recorded after the fact, right 88 times in 100: under the absolute bar, far above the rest."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({f"f{i}": rng.normal(size=2000) for i in range(4)})
    chance = 1 / (1 + np.exp(-(0.4 * frame["f0"] + 0.3 * frame["f1"])))
    frame["label"] = np.where(rng.random(2000) < chance, "yes", "no")
    flipped = np.where(frame["label"] == "yes", "no", "yes")
    frame["status"] = np.where(rng.random(2000) < 0.88, frame["label"], flipped)
    leak = check("target_leakage", frame)
    assert (leak.passed, leak.key, leak.evidence["columns"]) == (False, "check.target_leakage.relative", ["status"])
    compared = leak.evidence["compared"]
    assert compared["alone"] - compared["others"] >= 0.15 and compared["together"] - compared["alone"] < 0.02


def test_one_strong_honest_column_is_not_a_leak() -> None:
    """Churn driven mostly by tenure: alone it beats the other columns by far, but they still add to it."""
    assert check("target_leakage", factories.churn_frame(rows=2000), target="churn").passed


@pytest.mark.parametrize("name", ["breast-cancer", "wine", "telco-churn", "diamonds", "penguins"])
def test_no_sample_table_is_flagged_as_leaking(name: str) -> None:
    """Strong honest columns (a tumour's size, a diamond's carat) score well alone and with the others alike."""
    sample = SAMPLES[name]
    frame = sample.load()
    task = "regression" if sample.task == "regression" else "classification"
    assert check("target_leakage", frame, target=sample.target, task=task).passed


def test_an_integer_sequence_is_an_id_column() -> None:
    frame = learnable_frame().assign(customer_id=lambda f: np.arange(5000, 5000 + len(f)))
    ids = check("id_like_columns", frame)
    assert (ids.passed, ids.evidence["columns"], ids.remedy.to_dict()) == (
        False,
        ["customer_id"],
        {"action": "drop_columns", "params": {"columns": ["customer_id"]}},
    )


def test_an_id_column_is_still_an_id_when_some_whole_rows_are_duplicated() -> None:
    """A customer number in a table where 4% of the rows are copies is 96% distinct: still an identifier."""
    frame = learnable_frame().assign(customer_id=lambda f: np.arange(5000, 5000 + len(f)))
    copies = frame.sample(frac=0.04, random_state=2)
    frame = pd.concat([frame, copies], ignore_index=True)
    assert check("id_like_columns", frame).evidence["columns"] == ["customer_id"]


def test_uuids_and_codes_are_id_columns() -> None:
    frame = learnable_frame()
    rng = np.random.default_rng(3)
    frame["uuid"] = [str(uuid.UUID(int=int(v))) for v in rng.integers(0, 2**62, len(frame))]
    frame["order"] = [f"ORD-{i:06d}" for i in rng.permutation(len(frame))]
    assert check("id_like_columns", frame).evidence["columns"] == ["uuid", "order"]


def test_measurements_dates_and_words_are_not_ids() -> None:
    frame = learnable_frame()
    rows = len(frame)
    frame["weight"] = np.random.default_rng(4).normal(70, 10, rows)
    frame["day"] = (np.datetime64("2020-01-01") + np.arange(rows)).astype(str)
    frame["name"] = [f"person number {i}" for i in range(rows)]
    assert check("id_like_columns", frame).passed is True


def test_numbers_mixed_with_text_are_found_with_examples_of_each() -> None:
    values = np.repeat(["1", "2", "n/a", "3", "unknown", "4", "5", "6"], [90, 70, 40, 40, 20, 20, 10, 10])
    frame = learnable_frame(rows=300).assign(visits=pd.Series(values, dtype="str"))
    mixed = check("mixed_types", frame)
    assert (mixed.passed, mixed.evidence["columns"]["visits"], mixed.evidence["example_rows"]) == (
        False,
        {
            "numbers": 240,
            "other": 60,
            "number_examples": ["1", "2", "3", "4", "5"],
            "other_examples": ["n/a", "unknown"],
        },
        list(range(160, 170)),
    )


def test_categories_with_an_odd_number_are_not_mixed() -> None:
    values = np.where(np.arange(300) == 5, "42", np.array(["S", "M", "L"])[np.arange(300) % 3])
    assert check("mixed_types", learnable_frame(rows=300).assign(size=values)).passed is True


def test_a_rare_class_is_imbalanced() -> None:
    frame = learnable_frame()
    frame.loc[:59, "label"] = "maybe"
    imbalance = check("class_imbalance", frame)
    assert (imbalance.passed, imbalance.severity, imbalance.params["name"]) == (False, "warning", "maybe")
    assert imbalance.evidence["classes"]["maybe"] == 60


def test_many_equal_classes_are_balanced() -> None:
    frame = learnable_frame(rows=2500).assign(label=[f"c{i % 25}" for i in range(2500)])
    assert check("class_imbalance", frame).passed is True


def test_flipped_labels_are_suspected_and_clean_rows_mostly_not() -> None:
    frame, flipped = flip_labels(learnable_frame(), 0.05)
    found = check("label_errors", frame)
    suspects = {s["row"]: s for s in found.evidence["suspects"]}
    caught = set(suspects) & set(flipped)
    assert (found.passed, found.remedy.to_dict()) == (False, {"action": "review_labels"})
    assert len(caught) >= 0.6 * len(flipped)
    assert len(set(suspects) - set(flipped)) <= 0.1 * len(caught)
    original = learnable_frame()["label"]
    assert all(suspects[r]["suggested"] == original[r] for r in caught)


def test_labels_are_not_judged_on_a_small_table() -> None:
    found = check("label_errors", factories.churn_frame(), "churn")
    assert (found.passed, found.key) == (True, "check.label_errors.small")


def _with_a_single_row_class(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[0, "churn"] = "maybe"  # too rare to stratify: both fall back to an unstratified split
    return frame


@pytest.mark.parametrize(
    ("frame", "target", "task"),
    [
        (factories.churn_frame(rows=500), "churn", "classification"),
        (_with_a_single_row_class(factories.churn_frame(rows=500)), "churn", "classification"),
        (factories.price_frame(rows=500), "price", "regression"),
    ],
    ids=["stratified", "unstratified", "regression"],
)
def test_the_drift_check_splits_as_the_trainer_does(frame: pd.DataFrame, target: str, task: str) -> None:
    from models import tabular  # imports TensorFlow: the real split, to compare with
    from models.spec import TabularSpec

    frame = frame.assign(position=np.arange(len(frame)))
    frame.loc[3::17, target] = None
    rest, test = table_checks.trainer_split(frame, target=target, task=task)
    train, val, held_out = tabular.split(frame, target=target, task=task, spec=TabularSpec())
    assert (sorted(rest), test.tolist()) == (sorted(pd.concat([train, val])["position"]), held_out["position"].tolist())


def test_a_test_split_with_different_values_is_drift() -> None:
    frame = learnable_frame()
    _, test = table_checks.trainer_split(frame, target="label", task="classification")
    frame.loc[test, "x2"] += 2.0
    drift = check("split_drift", frame)
    assert (drift.passed, list(drift.evidence["drift_by_column"]), drift.evidence["test_rows"]) == (
        False,
        ["x2"],
        300,
    )


def test_a_category_missing_from_the_test_split_is_drift() -> None:
    frame = learnable_frame()
    _, test = table_checks.trainer_split(frame, target="label", task="classification")
    frame.loc[test, "plan"] = "basic"
    assert check("split_drift", frame).params["names"] == "plan"


# -- notes ---------------------------------------------------------------------------------------------------------
def test_nearly_constant_columns_are_noted_with_their_rare_rows() -> None:
    frame = learnable_frame().assign(country="NL")
    frame.loc[[6, 60], "country"] = "BE"
    near = check("near_constant_columns", frame)
    assert (near.severity, near.evidence, near.remedy.to_dict()) == (
        "info",
        {"columns": {"country": {"value": "NL", "share": 0.999}}, "example_rows": [6, 60]},
        {"action": "drop_columns", "params": {"columns": ["country"]}},
    )


def test_extreme_values_are_counted_per_column_with_bounds() -> None:
    frame = learnable_frame()
    frame.loc[[7, 70], "x1"] = [250.0, -400.0]
    outliers = check("numeric_outliers", frame)
    assert (outliers.passed, outliers.evidence["outliers_by_column"], outliers.evidence["example_rows"]) == (
        False,
        {"x1": 2},
        [7, 70],
    )
    bounds = outliers.evidence["columns"]["x1"]
    assert bounds["lower"] < -3 < 3 < bounds["upper"] and (bounds["min"], bounds["max"]) == (-400.0, 250.0)


def test_a_long_tail_is_not_a_flood_of_outliers() -> None:
    frame = learnable_frame().assign(income=np.random.default_rng(6).lognormal(0, 2, 2000))
    outliers = check("numeric_outliers", frame)
    assert (outliers.passed, outliers.evidence) == (True, {"heavy_tailed": ["income"]})


def test_categories_with_mostly_distinct_values_are_a_warning() -> None:
    frame = learnable_frame().assign(street=[f"street {i % 1500}" for i in range(2000)])
    high = check("high_cardinality", frame)
    assert (high.passed, high.severity, high.evidence["values_by_column"]) == (
        False,
        "warning",
        {"street": 1500},
    )


def test_free_text_is_not_a_high_cardinality_category() -> None:
    words = np.array("the parcel arrived late but the support team was friendly and helpful".split())
    rng = np.random.default_rng(5)
    text = [" ".join(rng.choice(words, 12)) for _ in range(2000)]
    assert check("high_cardinality", learnable_frame().assign(review=text)).passed is True


# -- statistics the checks share ---------------------------------------------------------------------------------
def messy_frame(rows: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Copied rows (gaps and -0.0 included), an id column, text, gaps and a numeric column with ties."""
    rng = np.random.default_rng(seed)
    frame = learnable_frame(rows, seed).assign(
        row=np.arange(rows),
        code=[f"C-{i:05d}" for i in rng.permutation(rows)],
        zero=rng.choice([0.0, -0.0, 1.5, np.nan], rows),
        note=pd.array(rng.choice(["late", "on time", None], rows), dtype="string"),
    )
    copies = rng.choice(rows, 120, replace=False)
    frame.iloc[copies[60:]] = frame.iloc[copies[:60]].to_numpy()
    return frame.astype({"row": "int64", "x1": "float64", "zero": "float64", "note": "string"})


def test_the_shared_duplicate_rows_are_those_pandas_finds() -> None:
    frame = messy_frame()
    assert table_checks._duplicate_rows(frame).tolist() == np.flatnonzero(frame.duplicated()).tolist()


@pytest.mark.parametrize("target", ["label", None])
def test_the_shared_roles_are_those_computed_for_one_check(target: str | None) -> None:
    frame = messy_frame()
    shared = table_checks._feature_roles(Context(frame, "label", "classification"), target)
    assert shared == table_checks._roles(frame, target)
    assert shared["code"] == "id" and shared["row"] == "id"


def test_a_report_that_shares_its_statistics_equals_checks_run_one_by_one() -> None:
    frame = messy_frame()
    together = quality.run_checks(frame, target="label", task="classification")
    alone = [c(Context(frame, "label", "classification")) for c in table_checks.CHECKS]
    assert [c.to_dict() for c in together] == [c.to_dict() for c in alone]


def test_the_drift_statistics_are_scipys() -> None:
    """KS and chi-squared without importing scipy.stats (0.4 s a report): the same statistic and chi-squared
    p-value, a KS p-value within 20% of scipy's exact one, and the same verdict at the check's threshold."""
    from scipy import stats

    rng = np.random.default_rng(0)
    for n, m in [(20, 20), (30, 80), (100, 25), (1000, 300), (5000, 5000), (50_000, 40_000)]:
        for shift in (0.0, 0.1, 0.3, 0.6):
            a, b = rng.normal(0, 1, n).round(2), rng.normal(shift, 1, m).round(2)  # rounded: ties, as in data
            d, p = table_checks._ks_test(a, b)
            expected = stats.ks_2samp(a, b)
            assert d == pytest.approx(expected.statistic, abs=1e-12)
            assert (p < 0.01) == (expected.pvalue < 0.01), (n, m, shift)
            if expected.pvalue > 1e-12:
                assert p == pytest.approx(expected.pvalue, rel=0.2), (n, m, shift)
    for columns in (2, 3, 6):
        table = rng.integers(1, 200, (2, columns))
        assert table_checks._chi2_test(table) == pytest.approx(stats.chi2_contingency(table).pvalue, rel=1e-9)


def test_the_quick_model_predicts_each_fold_from_the_others() -> None:
    frame = learnable_frame(rows=600)
    y = pd.factorize(frame["label"], sort=True)[0]
    folds = table_checks._stratified_folds(y, 0)
    assert sorted(np.bincount(folds)) == [120] * 5
    assert all(abs(np.mean(y[folds == f]) - y.mean()) < 0.01 for f in range(5)), "each class spread evenly"
    columns = ["x1", "x2", "plan", "tenure"]
    proba = table_checks._quick_model(frame, columns, y, folds, 2, trees=40, depth=4, shrinkage=0.2)
    assert proba.shape == (600, 2) and np.allclose(proba.sum(axis=1), 1)
    assert np.mean(proba.argmax(axis=1) == y) > 0.85, "a learnable table is learnt out of fold"


def test_quick_models_training_at_once_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """`modeldeck train --json` runs the gate, whose checks train on two threads: YDF must not print into it."""
    from concurrent.futures import ThreadPoolExecutor

    import ydf

    ydf.verbose(1)  # YDF's default, as a fresh process has it
    frame = learnable_frame(rows=600)
    y = pd.factorize(frame["label"], sort=True)[0]
    folds = table_checks._stratified_folds(y, 0)

    def train(_: int) -> np.ndarray:
        return table_checks._quick_model(frame, ["x1", "x2", "plan"], y, folds, 2, trees=5, depth=3, shrinkage=0.3)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(train, range(8)))
    assert capfd.readouterr().out == ""
