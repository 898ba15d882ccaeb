"""Semantic search: a table's texts embedded once, and each query answered with the rows closest in meaning.

The pretrained encoder (models/minilm.py) embeds the chosen text column of every row, once, when the run
"trains" (the Training page shows the pass as a progress bar). The export holds that index: its
`serving_default` takes `query` strings and answers each with the `top_k` rows whose texts are nearest by
cosine, best first: `row` (the row's position in its dataset version), `score` (the cosine similarity, -1 to 1),
`text` (the searched column) and `record` (the whole row as a JSON object). The index, the texts and the
records are variables in the SavedModel's checkpoint, not constants in its graph, so a large catalogue keeps
the graph small. Nothing is scored: there are no queries with known answers to score it on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from models.spec import SearchSpec
from models.task import Prepared, TaskData, write_export

EXAMPLES = 5  # rows whose own text the evaluation asks the export for
EXAMPLE_CHARS = 200


def searched_rows(data: TaskData, spec: SearchSpec) -> tuple[pd.DataFrame, str]:
    """The rows with a non-empty text in the searched column (`text`, `record`, `_row`), and that column's name."""
    frame, column = data.frame, spec.text_column or data.roles.get("text")
    names = ", ".join(map(str, frame.columns))
    if not column:
        raise ValueError(f"No text column to search. Name one of {names} with --set text_column=NAME.")
    if column not in frame.columns:
        raise ValueError(f"Column '{column}' not found. Name one of {names} with --set text_column=NAME.")
    text = frame[column].astype("string").str.strip()
    keep = (text.notna() & (text != "")).to_numpy(dtype=bool)
    if not keep.any():
        raise ValueError(f"Column '{column}' has no text to search. Name another of {names} with --set text_column=.")
    records = frame[keep].to_json(orient="records", lines=True, date_format="iso", force_ascii=False)
    # One JSON object a line; split on "\n" only: str.splitlines() would also cut at a U+2028 inside a text.
    rows = pd.DataFrame(
        {
            "text": text[keep].astype(str).to_numpy(),
            "record": records.rstrip("\n").split("\n"),
            "_row": np.flatnonzero(keep),
        }
    )
    return rows, str(column)


class Index(tf.Module):
    """The searchable rows: unit-length embeddings [rows, dimension], texts, records and positions."""

    def __init__(self, vectors: np.ndarray, rows: pd.DataFrame) -> None:
        super().__init__(name="index")
        self.vectors = tf.Variable(vectors.astype("float32"), trainable=False, name="vectors")
        self.texts = tf.Variable(rows["text"].tolist(), dtype=tf.string, trainable=False, name="texts")
        self.records = tf.Variable(rows["record"].tolist(), dtype=tf.string, trainable=False, name="records")
        self.rows = tf.Variable(rows["_row"].to_numpy("int64"), trainable=False, name="rows")


def export(embedder: Any, index: Index, top_k: int, path: Path) -> None:
    """Write a SavedModel whose `serving_default` takes `query` strings and returns the nearest rows."""
    k = min(top_k, int(index.vectors.shape[0]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="query")], autograph=False)
    def serve(query: tf.Tensor) -> dict[str, tf.Tensor]:
        scores = tf.matmul(tf.cast(embedder(query), tf.float32), index.vectors, transpose_b=True)
        best = tf.math.top_k(scores, k=k)
        return {
            "row": tf.gather(index.rows, best.indices),
            "score": best.values,
            "text": tf.gather(index.texts, best.indices),
            "record": tf.gather(index.records, best.indices),
        }

    write_export(path, {"serving_default": serve}, embedder)


def prepare(data: TaskData, *, spec: SearchSpec, batch_size: int) -> Prepared:  # noqa: ARG001 (no batches)
    """The rows to search and the encoder; `fit` embeds them (the index), export writes it with the encoder.

    Raises:
        ValueError: no text column to search, or one with no text in it.
    """
    from models import minilm

    rows, column = searched_rows(data, spec)
    embedder = minilm.load(sequence_length=spec.sequence_length)
    plan = {
        "task": "semantic-search",
        "text": column,
        "columns": [str(c) for c in data.frame.columns if not str(c).startswith("_")],
        "pretrained": minilm.NAME,
        "sequence_length": spec.sequence_length,
        "top_k": min(spec.top_k, len(rows)),
        "rows": {"indexed": len(rows), "skipped": len(data.frame) - len(rows)},  # skipped: no text
    }

    def fit() -> tuple[Index, dict[str, list[float]]]:
        report = data.progress or (lambda phase, fraction: None)
        report("embedding", 0.0)
        texts = rows["text"].to_numpy()
        return Index(embedder.embed(texts, progress=lambda done, total: report("embedding", done / total)), rows), {}

    def evaluate(export_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """No scores; as examples, the export asked for a few of the rows' own texts, as a client would."""
        serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
        queries = rows["text"].head(EXAMPLES).str.slice(0, EXAMPLE_CHARS).tolist()
        found = serve(query=tf.constant(queries))
        examples = [
            {
                "query": query,
                "texts": [t.decode()[:EXAMPLE_CHARS] for t in found["text"][q].numpy()[:3]],
                "scores": [round(float(v), 4) for v in found["score"][q].numpy()[:3]],
            }
            for q, query in enumerate(queries)
        ]
        return {}, {"rows": plan["rows"], "examples": examples}

    return Prepared.in_one_call(
        plan=plan, fit=fit, export=lambda index, path: export(embedder, index, spec.top_k, path), evaluate=evaluate
    )
