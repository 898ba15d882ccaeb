"""A trained YDF gradient-boosted-trees model as a plain TensorFlow graph: standard ops only.

YDF's own TensorFlow export needs its `ydf_tf` custom op, which plain TensorFlow and a stock TensorFlow
Serving lack. This module reads the trained trees instead and compiles them:

1. `forest_arrays` flattens every tree into node arrays (trees concatenated in model order, depth-first,
   negative child first, as YDF stores them): the feature each node tests, its threshold or the offset of its
   category mask, what a missing value decides, both children, and each leaf's value. A leaf points to itself,
   so routing needs no test for having arrived.
2. `ForestModule` serves raw columns: strings become dictionary indices through a `StaticHashTable` (an unseen
   value is YDF's out-of-dictionary item 0, "" is missing), then `max_depth` steps route every (row, tree) pair
   at once with `tf.gather`, the leaves are summed per class in YDF's order, the initial predictions added and
   the link applied (sigmoid for two classes, softmax for more, none for regression).

Semantics follow yggdrasil_decision_forests 0.16 (`port/python/ydf/model/tree/`, `dataset/dataset.cc`): a
condition on a missing value takes the node's `missing` flag (the proto's `na_value`), which YDF keeps
consistent with its global imputation. The float32 sums are cumulative in YDF's order (QuickScorer starts from
the initial prediction, the other engines add it last), so regression outputs agree bit for bit on the CPU.
Default GBTs only test "number >= threshold", "category in set" and booleans; anything else raises
UnsupportedModel rather than serving a different model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

LEAF, HIGHER, CAT_IN = 0, 1, 2  # node types: a leaf; x >= threshold; category mask[offset + index]


class UnsupportedModel(ValueError):
    """A YDF model this compiler does not reproduce exactly (the message says what)."""


def _features(model: Any) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """The model's inputs in its order (name, kind, a categorical's dictionary), and column index -> position."""
    import ydf
    from ydf.dataset import dataspec

    spec = model.data_spec()
    features: list[dict[str, Any]] = []
    position: dict[int, int] = {}
    for f in model.input_features():
        column = spec.columns[f.column_idx]
        entry: dict[str, Any] = {"name": f.name}
        if f.semantic == ydf.Semantic.NUMERICAL:
            entry["kind"] = "numerical"
        elif f.semantic == ydf.Semantic.BOOLEAN:
            entry["kind"] = "numerical"  # fed as 1.0 / 0.0 / NaN; "is true" is "x >= 0.5"
        elif f.semantic == ydf.Semantic.CATEGORICAL and not column.categorical.is_already_integerized:
            items = sorted(dataspec.categorical_vocab_iterator(column.categorical), key=lambda kv: kv[1].index)
            entry |= {
                "kind": "categorical",
                "size": int(column.categorical.number_of_unique_values),
                "keys": [key for key, _ in items],  # bytes; index 0 is <OOD>
                "index": [item.index for _, item in items],
            }
        else:
            raise UnsupportedModel(f"Input {f.name!r} has semantic {f.semantic}, which the export does not serve.")
        position[f.column_idx] = len(features)
        features.append(entry)
    return features, position


def forest_arrays(model: Any) -> dict[str, Any]:
    """The trees of a trained YDF GBT as flat node arrays, with what the serving graph needs around them."""
    import ydf
    from ydf.model.tree import condition as conditions

    if not isinstance(model, ydf.GradientBoostedTreesModel):
        raise UnsupportedModel(f"Only gradient-boosted trees are compiled, not {model.name()}.")
    task = "classification" if model.task() == ydf.Task.CLASSIFICATION else "regression"
    if model.task() not in (ydf.Task.CLASSIFICATION, ydf.Task.REGRESSION):
        raise UnsupportedModel(f"Task {model.task()} is not served.")
    if task == "classification" and model.output_logits():
        raise UnsupportedModel("Models that output logits are not served.")
    engines = model.list_compatible_engines()  # predict() uses the first
    if not engines:
        raise UnsupportedModel("The model has no fast engine (local imputation?): its sums cannot be matched.")
    features, position = _features(model)
    outputs = int(model.num_trees_per_iteration())  # 1 for regression and two classes, K for K > 2 classes
    node_type: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    missing: list[bool] = []
    pos: list[int] = []
    neg: list[int] = []
    leaf: list[float] = []
    masks: list[bool] = []
    depth = 0

    def add(node: Any, level: int) -> int:
        nonlocal depth
        i = len(node_type)
        node_type.append(LEAF)
        feature.append(0)
        threshold.append(0.0)
        missing.append(False)
        pos.append(i)
        neg.append(i)
        leaf.append(0.0)
        if node.is_leaf:
            depth = max(depth, level)
            leaf[i] = float(np.float32(node.value.value))
            return i
        c = node.condition
        missing[i] = bool(c.missing)
        if isinstance(c, conditions.NumericalHigherThanCondition):
            node_type[i], feature[i], threshold[i] = HIGHER, position[c.attribute], float(c.threshold)
        elif isinstance(c, conditions.IsTrueCondition):
            node_type[i], feature[i], threshold[i] = HIGHER, position[c.attribute], 0.5
        elif isinstance(c, conditions.CategoricalIsInCondition):
            size = features[position[c.attribute]]["size"]
            bits = [False] * size
            for item in c.mask:
                bits[item] = True
            node_type[i], feature[i], threshold[i] = CAT_IN, position[c.attribute], float(len(masks))
            masks.extend(bits)
        else:
            raise UnsupportedModel(f"Condition {type(c).__name__} is not compiled (default GBTs do not use it).")
        neg[i] = add(node.neg_child, level + 1)
        pos[i] = add(node.pos_child, level + 1)
        return i

    roots = [add(tree.root, 0) for tree in model.iter_trees()]
    if len(masks) >= 2**24:
        raise UnsupportedModel("The category masks are too large to index in float32.")
    return {
        "task": task,
        "classes": [str(c) for c in model.label_classes()] if task == "classification" else [],
        "link": model.activation().name,  # SIGMOID | SOFTMAX | IDENTITY
        "outputs": outputs,
        "initial": np.asarray(model.initial_predictions(), np.float32).reshape(-1),
        "init_first": "QuickScorer" in engines[0],  # QuickScorer adds trees to the initial prediction
        "features": features,
        "depth": depth,
        "node_type": np.asarray(node_type, np.int32),
        "feature": np.asarray(feature, np.int32),
        "threshold": np.asarray(threshold, np.float32),
        "missing": np.asarray(missing, bool),
        "pos": np.asarray(pos, np.int32),
        "neg": np.asarray(neg, np.int32),
        "leaf": np.asarray(leaf, np.float32),
        "root": np.asarray(roots, np.int32),
        "masks": np.asarray(masks or [False], bool),
    }


class ForestModule(tf.Module):
    """The compiled forest with a `serving_default` over raw columns, like the networks' exports.

    Inputs: one [None, 1] tensor per column, float32 (NaN = missing) or string ("" = missing), plus any
    `ignored` columns the trees never read (so the signature is the same as the network family's); or the
    given `signature`, whose columns `derive` turns into the named numbers the trees read (a table's dates and
    texts, `models/derived.py`). Outputs: `probabilities`, `label` and `classes` for classification, `value`
    for regression.
    """

    def __init__(
        self,
        arrays: dict[str, Any],
        *,
        ignored: dict[str, tf.DType] | None = None,
        signature: dict[str, tf.TensorSpec] | None = None,
        derive: Any = None,
    ) -> None:
        super().__init__(name="gradient_boosted_trees")
        a = arrays
        self._task, self._link, self._outputs = a["task"], a["link"], a["outputs"]
        self._init_first, self._depth, self._features = bool(a["init_first"]), int(a["depth"]), a["features"]
        self._trees = len(a["root"])
        # One int32 gather per step fetches a node's feature, children and flags together.
        flags = a["node_type"] + 4 * a["missing"].astype(np.int32)
        self.nodes = tf.Variable(np.stack([a["feature"], a["pos"], a["neg"], flags], axis=1), trainable=False)
        self.threshold = tf.Variable(a["threshold"], trainable=False)
        self.leaf = tf.Variable(a["leaf"], trainable=False)
        self.root = tf.Variable(a["root"], trainable=False)
        self.masks = tf.Variable(a["masks"], trainable=False)
        self.initial = tf.Variable(a["initial"], trainable=False)
        self.classes = tf.constant(a["classes"] or [""])
        self.tables = {
            f["name"]: tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(f["keys"]), tf.constant(f["index"], tf.int64)), 0
            )
            for f in self._features
            if f["kind"] == "categorical"
        }
        self.derive = derive
        if signature is None:
            signature = {
                f["name"]: tf.TensorSpec([None, 1], tf.string if f["kind"] == "categorical" else tf.float32, f["name"])
                for f in self._features
            }
            signature |= {name: tf.TensorSpec([None, 1], dtype, name) for name, dtype in (ignored or {}).items()}
        self.serving_default = tf.function(self._serve, input_signature=[signature], autograph=False)

    def _matrix(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """[rows, features] float32: numbers as given, categories as dictionary indices, NaN where missing."""
        if self.derive is not None:
            inputs = dict(inputs)
            for column, values in self.derive(inputs).items():
                for i, name in enumerate(self.derive.names[column]):
                    inputs[name] = values[:, i]
        columns = []
        for f in self._features:
            x = tf.reshape(inputs[f["name"]], [-1])
            if f["kind"] == "categorical":
                index = tf.cast(self.tables[f["name"]].lookup(x), tf.float32)
                x = tf.where(tf.equal(x, ""), tf.constant(np.nan, tf.float32), index)
            columns.append(x)
        return tf.stack(columns, axis=1)

    def _step(self, x: tf.Tensor, node: tf.Tensor) -> tf.Tensor:
        """Every (row, tree) pair one level down: [rows, trees] node indices in, their children out."""
        fields = tf.gather(self.nodes, node)
        feature, pos, neg, flags = fields[..., 0], fields[..., 1], fields[..., 2], fields[..., 3]
        value = tf.gather(x, feature, batch_dims=1)
        threshold = tf.gather(self.threshold, node)
        missing = tf.math.is_nan(value)
        higher = value >= threshold
        category = tf.cast(tf.where(missing, tf.zeros_like(value), value), tf.int32) + tf.cast(threshold, tf.int32)
        category = tf.clip_by_value(category, 0, tf.shape(self.masks)[0] - 1)
        decision = tf.where(tf.equal(tf.bitwise.bitwise_and(flags, 3), CAT_IN), tf.gather(self.masks, category), higher)
        decision = tf.where(missing, flags >= 4, decision)
        return tf.where(decision, pos, neg)

    def _scores(self, x: tf.Tensor) -> tf.Tensor:
        """[rows, outputs]: the leaves summed per output in YDF's float32 order, with the initial predictions."""
        rows = tf.shape(x)[0]
        node = tf.tile(self.root[None, :], [rows, 1])
        for _ in range(self._depth):  # a leaf routes to itself, so every tree ends at its leaf
            node = self._step(x, node)
        leaves = tf.reshape(tf.gather(self.leaf, node), [rows, self._trees // self._outputs, self._outputs])
        initial = tf.broadcast_to(self.initial[None, None, :], [rows, 1, self._outputs])
        if self._init_first:  # cumsum is a sequential scan on the CPU: YDF's `acc += leaf`, rounding included
            return tf.math.cumsum(tf.concat([initial, leaves], axis=1), axis=1)[:, -1, :]
        total = tf.math.cumsum(tf.concat([tf.zeros_like(initial), leaves], axis=1), axis=1)[:, -1, :]
        return total + initial[:, 0, :]

    def _serve(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        scores = self._scores(self._matrix(inputs))
        if self._task == "regression":
            return {"value": scores[:, 0]}
        if self._link == "SIGMOID":
            p = tf.math.sigmoid(scores[:, 0])
            probabilities = tf.stack([1.0 - p, p], axis=1)
        else:  # YDF's softmax: exp(v) / sum(exp(v)), without subtracting the maximum
            e = tf.exp(scores)
            probabilities = tf.clip_by_value(e * (1.0 / tf.reduce_sum(e, axis=1, keepdims=True)), 0.0, 1.0)
        rows = tf.shape(probabilities)[0]
        return {
            "probabilities": probabilities,
            "label": tf.gather(self.classes, tf.argmax(probabilities, axis=1)),
            "classes": tf.tile(self.classes[None, :], [rows, 1]),
        }


def export(
    model: Any,
    path: Any,
    *,
    ignored: dict[str, tf.DType] | None = None,
    signature: dict[str, tf.TensorSpec] | None = None,
    derive: Any = None,
) -> None:
    """Write the compiled forest as a SavedModel whose `serving_default` any TensorFlow loads and serves."""
    module = ForestModule(forest_arrays(model), ignored=ignored, signature=signature, derive=derive)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serving_default})
