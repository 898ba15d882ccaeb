"""What every model family gives the training engine, and the data the engine gives it.

A family is a module in `models/` with one entry point,

    prepare(data: TaskData, *, spec, batch_size: int) -> Prepared

that splits the data reproducibly (with `spec.seed`), adapts its preprocessing on the training part
only, and returns tf.data pipelines plus three closures: build the compiled network, export it in
TensorFlow Serving's layout, and score the export on the held-out part. The engine
(`backend/jobs/training.py`) owns everything around that: seeds and op determinism, the device and
distribution strategy, callbacks (progress, cancel, backups, early stopping, TensorBoard), the run
record, and the diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Training steps per call from Python into TensorFlow (Keras' `steps_per_execution`), for networks whose steps take
# a few milliseconds: most of such a step is Python and dispatch, not arithmetic. 32 steps per call train the
# bench's MLP 3x as fast on a 2-core CPU and its bag-of-embeddings text model 1.8x, with bitwise the same weights.
# Steps of tens of milliseconds or more (the text and image CNNs' 35-45 ms, the Transformers', the ResNet's and
# GPT's 100-160 ms) gained nothing clear, and a cancel or a progress update waits for the whole call, so those
# networks keep one step per call.
LIGHT_STEPS_PER_EXECUTION = 32


TEST_PREDICTIONS = "test_predictions.parquet"  # beside a run: each test row's position, answer and prediction
ROW = "__row__"  # a table's column the engine adds: each row's position in the version, kept through the split


@dataclass(frozen=True)
class TaskData:
    """A dataset version as the engine hands it to a family.

    `frame` is the version's table. For images it has an `image` column (the original file bytes),
    `label` (class name, or missing) and `split` ("train" / "val" / "test" where the upload had split
    folders, else missing). `roles` names the columns that play a part: `target` (the label or value
    to predict), `text`, `user`, `item`, `rating`; a role the data lacks is None. `columns` is the
    version's column profile (name, kind, dtype, …) for families that pick inputs by kind.
    """

    frame: pd.DataFrame
    roles: dict[str, str | None]
    columns: list[dict[str, Any]] = field(default_factory=list)
    task: str = ""  # the run's task, for families that serve two (classification / regression)
    # (phase, fraction done) of a long step that is not epochs (embedding a catalogue): the Training page's bar.
    progress: Callable[[str, float], None] | None = None


@dataclass
class Prepared:
    """A family's data and model, ready for the engine's `fit`."""

    plan: dict[str, Any]  # JSON-safe, saved with the run: what preprocessing learned; classifiers put "classes" here
    train: Any  # tf.data.Dataset of batched (inputs, targets), shuffled with the spec's seed, prefetched
    validation: Any  # tf.data.Dataset of batched (inputs, targets), not shuffled
    train_examples: int  # examples in one epoch of `train` (steps and samples per second come from it)
    build: Callable[[], Any] | None  # returns the compiled keras.Model; the engine calls it under the strategy scope
    export: Callable[[Any, Path], None]  # (trained model, folder) -> a SavedModel with a named `serving_default`
    evaluate: Callable[[Path], tuple[dict[str, Any], dict[str, Any]]]  # export folder -> (metrics, details)
    # A family that trains without Keras (trees) gives `fit` instead of `build` and pipelines: it trains in one
    # call and returns the model and its curves (name -> one value per step, as a Keras history).
    fit: Callable[[], tuple[Any, dict[str, list[float]]]] | None = None
    # Export folder -> the export's loss on the validation rows (lower is better), where a family is a candidate.
    validate: Callable[[Path], float] | None = None

    @classmethod
    def in_one_call(
        cls,
        *,
        plan: dict[str, Any],
        fit: Callable[[], tuple[Any, dict[str, list[float]]]],
        export: Callable[[Any, Path], None],
        evaluate: Callable[[Path], tuple[dict[str, Any], dict[str, Any]]],
        train_examples: int = 0,
        validate: Callable[[Path], float] | None = None,
    ) -> Prepared:
        """A family with no Keras training: `fit` grows trees, or builds the model from the data (zero-shot
        classes, a search index); no pipelines, no network to build."""
        return cls(
            plan=plan,
            train=None,
            validation=None,
            train_examples=train_examples,
            build=None,
            export=export,
            evaluate=evaluate,
            fit=fit,
            validate=validate,
        )


@dataclass
class Choice:
    """Several families prepared on one split (`architecture=auto`): the engine trains each and keeps the one
    whose export scores best on the validation rows by `metric` (lower is better)."""

    candidates: dict[str, Prepared]
    metric: str  # "log_loss" | "rmse"
    ensemble: bool = False  # also try the average of the two best (models/ensemble.py), kept when it scores better


def prefetched(ds: Any) -> Any:
    """The last step of every family's tf.data pipelines: prefetch, with tf.data's model-based autotuning off.

    The pipelines read arrays already in memory, so there is little to tune, and the tuner stalled the start of
    one epoch in three or four on a 2-core CPU before its first batch: 0.1-0.3 s for the bench's MLP, 0.6-0.9 s for
    its image CNN, 1.0-1.3 s for its text model, whose epochs take 0.3-1.5 s. Off, 82 epochs showed none. A
    parallel map then keeps one call per core, and the prefetch grows its own buffer when it runs dry."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def in_chunks(fn: Callable[[np.ndarray], Any], values: np.ndarray, size: int = 8192) -> np.ndarray:
    """`fn` (a Keras preprocessing layer, say) on `values`, `size` rows at a time, its outputs as one array."""
    return np.concatenate([np.asarray(fn(values[i : i + size])) for i in range(0, max(len(values), 1), size)])


def call_batched(fn: Callable[..., Any], batch: int, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    """A SavedModel signature on raw inputs, `batch` examples at a time: its named outputs as arrays."""
    import tensorflow as tf

    size = len(next(iter(inputs.values()))) if inputs else 0
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, size, batch):
        for name, value in fn(**{k: tf.constant(v[start : start + batch]) for k, v in inputs.items()}).items():
            parts.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def write_export(path: Path, endpoints: dict[str, Any], *tracked: Any) -> None:
    """The tf.functions in `endpoints` (each with its input signature) as a SavedModel at `path`, in TensorFlow
    Serving's layout, each weight stored once.

    The endpoints bring the variables they use; `tracked` are the models and layers they call, searched for the
    lookup tables (a vectorizer's, a feature space's, a tokenizer's) the export must carry. They are tracked
    through a plain `tf.Module`: `ExportArchive.track()` on a Keras layer also lists its `keras.Variable`
    wrappers, which the checkpoint stores apart from the `tf.Variable`s the endpoints captured, so every weight
    was written twice (keras-team/keras#23553).
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    holder = tf.Module()
    holder.tracked = list(tracked)
    archive.track(holder)
    for name, fn in endpoints.items():
        archive.add_endpoint(name, fn)
    archive.write_out(str(path), verbose=False)


def classified(rows: Any, actual: Any, probabilities: Any, classes: list[str]) -> dict[str, np.ndarray]:
    """A classifier's `TEST_PREDICTIONS` columns: each test example's position in its dataset version (`row`),
    its true label (`actual`), the export's label (`predicted`) and that label's probability (`confidence`)."""
    probabilities = np.asarray(probabilities)
    return {
        "row": np.asarray(rows, dtype="int64"),
        "actual": np.asarray([str(a) for a in actual], dtype=object),
        "predicted": np.array(classes, dtype=object)[probabilities.argmax(axis=1)],
        "confidence": probabilities.max(axis=1).astype("float64"),
    }
