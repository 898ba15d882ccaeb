"""Zero-shot text classification: name the classes, get a classifier without training.

Each class is a sentence: its description, or its name alone ("great: I love this product", "other"). The
pretrained encoder (models/minilm.py) embeds the class sentences once; a text's class probabilities are the
softmax over the classes of its cosine similarity to each sentence, times `spec.scale`. The export is the text
classifier's (models/text.py): tokenizer, encoder and this fixed head on raw strings, with the same `text`
input and outputs, so the Playground, the server, `predict`, evaluation and thresholds take it as any text
classifier. Where the data has a label column, the run is scored on the test split the trained text models
use (same seed, same rows), so the two compare; without one, the run has a model and no scores.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pandas as pd

from models import text
from models.spec import ZeroShotSpec
from models.task import Prepared, TaskData


def head(class_vectors: np.ndarray, scale: float) -> keras.Model:
    """Unit-length sentence embeddings in, class probabilities out: softmax(scale x cosine to each class)."""
    embedding = keras.Input((class_vectors.shape[1],), name="embedding")
    similarity = keras.layers.Dense(len(class_vectors), use_bias=False, trainable=False, name="similarity")
    probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(similarity(embedding))
    similarity.set_weights([(scale * class_vectors.T).astype("float32")])
    return keras.Model(embedding, probabilities, name="zero_shot")


def labelled_rows(data: TaskData, classes: list[str]) -> tuple[pd.DataFrame, str, str | None, int]:
    """The texts to score (`text`, `label`, `_row`), the text column, the label column (None: no scores) and how
    many rows were dropped. Every label in the column must be one of the classes named."""
    frame, text_col, target = data.frame, data.roles.get("text"), data.roles.get("target")
    if not text_col or text_col not in frame.columns:
        names = ", ".join(map(str, frame.columns))
        raise ValueError(f"No text column found. Pick the column that holds the texts ({names}) on the Data page.")
    if not target or target not in frame.columns:
        return pd.DataFrame(columns=["text", "label", "_row"]), text_col, None, 0
    rows, text_col, target, dropped = text.usable_rows(data)
    unnamed = sorted(set(rows["label"]) - set(classes))
    if unnamed:
        raise ValueError(
            f"The label column '{target}' has labels the classes do not name: {', '.join(unnamed[:5])}. "
            f"Name every class as the column spells it, like --set labels={','.join(sorted(set(rows['label'])))}."
        )
    return rows, text_col, target, dropped


def prepare(data: TaskData, *, spec: ZeroShotSpec, batch_size: int) -> Prepared:  # noqa: ARG001 (no batches)
    """The encoder and the class sentences, a head that needs no training, and the export and its scoring.

    Raises:
        ValueError: no text column, or labels in the label column that the classes do not name.
    """
    from models import minilm

    named = spec.classes()
    classes = [name for name, _ in named]
    rows, text_col, target, dropped = labelled_rows(data, classes)
    test = text.split(rows, spec)[2] if target else rows
    embedder = minilm.load(sequence_length=spec.sequence_length)
    sizes = {"train": 0, "validation": 0, "test": len(test)}
    plan: dict[str, Any] = {
        "task": "zero-shot",
        "text": text_col,
        "target": target,
        "classes": classes,
        "descriptions": dict(named),
        "architecture": "minilm",
        "pretrained": minilm.NAME,
        "sequence_length": spec.sequence_length,
        "rows": sizes,
        "dropped_rows": dropped,
    }

    def fit() -> tuple[keras.Model, dict[str, list[float]]]:
        return head(embedder.embed([description for _, description in named]), spec.scale), {}

    def evaluate(export_dir: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        if target is None:
            return {}, {"rows": sizes}
        return text.evaluate(export_dir, test=test, classes=classes, rows=sizes)

    return Prepared.in_one_call(
        plan=plan, fit=fit, export=lambda model, path: text.export(model, embedder, classes, path), evaluate=evaluate
    )
