"""Run an exported SavedModel on raw rows with plain TensorFlow, the way TensorFlow Serving would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import BadInput
from models.task import call_batched

BATCH = 8192


class Predictor:
    """A loaded `serving_default` signature, with raw-row input and readable output."""

    def __init__(self, export_dir: str | Path, signature: str = "serving_default") -> None:
        import tensorflow as tf

        self._tf = tf
        signatures = tf.saved_model.load(str(export_dir)).signatures
        if signature not in signatures:
            raise BadInput(
                "error.serving.predictor_no_signature", signature=signature, signatures=", ".join(sorted(signatures))
            )
        self.fn = signatures[signature]
        self.inputs: dict[str, Any] = self.fn.structured_input_signature[1]

    def _columns(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        missing = [n for n in self.inputs if n not in frame.columns]
        if missing:
            raise BadInput("error.serving.missing_columns", missing=", ".join(missing), inputs=", ".join(self.inputs))
        columns = {}
        for name, spec in self.inputs.items():
            if spec.dtype == self._tf.string and frame[name].map(lambda v: isinstance(v, bytes)).all():
                values = frame[name].to_numpy(dtype=object)  # encoded images
            elif spec.dtype == self._tf.string:
                values = frame[name].astype("string").fillna("").to_numpy(dtype=object).astype(str)
            else:
                numbers = pd.to_numeric(frame[name], errors="coerce")
                bad = frame[name].notna() & numbers.isna()
                if bad.any():
                    raise BadInput("error.serving.not_numeric", name=name, value=frame[name][bad].iloc[0])
                values = numbers.to_numpy(spec.dtype.as_numpy_dtype)
            columns[name] = values.reshape(-1, 1) if spec.shape.rank == 2 else values
        return columns

    def raw(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Named outputs as arrays, batch by batch."""
        return call_batched(self.fn, BATCH, **self._columns(frame))

    def predict(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One readable prediction per row: `label` and `probabilities`, `value`, `text`, `items` or `hits`."""
        return readable(self.raw(frame))


def readable(outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """TensorFlow Serving style outputs to one object per row (works on REST JSON output too)."""

    def text(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    rows: list[dict[str, Any]] = []
    if "record" in outputs:  # a search: each query's rows, best first (models/search.py)
        for hits in zip(*(outputs[k] for k in ("row", "score", "text", "record")), strict=True):
            found = [
                {"row": int(r), "score": float(s), "text": text(t), "record": json.loads(text(c))}
                for r, s, t, c in zip(*hits, strict=True)
            ]
            rows.append({"hits": found})
        return rows
    if "text" in outputs:
        return [{"text": text(v)} for v in outputs["text"]]
    if "items" in outputs:
        for items, scores, known in zip(outputs["items"], outputs["scores"], outputs["known"], strict=True):
            rows.append(
                {
                    "items": [{"item": text(i), "score": float(s)} for i, s in zip(items, scores, strict=True)],
                    "known_user": bool(known),
                }
            )
        return rows
    if "probabilities" in outputs:
        for label, probs, classes in zip(outputs["label"], outputs["probabilities"], outputs["classes"], strict=True):
            rows.append(
                {
                    "label": text(label),
                    "probabilities": {text(c): float(p) for c, p in zip(classes, probs, strict=True)},
                }
            )
    else:
        rows = [{"value": float(v)} for v in outputs["value"]]
    return rows
