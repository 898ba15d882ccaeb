"""Score a whole file: every row through a model, batch by batch, into a table to take away.

The rows go to a `Predict` callable: the inference server over REST (`served`, what the dashboard uses), or the
export loaded in this process (`serving.Predictor(...).raw`, what `modeldeck predict` has always used). The
scored table is the input columns (an image's file name, not its bytes) and the answer: `prediction`,
`probability` (a classifier's, of the predicted class) and, where a decision was chosen for the model
(`modeldeck decide`), the export's `decision` with its `threshold` or `expected_cost`. It leaves as Parquet or
as a formula-safe CSV.

No TensorFlow here, nor the serving wing: the dashboard imports this module.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import orjson
import pandas as pd

from backend import config, data
from backend.errors import BadInput, NotFound, ServingUnavailable

# Rows per request, and requests in flight: JSON (de)coding on either side overlaps the model's work on another
# batch (`make bench`, bench/scoring.py, measures the throughput against the signature called directly).
BATCH_ROWS = 8192
IN_FLIGHT = 3
REQUEST_TIMEOUT_SECONDS = 120.0
FORMATS = (".csv", ".parquet")
# A cell a spreadsheet would run as a formula, or one that starts with a tab or a carriage return (OWASP's
# CSV injection advice): written with a leading apostrophe, which makes it text.
_FORMULA_START = r"^[=+\-@\t\r]"
ANSWER_COLUMNS = ("prediction", "probability", "decision", "threshold", "expected_cost")

Predict = Callable[[pd.DataFrame], dict[str, np.ndarray]]
"""Rows in, the model's named outputs for them out (one array per output, a row per input row)."""


@dataclass(frozen=True)
class Scored:
    """A scored file: the table to take away, and how long the scoring took."""

    frame: pd.DataFrame  # the input columns, then the answer columns (`ANSWER_COLUMNS` that the model returns)
    answer: str  # the column holding the answer: `prediction`, or its name made unique beside the inputs
    classes: bool  # whether the answer is a class (a bar of counts shows it) rather than a number or a text
    seconds: float

    @property
    def rows(self) -> int:
        return len(self.frame)


# -- where the predictions come from --------------------------------------------------------------------------
# The inference server is asked directly over REST, in the columnar format the serving client does not speak;
# importing `backend.serving` would also tie the dashboard, which imports this module, to the server's gRPC.
def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text.strip()[:300] or response.reason_phrase


def _request(http: httpx.Client, method: str, url: str, base: str, body: bytes | None = None) -> dict[str, Any]:
    """One request to the inference server, its failures in the serving client's words (`backend.serving`)."""
    try:
        response = http.request(method, url, content=body, headers={"content-type": "application/json"})
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise BadInput("error.serving.bad_url", base=base) from exc
    except httpx.TimeoutException as exc:
        raise ServingUnavailable("error.serving.timeout", base=base, timeout=http.timeout.read) from exc
    except httpx.TransportError as exc:
        raise ServingUnavailable("error.serving.unreachable", base=base) from exc
    if response.status_code == 404:
        raise NotFound("error.serving.refused", message=_error_text(response))
    if response.status_code == 400:
        raise BadInput("error.serving.refused", message=_error_text(response))
    if response.is_error:
        raise ServingUnavailable(
            "error.serving.server_failed",
            base=base,
            status_code=response.status_code,
            server_message=_error_text(response),
        )
    try:
        answer = _loads(response.content)
    except ValueError as exc:
        raise ServingUnavailable("error.serving.not_json", base=base) from exc
    if not isinstance(answer, dict):
        raise ServingUnavailable("error.serving.no_predictions", base=base)
    return answer


def _loads(body: bytes) -> Any:
    """JSON by orjson, five times the standard library's speed on a batch's answer.

    An answer with NaN or Infinity (TensorFlow Serving writes them bare) goes to the standard library, which
    reads them.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _json_column(values: pd.Series, name: str, dtype: str) -> Any:
    """A column as the JSON TensorFlow Serving reads for an input of this dtype (as `Predictor` feeds it).

    For orjson: numbers as an array or, with one missing, as a list written by the standard library, since NaN
    must travel as NaN (which the model reads as missing) and orjson would write null.
    """
    if dtype != "DT_STRING":
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & numbers.isna()
        if bad.any():
            raise BadInput("error.serving.not_numeric", name=name, value=values[bad].iloc[0])
        array = numbers.to_numpy(dtype="float64")
        return orjson.Fragment(json.dumps(array.tolist())) if np.isnan(array).any() else array
    if len(values) and isinstance(values.iloc[0], bytes):  # encoded images
        return [{"b64": base64.b64encode(v).decode("ascii")} for v in values]
    return values.astype("string").fillna("").tolist()


def served(
    model: str,
    *,
    version: int | None = None,
    base_url: str | None = None,
    signature: str = "serving_default",
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Predict:
    """The model on the inference server, asked in TensorFlow Serving's columnar format (`"inputs"`).

    Only the signature's inputs are sent (read from the model's metadata now), so a file may carry other
    columns; one missing is a `BadInput` naming it.

    Args:
        model: The model's name.
        version: A version number; `None` means the latest.
        base_url: The server's base URL; defaults to `backend.config.scoring_url()`.
        signature: The signature to run.
        timeout: Seconds to wait for each batch's answer.

    Raises:
        NotFound: The server has no such model or version.
        ServingUnavailable: The server is not answering.
    """
    base = (base_url or config.scoring_url()).rstrip("/")
    url = f"{base}/v1/models/{quote(model, safe='')}" + ("" if version is None else f"/versions/{int(version)}")
    http = httpx.Client(timeout=timeout)  # one connection pool for every batch, shared by the threads
    defs = _request(http, "GET", f"{url}/metadata", base)["metadata"]["signature_def"]["signature_def"]
    if signature not in defs:
        raise BadInput("error.serving.predictor_no_signature", signature=signature, signatures=", ".join(sorted(defs)))
    inputs = {name: spec.get("dtype", "") for name, spec in defs[signature]["inputs"].items()}
    outputs = list(defs[signature]["outputs"])

    def predict(rows: pd.DataFrame) -> dict[str, np.ndarray]:
        missing = [name for name in inputs if name not in rows.columns]
        if missing:
            raise BadInput("error.serving.missing_columns", missing=", ".join(missing), inputs=", ".join(inputs))
        columns = {name: _json_column(rows[name], name, dtype) for name, dtype in inputs.items()}
        body = orjson.dumps({"signature_name": signature, "inputs": columns}, option=orjson.OPT_SERIALIZE_NUMPY)
        answer = _request(http, "POST", f"{url}:predict", base, body).get("outputs")
        if answer is None:
            raise ServingUnavailable("error.serving.no_predictions", base=base)
        named = answer if isinstance(answer, dict) else {outputs[0]: answer}  # one output comes back bare
        return {name: np.asarray(values) for name, values in named.items()}

    return predict


# -- rows in ----------------------------------------------------------------------------------------------------
def read_rows(source: bytes | Path, filename: str, *, images: bool) -> pd.DataFrame:
    """The rows of an upload: a table, or an image model's images as columns `file` and `image`.

    A table is CSV, Excel, Parquet or JSON Lines; images come from a ZIP, a folder or one image file (their
    original bytes).

    Raises:
        BadInput: The file cannot be read as given (the message says why and how to fix it).
    """
    if not images:
        return data.read_table(source, filename).frame
    if isinstance(source, Path):
        found = data.images_to_predict(source)
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / PurePath(filename).name
            path.write_bytes(source)
            found = data.images_to_predict(path)
    return pd.DataFrame({"file": [name for name, _ in found], "image": [content for _, content in found]})


# -- scoring ----------------------------------------------------------------------------------------------------
def _text(values: np.ndarray) -> np.ndarray:
    """Strings as str, whether they came as bytes (TensorFlow) or as str (JSON)."""
    codes, distinct = pd.factorize(values.reshape(-1))  # few distinct answers: decode each once
    texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in distinct]
    return np.asarray(texts + [""], dtype=object)[codes].reshape(values.shape)


def _answers(outputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], bool]:
    """The model's outputs as answer columns, and whether the answer is a class."""
    if "probabilities" in outputs:  # the label is the most probable class
        answers = {
            "prediction": _text(outputs["label"]),
            "probability": np.asarray(outputs["probabilities"], dtype="float64").max(axis=1),
        }
        if "decision" in outputs:
            answers["decision"] = _text(outputs["decision"])
        for name in ("threshold", "expected_cost"):
            if name in outputs:
                answers[name] = np.asarray(outputs[name], dtype="float64").reshape(-1)
        return answers, True
    if "value" in outputs:
        return {"prediction": np.asarray(outputs["value"], dtype="float64").reshape(-1)}, False
    if "text" in outputs:
        return {"prediction": _text(np.asarray(outputs["text"]).reshape(-1))}, False
    items = _text(np.asarray(outputs["items"]).reshape(-1)).reshape(len(outputs["items"]), -1)
    return {"prediction": np.array([", ".join(row) for row in items], dtype=object)}, False


def _free(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`… when the file already has a column of that name."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def score(
    frame: pd.DataFrame,
    *,
    predict: Predict,
    inputs: dict[str, str] | None = None,
    batch_rows: int = BATCH_ROWS,
    in_flight: int = IN_FLIGHT,
    on_progress: Callable[[int, int], None] | None = None,
) -> Scored:
    """Every row of `frame` through `predict`, `batch_rows` at a time with `in_flight` batches under way.

    The batches run in threads `config.SCORING_NICE` steps below the caller's: background work, after pages.

    Args:
        frame: The rows, as read (`read_rows`); columns the model does not take are kept in the result.
        predict: Where the predictions come from: `served`, or `serving.Predictor(...).raw` in this process.
        inputs: Model input -> the frame's column that feeds it, where the names differ (a text model's
            `text` from a file's `review` column, say); the others are fed by the column of their own name.
        batch_rows: Rows per call of `predict`.
        in_flight: Calls under way at once.
        on_progress: Called with (rows scored, rows in all) after each batch, in order.

    Returns:
        The scored table: the input columns (bytes columns, an image's content, left out), then the answers.

    Raises:
        BadInput: The file has no rows, or a batch does not fit the model (the message says which column).
    """
    if frame.empty:
        raise BadInput("scoring.error.no_rows")
    feed = frame.assign(**{name: frame[column] for name, column in inputs.items()}) if inputs else frame
    total, done = len(frame), 0
    parts: list[dict[str, np.ndarray]] = []
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max(in_flight, 1), thread_name_prefix="scoring", initializer=_in_the_background)
    try:
        batches = (feed.iloc[start : start + batch_rows] for start in range(0, total, batch_rows))
        for part in pool.map(predict, batches):
            parts.append(part)
            done = min(done + batch_rows, total)
            if on_progress is not None:
                on_progress(done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a batch that failed stops the ones not yet sent
    outputs = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    answers, classes = _answers(outputs)
    kept = frame[[c for c in frame.columns if not _holds_bytes(frame[c])]].reset_index(drop=True)
    taken = set(map(str, kept.columns))
    named = {_free(name, taken): values for name, values in answers.items()}
    scored = pd.concat([kept, pd.DataFrame(named)], axis=1)
    return Scored(frame=scored, answer=next(iter(named)), classes=classes, seconds=time.perf_counter() - started)


def _in_the_background() -> None:
    """This thread, `config.SCORING_NICE` steps lower (where threads have a niceness of their own: Linux)."""
    me = threading.get_native_id()
    with contextlib.suppress(OSError, AttributeError):  # elsewhere a thread shares its process's priority
        os.setpriority(os.PRIO_PROCESS, me, os.getpriority(os.PRIO_PROCESS, me) + config.SCORING_NICE)


def _holds_bytes(column: pd.Series) -> bool:
    return column.dtype == object and len(column) > 0 and isinstance(column.iloc[0], bytes)


# -- the table out ----------------------------------------------------------------------------------------------
def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy where every text cell (and column name) a spreadsheet would run as a formula starts with `'`."""

    def escaped(column: pd.Series) -> pd.Series:
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            return column  # numbers are numbers: -2 stays a number, not a formula
        text = column.astype("string")
        risky = text.str.contains(_FORMULA_START, regex=True, na=False)
        return column.where(~risky, "'" + text) if risky.any() else column

    safe = frame.apply(escaped)
    safe.columns = [f"'{c}" if pd.Series([str(c)]).str.contains(_FORMULA_START).iloc[0] else c for c in frame.columns]
    return safe


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as a formula-safe CSV, UTF-8 with a byte-order mark (so Excel reads Chinese text right)."""
    # RFC 4180's CRLF line ends: a cell holding a CR alone is then quoted too, so no reader splits its row there
    return formula_safe(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The table as Parquet; a text column mixing types (an Excel column of numbers and words) as text."""
    mixed = {c: frame[c].astype("string") for c in frame.columns if frame[c].dtype == object}
    buffer = io.BytesIO()
    frame.assign(**mixed).to_parquet(buffer, index=False)
    return buffer.getvalue()


def check_output(path: Path) -> str:
    """The format a path asks for (`csv` or `parquet`), checked before any row is scored.

    Raises:
        BadInput: The suffix is neither `.csv` nor `.parquet`, or the folder does not exist.
    """
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BadInput("scoring.error.bad_suffix", path=str(path), formats=", ".join(FORMATS))
    if not path.parent.is_dir():
        raise BadInput("scoring.error.cannot_write", path=str(path), reason="no such folder")
    return suffix[1:]


def write(frame: pd.DataFrame, path: Path) -> int:
    """Write the scored table to `path` (CSV or Parquet by its suffix); returns the bytes written.

    Raises:
        BadInput: A suffix other than `.csv` or `.parquet`, or the file cannot be written.
    """
    content = csv_bytes(frame) if check_output(path) == "csv" else parquet_bytes(frame)
    try:
        path.write_bytes(content)
    except OSError as exc:
        raise BadInput("scoring.error.cannot_write", path=str(path), reason=exc.strerror or str(exc)) from None
    return len(content)
