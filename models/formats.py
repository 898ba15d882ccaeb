"""An export in the formats a deployment asks for, each checked against the SavedModel it came from.

`check_formats` writes TensorFlow Lite models (float, and dynamic-range int8: weights stored as 8-bit
integers, computed in float) and reports, for each, its size, the latency of one example (the median of
`REPEATS` calls) and the largest absolute difference from the SavedModel's numeric outputs (probabilities,
values) on rows of the run's data. A model the converter cannot turn into TFLite is refused with the
converter's reason in one line.

The check runs TFLite models in TensorFlow's own interpreter, which has no TF Select (Flex) kernels: only
TFLite's builtin ops count. Keras' one-hot and multi-hot encodings (a FeatureSpace's categories) use
`DenseBincount`, which TFLite lacks; `tflite_ready` rewrites it as `OneHot` then a reduction, which TFLite has
and which gives the same numbers (the parity check proves it on every conversion).

`python -m models.formats SOURCE OUT ROWS` runs it in a process of its own (the dashboard has no TensorFlow):
ROWS is a Parquet file of raw rows, and the report is written to `OUT/formats.json`.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPORT = "formats.json"
REPEATS = 50  # calls of one example behind each latency (its median)
TFLITE = {"tflite": "model.tflite", "tflite-int8": "model-int8.tflite"}  # format -> its file


@dataclass(frozen=True)
class FormatCheck:
    """One format of an export: where it is and how it compares with the SavedModel, or why it was refused."""

    format: str  # "savedmodel", "tflite" or "tflite-int8"
    file: str | None = None  # its file name in the output folder
    size_bytes: int | None = None
    latency_ms: float | None = None  # one example, median of REPEATS calls
    max_difference: float | None = None  # largest absolute difference from the SavedModel's numeric outputs
    rows: int = 0  # rows the difference was measured on
    refused: str | None = None  # why it could not be made, in one line
    quantized: bool | None = None  # int8: whether any weight was stored as int8 (small tensors stay float)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Refused(Exception):
    """A format cannot be made from this export; the message is the reason, in one line."""


# 1. Raw rows -> the signature's inputs, as TensorFlow Serving would take them.
def signature_inputs(specs: dict[str, Any], rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The rows' columns shaped and typed as the signature's inputs (strings, numbers or encoded images)."""
    import tensorflow as tf

    missing = [name for name in specs if name not in rows.columns]
    if missing:
        raise Refused(f"the rows have no column {', '.join(missing)} for the model's inputs")
    columns = {}
    for name, spec in specs.items():
        column = rows[name]
        if spec.dtype == tf.string:
            is_bytes = column.map(lambda v: isinstance(v, bytes)).all()
            values = column.to_numpy(dtype=object) if is_bytes else column.astype("string").fillna("").to_numpy(str)
            values = values.astype(object if is_bytes else bytes)
        else:
            values = pd.to_numeric(column, errors="coerce").to_numpy(spec.dtype.as_numpy_dtype)
        columns[name] = values.reshape(-1, 1) if spec.shape.rank == 2 else values
    return columns


def numeric_outputs(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """The outputs that are numbers (probabilities, values, scores), as float64 arrays."""
    found = {name: np.asarray(value) for name, value in outputs.items()}
    return {name: value.astype(np.float64) for name, value in found.items() if value.dtype.kind in "fiu"}


# 2. The SavedModel, rewritten where TFLite lacks an op that has an exact builtin equivalent.
def _attr(**kind: Any) -> Any:
    from tensorflow.core.framework import attr_value_pb2

    return attr_value_pb2.AttrValue(**kind)


def _const(name: str, value: float, dtype: int) -> Any:
    import tensorflow as tf
    from tensorflow.core.framework import node_def_pb2

    node = node_def_pb2.NodeDef(name=name, op="Const")
    node.attr["dtype"].CopyFrom(_attr(type=dtype))
    node.attr["value"].CopyFrom(_attr(tensor=tf.make_tensor_proto(np.array(value, tf.as_dtype(dtype).as_numpy_dtype))))
    return node


def _without_bincount(node: Any) -> list[Any]:
    """`DenseBincount(values, size, weights)` (weights unused) as `OneHot(values, size)` reduced over the values'
    last axis: `Max` for a binary output (one-hot, multi-hot), `Sum` for counts. A value outside [0, size) counts
    nowhere in both. The last node keeps the original's name and output name, so its readers need no change."""
    from tensorflow.core.framework import node_def_pb2

    values, size = node.input[0], node.input[1]
    name, dtype, index_type = node.name, node.attr["T"].type, node.attr["Tidx"].type
    int32 = 3  # DT_INT32

    def op(suffix: str, kind: str, inputs: list[str], **attrs: Any) -> Any:
        new = node_def_pb2.NodeDef(name=f"{name}/{suffix}" if suffix else name, op=kind, input=inputs)
        new.device = node.device
        for key, value in attrs.items():
            new.attr[key].CopyFrom(value)
        return new

    return [
        _const(f"{name}/on", 1.0, dtype),
        _const(f"{name}/off", 0.0, dtype),
        _const(f"{name}/minus_one", -1, int32),
        op("depth", "Cast", [size], SrcT=_attr(type=index_type), DstT=_attr(type=int32)),
        op(
            "one_hot",
            "OneHot",
            [values, f"{name}/depth:y:0", f"{name}/on:output:0", f"{name}/off:output:0"],
            T=_attr(type=dtype),
            TI=_attr(type=index_type),
            axis=_attr(i=-1),
        ),
        op("rank", "Rank", [values], T=_attr(type=index_type)),
        op("axis", "AddV2", [f"{name}/rank:output:0", f"{name}/minus_one:output:0"], T=_attr(type=int32)),
        op(
            "",
            "Max" if node.attr["binary_output"].b else "Sum",
            [f"{name}/one_hot:output:0", f"{name}/axis:z:0"],
            T=_attr(type=dtype),
            Tidx=_attr(type=int32),
            keep_dims=_attr(b=False),
        ),
    ]


def tflite_ready(source: Path, target: Path) -> list[str]:
    """A copy of the SavedModel at `source` in `target` with every `DenseBincount` rewritten (see the module's
    docstring); returns the ops rewritten, none when the copy is the original."""
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("fingerprint.pb"))  # the fingerprint would lie
    saved = saved_model_pb2.SavedModel.FromString((source / "saved_model.pb").read_bytes())
    rewritten = []
    for meta_graph in saved.meta_graphs:
        for function in meta_graph.graph_def.library.function:
            nodes = list(function.node_def)
            if not any(n.op == "DenseBincount" for n in nodes):
                continue
            del function.node_def[:]
            for node in nodes:
                replaced = _without_bincount(node) if node.op == "DenseBincount" else [node]
                function.node_def.extend(replaced)
                rewritten += [node.op] if node.op == "DenseBincount" else []
    (target / "saved_model.pb").write_bytes(saved.SerializeToString())
    return sorted(set(rewritten))


# 3. Conversion, and the converter's reason when it refuses.
def refusal(error: BaseException) -> str:
    """The converter's reason in one line: the TensorFlow ops TFLite lacks, else the error's first line."""
    text = str(error)
    missing = re.search(r"TF Select ops: ([^\n]+)", text)
    if missing:
        return f"TensorFlow ops that TFLite does not have: {missing.group(1).strip()}"
    unsupported = sorted(set(re.findall(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op", text)))
    if unsupported:
        return f"TensorFlow ops that TFLite does not have: {', '.join(op.removeprefix('tf.') for op in unsupported)}"
    illegal = sorted(set(re.findall(r"failed to legalize operation '(tf\.[A-Za-z0-9_]+)'", text)))
    if illegal:  # e.g. the pretrained model's tokenizer loop: a TensorList of no static shape
        return f"TensorFlow ops that TFLite cannot convert: {', '.join(op.removeprefix('tf.') for op in illegal)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


def convert(source: Path, *, int8: bool) -> bytes:
    """The `serving_default` signature of a SavedModel as a TFLite model of builtin ops only.

    Raises:
        Refused: the converter cannot make it; the message is its reason.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(source), signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic-range int8
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError, ValueError and others: each is a refusal
        raise Refused(refusal(exc)) from None


# 4. Each format run on the same rows.
def _median_ms(call: Any, feeds: dict[str, np.ndarray]) -> float:
    one = {name: value[:1] for name, value in feeds.items()}
    call(one)  # the first call builds and allocates: not what a served model pays per request
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call(one)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _largest_difference(expected: dict[str, np.ndarray], found: dict[str, np.ndarray]) -> float:
    common = [name for name in expected if name in found]
    if not common:
        raise Refused("the model has no numeric output to compare")
    return max(float(np.max(np.abs(expected[n] - found[n]), initial=0.0)) for n in common)


def _tflite_call(model: bytes) -> Any:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model)
    runner = interpreter.get_signature_runner("serving_default")

    def call(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return dict(runner(**feeds))
        except (RuntimeError, ValueError) as exc:
            raise Refused(refusal(exc)) from None

    return call


def _has_int8(model: bytes) -> bool:
    import tensorflow as tf

    details = tf.lite.Interpreter(model_content=model).get_tensor_details()
    return any(np.dtype(d["dtype"]) == np.int8 for d in details)


def _rows_through(call: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The outputs for every row, one row at a time (a TFLite model runs at the batch size it was resized to)."""
    rows = len(next(iter(feeds.values())))
    outputs = [numeric_outputs(call({n: v[i : i + 1] for n, v in feeds.items()})) for i in range(rows)]
    return {name: np.concatenate([o[name] for o in outputs]) for name in outputs[0]}


def check_formats(source: Path, out: Path, rows: pd.DataFrame) -> list[FormatCheck]:
    """TFLite float and int8 models of the SavedModel at `source`, written to `out`, each checked on `rows`.

    The SavedModel itself comes first, with its latency: the baseline the others are compared with.
    """
    import tensorflow as tf

    signature = tf.saved_model.load(str(source)).signatures["serving_default"]
    try:
        feeds = signature_inputs(signature.structured_input_signature[1], rows)
    except Refused as exc:  # rows the model cannot take: nothing can be compared
        return [FormatCheck(name, refused=str(exc)) for name in ("savedmodel", *TFLITE)]

    def saved_call(given: dict[str, np.ndarray]) -> dict[str, Any]:
        return {
            name: value.numpy() for name, value in signature(**{n: tf.constant(v) for n, v in given.items()}).items()
        }

    expected = _rows_through(saved_call, feeds)
    size = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    found = [
        FormatCheck(
            "savedmodel", size_bytes=size, latency_ms=_median_ms(saved_call, feeds), max_difference=0.0, rows=len(rows)
        )
    ]
    out.mkdir(parents=True, exist_ok=True)
    ready = out / ".tflite-ready"
    shutil.rmtree(ready, ignore_errors=True)
    tflite_ready(source, ready)
    try:
        for name, file in TFLITE.items():
            try:
                model = convert(ready, int8=name == "tflite-int8")
                call = _tflite_call(model)
                difference = _largest_difference(expected, _rows_through(call, feeds))
                latency = _median_ms(call, feeds)
            except Refused as exc:
                found.append(FormatCheck(name, refused=str(exc)))
                continue
            (out / file).write_bytes(model)
            quantized = _has_int8(model) if name == "tflite-int8" else None
            found.append(FormatCheck(name, file, len(model), latency, difference, len(rows), quantized=quantized))
    finally:
        shutil.rmtree(ready, ignore_errors=True)
    return found


def main(argv: list[str]) -> None:
    """`python -m models.formats SOURCE OUT ROWS`: `check_formats`, its report written to `OUT/formats.json`."""
    source, out, rows = (Path(a) for a in argv)
    checks = check_formats(source, out, pd.read_parquet(rows))
    (out / REPORT).write_text(json.dumps([c.to_dict() for c in checks], indent=1))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
