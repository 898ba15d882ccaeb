"""Why a model said what it said, asked of its export's `serving_default`, so every family answers alike.

- `feature_importance`: which columns a table model relies on, over its whole test split. Each column is
  shuffled (seeded, a few times) and the drop in the run's main score is how much the model needed it. It runs
  the export with TensorFlow in a process of its own (callers, the dashboard, need none) and is kept beside the
  run (`runs/<id>/explanations.json`), so it is computed once, on first request.
- `explain_row`, `explain_text`, `explain_image`: one prediction, by occlusion. Each feature is set to its
  typical value, each word dropped, each patch of the image greyed, and the change in the prediction is that
  part's share. The caller runs the model (`predict`: rows in, TensorFlow Serving's predictions out; the
  dashboard passes the inference server's client), with the prediction and all its variants in one request.

The explained score is the probability of the positive class for a two-class table (the second class, as the
thresholds have it), of the predicted class otherwise, or the predicted value for regression.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend import config, data
from backend.errors import BadInput, ModelDeckError
from backend.i18n import Message
from backend.jobs import names
from backend.jobs.runs import exported_model
from db import Run, Store
from models.columns import read_date, write_date
from models.splits import three_way
from models.tasks import reads_text, spec_from_dict

# Rows in, one TensorFlow Serving prediction per row out (`probabilities` and `classes`, or `value`).
Predict = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]

CACHE = "explanations.json"  # beside the run: what was computed once
TABLE_TASKS = ("classification", "regression")
REPEATS = 3  # shuffles per column; their spread is the error bar
MAX_TEST_ROWS = 2000  # a larger test split is sampled (seeded): importance needs ranks, not the fourth decimal
SEED = 0
MAX_PIECES = 60  # a text's words are dropped one at a time, or in this many groups when there are more
IMAGE_GRID = 8  # patches per side of an image
MAX_IMAGE_SIDE = 256  # larger images are shrunk first: the models read 32-224 pixels, requests stay small
GREY = 128
CHILD = (
    "import sys; from backend.jobs import explanations; explanations.main(sys.argv[1:])"  # the process that computes
)


# -- results ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Importance:
    """How much the run's main score drops when one column is shuffled: the mean over repeats, and their spread."""

    column: str  # the model's input name
    label: str  # the column's name as uploaded
    drop: float
    spread: float  # standard deviation over the repeats


@dataclass(frozen=True)
class Importances:
    """Permutation importance of a table run's columns on its test split, the most relied on first."""

    run_id: int
    metric: str  # "roc_auc" (two classes), "accuracy" (more), "r2" (regression): higher is better
    score: float  # the score on the test rows as they are
    rows: int  # test rows used
    repeats: int
    columns: tuple[Importance, ...]
    seconds: float  # how long the computation took

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Importances:
        return cls(**(stored | {"columns": tuple(Importance(**c) for c in stored["columns"])}))


@dataclass(frozen=True)
class Contribution:
    """One feature's push on one prediction: `change` is the prediction minus the one with `reference` instead."""

    column: str
    label: str
    value: Any
    reference: Any  # the typical value: the training median, commonest category, median date, or no text
    change: float  # a probability (0-1) for a classifier, in the target's units for regression


@dataclass(frozen=True)
class RowExplanation:
    """One table prediction, feature by feature, the largest push first (features at their typical value left out)."""

    target: str
    explained: str | None  # the class whose probability is explained; None for regression
    score: float  # that probability, or the predicted value
    typical: float  # the same for a typical case: every feature at its reference value
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True)
class WordEffect:
    """A word (or a run of words, for a long text) and how much dropping it lowers the explained probability."""

    text: str
    change: float


@dataclass(frozen=True)
class TextExplanation:
    """A text's words in order, each with its push towards (positive) or away from (negative) the predicted class."""

    explained: str
    score: float
    words: tuple[WordEffect, ...]
    per_piece: int  # words dropped together: 1 unless the text is longer than MAX_PIECES words

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> TextExplanation:
        return cls(**(stored | {"words": tuple(WordEffect(**w) for w in stored["words"])}))


@dataclass(frozen=True)
class ImageExplanation:
    """How much greying each patch of an image lowers the predicted class's probability, row by row from the top."""

    explained: str
    score: float
    grid: tuple[tuple[float, ...], ...]
    image: bytes  # the PNG explained (shrunk when large): what the map lies over
    width: int
    height: int


# -- what a run's rows and columns are ---------------------------------------------------------------------------
def _table_plan(run: Run) -> dict[str, Any]:
    if run.task not in TABLE_TASKS:
        raise BadInput("explain.error.not_table", run_id=run.id, task=Message.of(f"task.{run.task}"))
    return run.evaluation.get("plan", {})


def _inputs(plan: dict[str, Any]) -> list[str]:
    """The raw columns a table export takes (`models.tabular.Plan.inputs`)."""
    return [*plan["numeric"], *plan["categorical"], *plan["hashed"], *plan.get("dates", {}), *plan.get("texts", {})]


def _version(store: Store, run: Run) -> data.DatasetVersion:
    """The run's dataset version, whose rows are still on disk; a clear error when they are gone."""
    version = store.get_version(run.version_id)
    if version is None or not config.paths().resolve(version.path).exists():
        raise BadInput("explain.error.data_gone", run_id=run.id)
    return version


def _labels(run: Run, version: data.DatasetVersion) -> dict[str, str]:
    """Each column as the run names it, else as uploaded, written as words (model inputs need ASCII-safe names)."""
    return {c["name"]: names.column_name(run, c["name"], c.get("original", c["name"])) for c in version.columns}


def _export(store: Store, run_id: int | str) -> tuple[Run, Path]:
    run, export_dir = exported_model(store, run_id)
    if not (export_dir / "saved_model.pb").is_file():
        raise BadInput("explain.error.export_gone", run_id=run.id, path=str(export_dir))
    return run, export_dir


def split_rows(frame: pd.DataFrame, run: Run) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A table run's train, validation and test rows, exactly as it trained on them.

    The cut of `models.tabular.split` (which imports TensorFlow, so it is repeated here; a test holds the two
    equal): rows with a target, stratified by class for a classifier, `models.splits.three_way` with the spec's
    shares and seed.
    """
    plan = _table_plan(run)
    spec = spec_from_dict(run.spec, task=run.task)
    target = plan["target"]
    frame = frame[frame[target].notna()].reset_index(drop=True)
    strata = frame[target].astype(str) if plan["task"] == "classification" else None
    return three_way(
        frame, test_split=spec.test_split, validation_split=spec.validation_split, seed=spec.seed, by=strata
    )


def _median_date(values: pd.Series, order: str) -> str:
    days = sorted(d for d in (read_date(v, order) for v in values.dropna()) if d)
    return write_date(days[len(days) // 2], order) if days else ""


def reference_row(store: Store, run: Run) -> dict[str, Any]:
    """A typical case of a table run: each input at the training rows' median, commonest category or median date.

    Free text is left empty (no words). These are the values `explain_row` puts in place of a row's own.

    Raises:
        BadInput: the run is not a table model, or its data is gone.
    """
    plan = _table_plan(run)
    train, _, _ = split_rows(data.load_frame(_version(store, run)), run)
    reference: dict[str, Any] = {name: float(plan["fill"][name]) for name in plan["numeric"]}
    for name in plan["categorical"] + plan["hashed"]:
        counts = train[name].dropna().astype(str).value_counts()
        reference[name] = str(counts.index[0]) if len(counts) else ""
    reference |= {name: _median_date(train[name], order) for name, order in plan.get("dates", {}).items()}
    return reference | dict.fromkeys(plan.get("texts", {}), "")


def _explained_score(prediction: dict[str, Any], explained: str | None) -> float:
    if explained is None:
        return float(prediction["value"])
    return float(prediction["probabilities"][[str(c) for c in prediction["classes"]].index(explained)])


def _explained_class(prediction: dict[str, Any], *, positive: bool) -> str:
    """The class explained: the second of two (the positive one) where `positive`, else the predicted one."""
    classes = [str(c) for c in prediction["classes"]]
    if positive and len(classes) == 2:
        return classes[1]
    return classes[int(np.argmax(prediction["probabilities"]))]


# -- one table prediction ------------------------------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def explain_row(
    store: Store, run: Run, row: dict[str, Any], *, predict: Predict, reference: dict[str, Any] | None = None
) -> RowExplanation:
    """Which features pushed one table prediction up or down, and by how much.

    Each feature that differs from the typical case (`reference_row`) is set to its typical value in turn; the
    prediction minus that variant's is the feature's contribution. One `predict` call carries the row, the
    typical case and every variant.

    Args:
        store: where the run's dataset is.
        run: a finished classification or regression run.
        row: input name -> value, as the export takes them.
        predict: runs the run's export on rows (e.g. the inference server's client).
        reference: `reference_row(store, run)`, when the caller keeps it.

    Raises:
        BadInput: the run is not a table model, the row lacks inputs, or the run's data is gone.
    """
    plan = _table_plan(run)
    inputs = _inputs(plan)
    missing = [name for name in inputs if row.get(name) is None]
    if missing:
        raise BadInput("explain.error.missing_values", missing=", ".join(missing))
    reference = reference if reference is not None else reference_row(store, run)
    labels = _labels(run, _version(store, run))
    case = {name: row[name].item() if isinstance(row[name], np.generic) else row[name] for name in inputs}
    changed = [name for name in inputs if not _same(case[name], reference[name])]
    predictions = predict([case, dict(reference)] + [case | {name: reference[name]} for name in changed])
    explained = None if plan["task"] == "regression" else _explained_class(predictions[0], positive=True)
    scores = [_explained_score(p, explained) for p in predictions]
    contributions = [
        Contribution(name, labels.get(name, name), case[name], reference[name], scores[0] - scores[2 + i])
        for i, name in enumerate(changed)
    ]
    contributions.sort(key=lambda c: -abs(c.change))
    return RowExplanation(plan["target"], explained, scores[0], scores[1], tuple(contributions))


# -- one text ------------------------------------------------------------------------------------------------
def explain_text(run: Run, text: str, *, predict: Predict) -> TextExplanation:
    """Which words moved a text classifier's prediction: each word (or run of words) dropped in turn.

    Raises:
        BadInput: the run is not a text classifier, or the text has no words.
    """
    if not reads_text(run.task):
        raise BadInput("explain.error.not_text", run_id=run.id, task=Message.of(f"task.{run.task}"))
    words = str(text).split()
    if not words:
        raise BadInput("explain.error.no_words")
    per_piece = -(-len(words) // MAX_PIECES)
    pieces = [" ".join(words[i : i + per_piece]) for i in range(0, len(words), per_piece)]
    variants = [" ".join(p for j, p in enumerate(pieces) if j != i) for i in range(len(pieces))]
    predictions = predict([{"text": t} for t in [" ".join(words), *variants]])
    explained = _explained_class(predictions[0], positive=False)
    scores = [_explained_score(p, explained) for p in predictions]
    effects = tuple(WordEffect(piece, scores[0] - scores[1 + i]) for i, piece in enumerate(pieces))
    return TextExplanation(explained, scores[0], effects, per_piece)


# -- one image -----------------------------------------------------------------------------------------------
def _png(image: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _b64(png: bytes) -> dict[str, Any]:
    import base64

    return {"image": {"b64": base64.b64encode(png).decode()}}


def explain_image(run: Run, image: bytes, *, predict: Predict, grid: int = IMAGE_GRID) -> ImageExplanation:
    """Which parts of an image the classifier looked at: a grey patch slid over a grid, one variant per cell.

    Raises:
        BadInput: the run is not an image classifier, or the bytes are not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    if run.task != "image-classification":
        raise BadInput("explain.error.not_image", run_id=run.id, task=Message.of(f"task.{run.task}"))
    try:
        picture: Image.Image = Image.open(io.BytesIO(image))
        picture.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadInput("explain.error.not_an_image") from exc
    picture = picture.convert("L" if picture.mode in ("1", "L", "I", "I;16", "F") else "RGB")
    picture.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    width, height = picture.size
    cells = max(1, min(grid, width, height))
    xs, ys = (np.linspace(0, side, cells + 1).round().astype(int) for side in (width, height))
    fill = GREY if picture.mode == "L" else (GREY, GREY, GREY)
    variants = []
    for i in range(cells):
        for j in range(cells):
            covered = picture.copy()
            covered.paste(fill, (int(xs[j]), int(ys[i]), int(xs[j + 1]), int(ys[i + 1])))
            variants.append(_png(covered))
    shown = _png(picture)
    predictions = predict([_b64(png) for png in [shown, *variants]])
    explained = _explained_class(predictions[0], positive=False)
    scores = [_explained_score(p, explained) for p in predictions]
    rows = tuple(tuple(scores[0] - scores[1 + i * cells + j] for j in range(cells)) for i in range(cells))
    return ImageExplanation(explained, scores[0], rows, shown, width, height)


# -- the run's model in this process ----------------------------------------------------------------------------
def local_predict(export_dir: Path) -> Predict:
    """The export's `serving_default` loaded here (imports TensorFlow), answering rows as the inference server does.

    Rows are TensorFlow Serving's instances (an image as `{"b64": ...}`); each prediction is output name -> value,
    strings decoded, arrays as lists.
    """
    import base64

    import tensorflow as tf

    from models.task import call_batched

    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    specs = serve.structured_input_signature[1]

    def raw(value: Any) -> Any:
        return base64.b64decode(value["b64"]) if isinstance(value, dict) else value

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return [plain(v) for v in value]
        return value.decode() if isinstance(value, bytes) else value.item() if hasattr(value, "item") else value

    def predict(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        inputs = {}
        for name, spec in specs.items():
            values = [raw(row[name]) for row in rows]
            dtype = object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
            array = np.array([np.nan if v is None and dtype is not object else v for v in values], dtype=dtype)
            inputs[name] = array.reshape(-1, 1) if spec.shape.rank == 2 else array
        outputs = call_batched(serve, 8192, **inputs)
        return [{name: plain(value[i]) for name, value in outputs.items()} for i in range(len(rows))]

    return predict


# -- computed once, in a process of its own, kept beside the run ---------------------------------------------
def _cache(run: Run) -> Path:
    return config.paths().run_dir(run.id) / CACHE


def _saved(run: Run, kind: str) -> dict[str, Any] | None:
    path = _cache(run)
    return json.loads(path.read_text()).get(kind) if path.is_file() else None


def _write(run: Run, kind: str, value: dict[str, Any]) -> None:
    """Into the run's explanations file, replacing it whole (a reader never sees half)."""
    path = _cache(run)
    stored = json.loads(path.read_text()) if path.is_file() else {}
    partial = path.with_name(f".{CACHE}.{os.getpid()}")
    partial.write_text(json.dumps(stored | {kind: value}, indent=2))
    partial.replace(path)


def _in_child(run: Run, kind: str) -> dict[str, Any]:
    """Compute `kind` for the run in a child process (TensorFlow stays out of the caller); what it kept."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(run.id), kind],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if done.returncode == ModelDeckError.exit_code and done.stdout.strip():
        error = json.loads(done.stdout.strip().splitlines()[-1])
        raise BadInput(error["key"], **error["params"])
    if done.returncode != 0:
        raise RuntimeError(f"Explaining run {run.id} ({kind}) failed:\n{done.stderr[-2000:]}")
    found = _saved(run, kind)
    assert found is not None, "the child process kept it"
    return found


def main(argv: list[str]) -> None:
    """The child process: compute one run's `importance` or `example` and keep it beside the run."""
    from db import open_store

    store = open_store(config.database_url())
    try:
        run, export_dir = _export(store, argv[0])
        if argv[1] == "importance":
            _write(run, "importance", _compute_importance(store, run, export_dir).to_dict())
        else:
            text = run.evaluation["examples"][0]["text"]
            _write(run, "example", asdict(explain_text(run, text, predict=local_predict(export_dir))))
    except ModelDeckError as exc:  # the parent raises it again, in the reader's language
        sys.stdout.write(json.dumps({"key": exc.key, "params": exc.params}, default=str) + "\n")
        sys.exit(exc.exit_code)
    finally:
        store.close()


# -- permutation importance ----------------------------------------------------------------------------------
def saved_importance(run: Run) -> Importances | None:
    """The run's permutation importance, if it was computed before (no computing here)."""
    stored = _saved(run, "importance")
    return Importances.from_dict(stored) if stored else None


def feature_importance(store: Store, run_id: int | str) -> Importances:
    """Permutation importance of a table run's columns on its test split: kept from before, or computed now.

    Each input column is shuffled `REPEATS` times (seeded) across the test rows (at most `MAX_TEST_ROWS`), and the
    drop in the run's main score is averaged: ROC AUC for two classes, accuracy for more, R² for regression.
    The export runs in a child process (TensorFlow stays out of the caller); the result is kept beside the run.

    Raises:
        NotFound: no such run.
        BadInput: the run is not a finished table model, or its export or data is gone.
    """
    run, _ = _export(store, run_id)
    _table_plan(run)
    found = saved_importance(run)
    if found is not None:
        return found
    _version(store, run)  # the data is there, or the user hears so now
    return Importances.from_dict(_in_child(run, "importance"))


def _main_score(plan: dict[str, Any], truth: pd.Series, outputs: dict[str, np.ndarray]) -> tuple[str, float]:
    """The run's main score on rows (higher is better) and its name: ROC AUC, accuracy or R²."""
    from sklearn import metrics

    if plan["task"] == "regression":
        return "r2", float(metrics.r2_score(truth.astype("float64"), outputs["value"].reshape(-1)))
    classes = plan["classes"]
    y = truth.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    if len(classes) == 2 and len(set(y)) == 2:
        return "roc_auc", float(metrics.roc_auc_score(y, outputs["probabilities"][:, 1]))
    return "accuracy", float(np.mean(outputs["probabilities"].argmax(axis=1) == y))


def _compute_importance(store: Store, run: Run, export_dir: Path) -> Importances:
    """Permutation importance with the export loaded here (imports TensorFlow): see `feature_importance`."""
    import tensorflow as tf

    from models import tabular, trees
    from models.task import call_batched

    started = time.perf_counter()
    plan = _table_plan(run)
    version = _version(store, run)
    labels = _labels(run, version)
    _, _, test = split_rows(data.load_frame(version), run)
    if plan["task"] == "classification":
        test = test[test[plan["target"]].astype(str).isin(plan["classes"])]
    if len(test) > MAX_TEST_ROWS:
        test = test.sample(MAX_TEST_ROWS, random_state=SEED)
    test = test.reset_index(drop=True)
    typed = tabular.Plan.from_dict(plan)
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    columns = _inputs(plan)

    # 1. Every shuffled copy of the test rows in one frame: the export runs in a few large batches.
    rng = np.random.default_rng(SEED)
    copies = [test]
    for name in columns:
        for _ in range(REPEATS):
            copies.append(test.assign(**{name: test[name].to_numpy()[rng.permutation(len(test))]}))
    outputs = call_batched(serve, 8192, **trees.export_inputs(pd.concat(copies, ignore_index=True), plan=typed))

    # 2. The score of each copy; a column's importance is the mean drop from the unshuffled score.
    n = len(test)
    scores = [
        _main_score(plan, test[plan["target"]], {k: v[i * n : (i + 1) * n] for k, v in outputs.items()})
        for i in range(len(copies))
    ]
    metric, base = scores[0]
    found = []
    for c, name in enumerate(columns):
        drops = [base - s for _, s in scores[1 + c * REPEATS : 1 + (c + 1) * REPEATS]]
        found.append(Importance(name, labels.get(name, name), float(np.mean(drops)), float(np.std(drops))))
    found.sort(key=lambda i: -i.drop)
    return Importances(run.id, metric, base, n, REPEATS, tuple(found), round(time.perf_counter() - started, 2))


# -- a text classifier's example on the Evaluation page ------------------------------------------------------
def saved_example(run: Run) -> TextExplanation | None:
    """The words of the run's first evaluation example (its surest mistake, if any), if explained before."""
    stored = _saved(run, "example")
    return TextExplanation.from_dict(stored) if stored else None


def example_explanation(store: Store, run_id: int | str) -> TextExplanation:
    """The words behind a text classifier's first evaluation example: kept from before, or computed now.

    The export runs in a child process (no inference server needed); the result is kept beside the run.

    Raises:
        NotFound: no such run.
        BadInput: the run is not a finished text classifier, or its export is gone.
    """
    run, _ = _export(store, run_id)
    if not reads_text(run.task) or not run.evaluation.get("examples"):
        raise BadInput("explain.error.not_text", run_id=run.id, task=Message.of(f"task.{run.task}"))
    return saved_example(run) or TextExplanation.from_dict(_in_child(run, "example"))
