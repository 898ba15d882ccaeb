"""Adding datasets: what is accepted, what is refused with a one-line message, and what is stored."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from backend import config
from backend.data import datasets, storage
from backend.errors import BadInput, NotFound
from tests import factories


def _add(store, data: bytes, filename: str = "upload.csv", **kwargs):
    return datasets.add_dataset(store, paths=config.paths(), data=data, filename=filename, **kwargs)


def _nothing_stored(store, home) -> bool:
    folder = home / "datasets"
    return store.list_datasets() == [] and (not folder.exists() or list(folder.iterdir()) == [])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"'upload.csv' is empty\. Upload a CSV file with a header row"),
        (b"   \n\n", r"'upload.csv' is empty\."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", r"'upload.csv' is not a text file\. Upload a CSV file"),
        (b"a,b,c\n1,2,3\n4,5\n", r"Row 3 of 'upload.csv' has 2 fields but the header has 3\. Fix that row"),
        (b"a,b\n1,2\n3,4,5,6\n", r"Row 3 of 'upload.csv' has 4 fields but the header has 2\."),
        (b"a,b,c\n", r"'upload.csv' has a header but no data rows\."),
    ],
    ids=["empty", "blank", "binary", "short-row", "long-row", "header-only"],
)
def test_bad_files_are_refused_with_one_line_and_nothing_stored(store, home, data, message) -> None:
    with pytest.raises(BadInput, match=message) as caught:
        _add(store, data)
    assert "\n" not in str(caught.value)
    assert _nothing_stored(store, home)


def test_a_missing_target_column_is_refused_naming_the_columns(store, home) -> None:
    with pytest.raises(BadInput, match=r"Target column 'label' not found\. Expected one of: tenure, plan, charges"):
        _add(store, factories.csv_bytes(factories.churn_frame()), target="label")
    assert _nothing_stored(store, home)


def test_an_upload_becomes_a_content_addressed_parquet_version(store, home) -> None:
    frame = factories.churn_frame()
    dataset, version = _add(store, factories.csv_bytes(frame), filename="churn.csv", target="churn")
    stored = pd.read_parquet(home / version.path)
    assert (dataset.name, dataset.kind, version.rows, version.target, version.task) == (
        "churn",
        "tabular",
        240,
        "churn",
        "classification",
    )
    assert version.path == f"datasets/{version.hash}/data.parquet"  # relative: a home can be moved whole
    assert stored["tenure"].tolist() == frame["tenure"].tolist()


def test_uploading_identical_content_again_reuses_the_version(store) -> None:
    data = factories.csv_bytes(factories.churn_frame())
    _, first = _add(store, data, filename="churn.csv")
    _, second = _add(store, data, filename="churn.csv")
    assert first.id == second.id


def test_delimiters_and_a_byte_order_mark_are_detected(store) -> None:
    data = "\ufeffsize;city;price\n10,5;north;100\n20;south;200\n".encode()
    _, version = _add(store, data, filename="semi.csv")
    assert [c["name"] for c in version.columns] == ["size", "city", "price"]


def test_awkward_column_names_are_made_safe_and_unique(store) -> None:
    _, version = _add(store, b"monthly charges,a,a,\n1,2,3,4\n", filename="names.csv")
    assert [c["name"] for c in version.columns] == ["monthly_charges", "a", "a_2", "column_4"]
    assert version.columns[0]["original"] == "monthly charges"


def test_column_kinds_and_the_task_are_inferred(store) -> None:
    _, cls = _add(store, factories.csv_bytes(factories.churn_frame()), filename="c.csv", target="churn")
    _, reg = _add(store, factories.csv_bytes(factories.price_frame()), filename="p.csv", target="price")
    kinds = {c["name"]: c["kind"] for c in cls.columns}
    assert kinds == {"tenure": "numeric", "plan": "categorical", "charges": "numeric", "churn": "boolean"}  # yes/no
    assert (cls.task, reg.task) == ("classification", "regression")


def test_the_task_can_be_changed_after_inference(store) -> None:
    _, version = _add(store, factories.csv_bytes(factories.price_frame()), filename="p.csv", target="price")
    changed = datasets.set_target(store, version=version, target="city", task="auto")
    assert (changed.target, changed.task) == ("city", "classification")
    assert datasets.set_target(store, version=changed, target="price", task="regression").task == "regression"


def test_a_sample_is_read_from_an_installed_package(store) -> None:
    dataset, version = datasets.add_sample(store, paths=config.paths(), sample="wine")
    assert (dataset.name, version.rows, version.target, version.task) == ("wine", 178, "target", "classification")


def test_every_sample_has_a_data_card() -> None:
    from backend.data.samples import SAMPLES

    assert {"breast-cancer", "wine", "telco-churn", "diamonds"} <= set(SAMPLES)
    assert all(
        all(s.text(part, lang) for part in ("title", "source", "licence", "meaning") for lang in ("en", "zh"))
        for s in SAMPLES.values()
    )
    assert "fictional" in SAMPLES["telco-churn"].source


def test_an_unknown_dataset_names_the_known_ones(store) -> None:
    factories.add_frame(store, factories.churn_frame())
    with pytest.raises(NotFound, match=r"No dataset 'nope'\. Known datasets: churn\."):
        datasets.resolve(store, "nope")


def test_a_zip_of_text_folders_becomes_a_text_dataset(store) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(4):
            archive.writestr(f"reviews/positive/{i}.txt", f"Lovely crunchy biscuits, will buy again {i}")
            archive.writestr(f"reviews/negative/{i}.txt", f"Stale and broken on arrival, never again {i}")
    dataset, version = datasets.add_dataset(store, paths=config.paths(), data=buffer.getvalue(), filename="r.zip")
    frame = datasets.load_frame(version)
    assert (dataset.kind, version.target, version.rows) == ("text", "label", 8)
    assert sorted(frame["label"].unique()) == ["negative", "positive"]


# -- profiling and storing fast, with the same results --------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        pd.Series([0.0, -0.0, np.nan, 1.5, np.inf, -np.inf, 1.5, -np.nan]),
        pd.Series([], dtype="float64"),
        pd.Series([np.nan, np.nan]),
        pd.Series([3, 1, 3, -7], dtype="int64"),
        pd.Series([1, None, 1], dtype="Int64"),
        pd.Series(["a", None, "a", "b"], dtype="string"),
        pd.Series([True, False, True]),
    ],
    ids=["floats", "empty", "all-missing", "ints", "nullable-ints", "strings", "flags"],
)
def test_distinct_values_are_counted_as_pandas_counts_them(values: pd.Series) -> None:
    assert datasets._distinct(values) == values.nunique()


def test_the_first_present_values_are_found_without_reading_the_whole_column() -> None:
    col = pd.Series([None] * 5000 + [f"v{i}" for i in range(3000)] + [None, "last"], dtype="string")
    for n in (1, 1000, 4000):
        pd.testing.assert_series_equal(datasets._first_present(col, n), col.dropna().head(n))


@pytest.mark.parametrize(("seed", "kind"), [(0, "date"), (4, "categorical")])
def test_a_long_date_column_is_judged_on_the_sample_date_order_takes(seed: int, kind: str) -> None:
    # About 5% junk, around date_order's bar: the whole column says the opposite of its seeded 5000-value sample.
    rng = np.random.default_rng(seed)
    days = pd.Series(np.datetime64("2020-01-01") + rng.integers(0, 900, 12_000)).astype(str)
    col = days.where(rng.uniform(size=12_000) > 0.05, "n/a").astype("string")
    assert datasets._text_kind(col, int(col.nunique())) == kind


def test_a_version_written_while_it_is_hashed_leaves_nothing_behind_when_either_side_fails(tmp_path) -> None:
    def write(folder):
        (folder / "data.parquet").write_text("x")

    with pytest.raises(ZeroDivisionError), storage.writing(tmp_path, marker="data.parquet", write=write):
        _ = 1 / 0

    def broken(folder):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), storage.writing(tmp_path, marker="data.parquet", write=broken) as p:
        p.publish("abc")
    assert list(tmp_path.iterdir()) == []
    with storage.writing(tmp_path, marker="data.parquet", write=write) as pending:
        assert pending.publish("abc") == tmp_path / "abc"
    assert [p.name for p in tmp_path.iterdir()] == ["abc"]


def test_adding_a_table_imports_no_model_library(tmp_path) -> None:
    csv = tmp_path / "churn.csv"
    factories.churn_frame().to_csv(csv, index=False)
    code = (
        "import sys\n"
        "from backend import cli\n"
        f"assert cli.main(['--home', {str(tmp_path)!r}, 'data', 'add', {str(csv)!r}, '--target', 'churn']) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'sklearn', 'scipy'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=factories.ROOT, capture_output=True, text=True)
    assert (result.returncode, result.stdout.splitlines()[-1:]) == (0, ["[]"]), result.stderr[-2000:]


def test_the_content_hash_sees_every_value_and_not_how_the_texts_are_chunked() -> None:
    import pyarrow as pa

    frame = pd.DataFrame({"n": [1.5, np.nan, 3.0], "t": pd.array(["a", None, "bc"], dtype="string")})
    same = frame.copy()
    chunked = pa.chunked_array([pa.array(["a"]), pa.array([None, "bc"])])  # as pyarrow's parser hands it over
    same["t"] = pd.Series(pd.arrays.ArrowStringArray(chunked), dtype="string")
    assert datasets.content_hash(same) == datasets.content_hash(frame)
    changed = [
        frame.assign(t=pd.array(["a", "", "bc"], dtype="string")),  # empty is not missing
        frame.assign(t=pd.array(["ab", None, "c"], dtype="string")),  # the same characters, cut elsewhere
        frame.assign(n=[1.5, np.nan, 3.5]),
        frame.rename(columns={"n": "m"}),
        frame.iloc[:2],
    ]
    assert len({datasets.content_hash(f) for f in [frame, *changed]}) == len(changed) + 1
