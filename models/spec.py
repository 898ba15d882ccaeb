"""A model is a frozen spec: every field has a default and a comment, and the spec saved with a run
is enough to rebuild the model and the training exactly. No TensorFlow import here."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


class SpecError(ValueError):
    """A hyperparameter name or value that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class TabularSpec:
    # Network: the reference baseline is one Dense(128, relu) layer before the output.
    hidden_units: tuple[int, ...] = (128,)  # width of each hidden layer, input side first
    dropout: float = 0.1  # share of units dropped after each hidden layer while training
    batch_norm: bool = False  # batch normalisation after each hidden layer
    # Optimisation.
    epochs: int = 30  # upper bound; early stopping usually ends sooner
    batch_size: int = 64
    learning_rate: float = 1e-3  # Adam; halved when validation loss plateaus
    early_stopping: bool = True  # stop when validation loss stops improving, keep the best weights
    patience: int = 5  # epochs without improvement before early stopping
    # Data.
    validation_split: float = 0.15  # share of rows for validation (early stopping, curves)
    test_split: float = 0.15  # share of rows held out for the final metrics, never trained on
    scale_target: str = "auto"  # regression: "auto" (log for skewed positive targets) | "standard" | "log" | "none"
    max_categories: int = 100  # categorical columns with more values are hashed into this many bins
    seed: int = 42  # one seed for the split, the weights and the shuffling

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"hidden_units": (64,), "epochs": 10, "batch_size": 128, "patience": 3},
    "balanced": {},
    "thorough": {"hidden_units": (256, 128), "epochs": 100, "batch_norm": True, "dropout": 0.2, "patience": 10},
}

_FIELDS = {f.name: f for f in dataclasses.fields(TabularSpec)}


def _coerce(name: str, value: Any) -> Any:
    default = getattr(TabularSpec(), name)
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, tuple):
            items = value if isinstance(value, list | tuple) else str(value).replace(" ", "").split(",")
            units = tuple(int(v) for v in items if str(v) != "")
            if not units or any(u <= 0 for u in units):
                raise ValueError(value)
            return units
        return type(default)(value)
    except (TypeError, ValueError):
        example = {tuple: "128,64", bool: "true", int: "20", float: "0.001", str: "auto"}[type(default)]
        raise SpecError(
            f"'{value}' is not a valid value for {name}. Expected something like {name}={example}."
        ) from None


def _validate(spec: TabularSpec) -> TabularSpec:
    rules = [
        (spec.epochs >= 1, "epochs must be at least 1"),
        (spec.batch_size >= 1, "batch_size must be at least 1"),
        (0 < spec.learning_rate < 10, "learning_rate must be between 0 and 10 (try 0.001)"),
        (0 <= spec.dropout < 1, "dropout must be in [0, 1) (try 0.1)"),
        (spec.patience >= 1, "patience must be at least 1"),
        (0 < spec.validation_split < 0.5, "validation_split must be between 0 and 0.5 (try 0.15)"),
        (0 < spec.test_split < 0.5, "test_split must be between 0 and 0.5 (try 0.15)"),
        (spec.scale_target in ("auto", "standard", "log", "none"), "scale_target must be auto, standard, log or none"),
        (spec.max_categories >= 2, "max_categories must be at least 2"),
    ]
    for ok, message in rules:
        if not ok:
            raise SpecError(f"{message}.")
    return spec


def make_spec(preset: str = "balanced", overrides: dict[str, Any] | None = None) -> TabularSpec:
    """A spec from a preset and KEY=VALUE overrides (values may be strings, as on the command line)."""
    if preset not in PRESETS:
        raise SpecError(f"Unknown preset '{preset}'. Expected one of: {', '.join(PRESETS)}.")
    values = dict(PRESETS[preset])
    for name, value in (overrides or {}).items():
        if name not in _FIELDS:
            raise SpecError(f"Unknown hyperparameter '{name}'. Expected one of: {', '.join(_FIELDS)}.")
        values[name] = _coerce(name, value)
    return _validate(TabularSpec(**values))


def spec_from_dict(data: dict[str, Any]) -> TabularSpec:
    """Rebuild the spec stored with a run."""
    values = {k: _coerce(k, v) for k, v in data.items() if k in _FIELDS}
    return _validate(TabularSpec(**values))


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """`--set KEY=VALUE` arguments to a mapping."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"'{pair}' is not KEY=VALUE. Write it like --set learning_rate=0.001.")
        result[key.strip()] = value.strip()
    return result


__all__ = ["PRESETS", "SpecError", "TabularSpec", "make_spec", "parse_sets", "spec_from_dict"]
