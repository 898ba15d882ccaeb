"""Image checks on 10,000 small images: images per second for ingest (unzip, decode, hash) plus checks,
and for the checks alone (they read only the index that ingest wrote)."""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
from PIL import Image

IMAGES = 10_000


def make_zip(count: int = IMAGES, seed: int = 0) -> bytes:
    """Small PNG and JPEG images (32-64 px) in ten class folders."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(count):
            side = int(rng.integers(32, 65))
            image = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((side, side))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG" if i % 2 else "PNG")
            archive.writestr(f"images/class{i % 10}/{i:05d}.{'jpg' if i % 2 else 'png'}", buffer.getvalue())
    return out.getvalue()


def main() -> None:
    from backend.data import images
    from backend.quality import images as image_checks

    data = make_zip()
    started = time.perf_counter()
    image_set = images.read_image_zip(data, "bench.zip")
    read = time.perf_counter()
    for check in image_checks.CHECKS:
        check(image_set.index, "label", "image-classification")
    done = time.perf_counter()
    print(f"image checks, {IMAGES:,} small images (32-64 px, PNG and JPEG), one run")
    print(f"  ingest + checks        {IMAGES / (done - started):10,.0f} images/s   ({done - started:.2f} s)")
    print(f"  checks alone           {IMAGES / (done - read):10,.0f} images/s   ({done - read:.3f} s)")
