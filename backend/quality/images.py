"""Quality checks on image data, with the same contract as the table checks (quality/tables.py).

Each takes the index frame of a version (index.parquet, one row per image: see `data.INDEX_COLUMNS`), the
label column ("label") and the task, and returns one `result()`. The images were decoded when they were read;
the checks only read the index, so 10,000 images are checked in a fraction of a second.

Duplicates are found in three steps:
1. Exact copies share the SHA-256 of their bytes.
2. Near-duplicate candidates have perceptual hashes (64 bits) at most `NEAR_BITS` apart, found by
   `near_pairs` without comparing every pair (see there).
3. A candidate is confirmed when the 16 x 16 grey signatures differ by at most `NEAR_PIXELS` on average
   (of 255). On small, centred images such as Fashion-MNIST the hash alone matched 175 pairs of clearly
   different garments in 2,000 images; a re-encoded JPEG or a changed pixel stays within 6.
Exact copies and confirmed pairs are joined into groups (connected components); the first image of a
group is kept, the others are the copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend import data
from backend.quality.common import (
    MIN_ROWS,
    Check,
    CheckResult,
    Context,
    drop_rows,
    listed,
    rare_classes,
    remedy,
    result,
    share,
)

MIN_SIDE = 32  # pixels: an image narrower or lower than this is tiny
MIN_PER_CLASS = 2  # a class with fewer images cannot be both learned and tested
IMBALANCE_RATIO = 0.1  # the smallest class under 10% of the largest
NEAR_BITS = 4  # perceptual hashes at most this many bits apart are near-duplicate candidates
NEAR_PIXELS = 6.0  # …confirmed when the grey signatures differ by at most this much per pixel (0-255)
CHUNK_PAIRS = 2_000_000  # hash comparisons made at once (a few tens of MB)
EXAMPLES = 8  # example rows per check (row positions in the index), for the gallery
PAIRS = 10  # example pairs per duplicate check
SPLIT_RANK = {"train": 0, "val": 1, "test": 2}  # which copy of an image is kept: the training one


def _label_column(frame: pd.DataFrame, target: str | None) -> str:
    return target if target is not None and target in frame.columns else "label"


def _labels(frame: pd.DataFrame, target: str | None) -> pd.Series:
    """The label of each image as text, missing where it has none."""
    column = _label_column(frame, target)
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame[column].astype("string")


def _decodable(frame: pd.DataFrame) -> np.ndarray:
    return frame["decodable"].to_numpy(dtype=bool, na_value=False)


# -- duplicates: hashes, bands, groups --------------------------------------------------------------------
def hashes(phash: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit perceptual hashes as unsigned integers, and where one is present (16 hex digits)."""
    text = phash.astype("string").fillna("")
    valid = (text.str.len() == 16) & text.str.fullmatch(r"[0-9a-fA-F]*").fillna(False)
    values = np.zeros(len(text), dtype=np.uint64)
    ok = valid.to_numpy(dtype=bool)
    if ok.any():
        values[ok] = np.frombuffer(bytes.fromhex("".join(text[ok])), dtype=">u8").astype(np.uint64)
    return values, ok


def _close(values: np.ndarray, a: np.ndarray, b: np.ndarray, max_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (a, b) whose values are at most `max_bits` apart, as (smaller, larger) positions."""
    keep = np.bitwise_count(values[a] ^ values[b]) <= max_bits
    a, b = a[keep], b[keep]
    return np.minimum(a, b), np.maximum(a, b)


def _chunks(counts: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive ranges of positions whose `counts` add up to about `CHUNK_PAIRS` each."""
    ends = np.cumsum(counts)
    bounds = np.unique(np.searchsorted(ends, np.arange(CHUNK_PAIRS, int(ends[-1]), CHUNK_PAIRS), side="right"))
    edges = [0, *bounds.tolist(), len(counts)]
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True) if hi > lo]


def near_pairs(values: np.ndarray, max_bits: int = NEAR_BITS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of distinct 64-bit values at most `max_bits` bits apart, with their distances.

    1. Cut each value into `max_bits + 1` bands: a pair that close agrees on at least one whole band, so
       only values that share a band value (a bucket) need comparing.
    2. Count the comparisons the buckets need. When that is no less than comparing every pair (values
       that share most of their bits, such as near-blank images), compare every pair instead.
    3. Compare in chunks of about `CHUNK_PAIRS` pairs, so memory stays bounded whatever the data.
    """
    n = len(values)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    edges = np.linspace(0, 64, max_bits + 2).astype(int)
    plans, work = [], 0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        key = (values >> np.uint64(low)) & np.uint64((1 << int(high - low)) - 1)
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if n else np.zeros(0, np.int64)
        ends = np.repeat(np.r_[starts[1:], n], np.diff(np.r_[starts, n]))  # each position's bucket end
        partners = ends - np.arange(n) - 1  # later positions in the same bucket
        plans.append((order, partners))
        work += int(partners.sum())
    if work >= n * (n - 1) // 2:
        # 2. Every pair: row i against the rows after it.
        partners = np.arange(n - 1, -1, -1)
        for lo, hi in _chunks(partners) if n > 1 else []:
            a = np.repeat(np.arange(lo, hi), partners[lo:hi])
            b = np.arange(len(a)) - np.repeat(np.cumsum(partners[lo:hi]) - partners[lo:hi], partners[lo:hi]) + a + 1
            found.append(_close(values, a, b, max_bits))
    else:
        # 3. Within buckets: each sorted position against the later positions of its bucket.
        for order, partners in plans:
            if not partners.any():
                continue
            for lo, hi in _chunks(partners):
                count = partners[lo:hi]
                first = np.repeat(np.arange(lo, hi), count)
                second = np.arange(len(first)) - np.repeat(np.cumsum(count) - count, count) + first + 1
                found.append(_close(values, order[first], order[second], max_bits))
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    pair = np.concatenate([a for a, _ in found]).astype(np.int64) * n + np.concatenate([b for _, b in found])
    pair.sort()  # a pair found in two bands once (a sort: np.unique's hashing is slower on millions)
    pair = pair[np.r_[True, pair[1:] != pair[:-1]][: len(pair)]]
    a, b = pair // n, pair % n
    return a, b, np.bitwise_count(values[a] ^ values[b]).astype(np.int64)


def _similar(frame: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether the grey signatures of rows `a` and `b` differ by at most `NEAR_PIXELS` per pixel on average.

    They are compared in chunks to bound the memory. A pair where either row has no signature counts as
    similar (the hashes alone decide).
    """
    similar = np.ones(len(a), dtype=bool)
    if "signature" not in frame.columns or not len(a):
        return similar
    rows = np.unique(np.r_[a, b])
    values = frame["signature"].iloc[rows].tolist()
    size = data.SIGNATURE_SIDE**2
    has = np.zeros(len(frame), dtype=bool)
    has[rows] = [isinstance(v, bytes) and len(v) == size for v in values]
    matrix = np.zeros((len(frame), size), dtype=np.uint8)
    matrix[rows[has[rows]]] = np.frombuffer(
        b"".join(v for v in values if isinstance(v, bytes) and len(v) == size), np.uint8
    ).reshape(-1, size)
    step = max(1, CHUNK_PAIRS // size)
    for lo in range(0, len(a), step):
        pa, pb = a[lo : lo + step], b[lo : lo + step]
        diff = np.abs(matrix[pa].astype(np.int16) - matrix[pb]).mean(axis=1)
        similar[lo : lo + step] = (diff <= NEAR_PIXELS) | ~(has[pa] & has[pb])
    return similar


@dataclass(frozen=True)
class Duplicates:
    """Duplicate images: a group per row (-1 for rows in no group), and the pairs that joined them."""

    group: np.ndarray  # per row of the index: a group number shared by copies, or -1
    pairs: pd.DataFrame  # a, b (rows, a < b), bits (hash distance), exact (same bytes)

    def copies(self) -> np.ndarray:
        """Rows that copy an earlier row of their group (the first row of each group is kept)."""
        grouped = np.flatnonzero(self.group >= 0)
        first = pd.Series(grouped).groupby(self.group[grouped]).transform("min").to_numpy()
        return grouped[grouped != first]


def _first_rows(codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each code 0…k-1 (numbered in order of first appearance), the first of `rows` that has it."""
    _, first = np.unique(codes, return_index=True)
    return rows[first]


def find_duplicates(frame: pd.DataFrame) -> Duplicates:
    """Exact copies and confirmed near-duplicates among the decodable images (see the module's steps)."""
    n = len(frame)
    values, has_hash = hashes(frame["phash"])
    rows = np.flatnonzero(_decodable(frame) & has_hash)
    # 1. Exact copies: each row joined to the first row with the same bytes.
    codes = pd.factorize(frame["sha256"].iloc[rows])[0]
    first = _first_rows(codes, rows)
    exact = first[codes] != rows
    exact_a, exact_b = first[codes][exact], rows[exact]
    # 2. Candidates among distinct files: equal hashes (joined to the first), then hashes a few bits apart.
    hash_codes, unique_hashes = pd.factorize(values[first])
    head = _first_rows(hash_codes, first)
    same = head[hash_codes] != first
    a, b, _ = near_pairs(np.asarray(unique_hashes, dtype=np.uint64))
    cand_a = np.concatenate([head[hash_codes][same], head[a]])
    cand_b = np.concatenate([first[same], head[b]])
    # 3. Confirm by the grey signatures.
    confirmed = _similar(frame, cand_a, cand_b)
    cand_a, cand_b = cand_a[confirmed], cand_b[confirmed]
    pair_a = np.concatenate([exact_a, np.minimum(cand_a, cand_b)])
    pair_b = np.concatenate([exact_b, np.maximum(cand_a, cand_b)])
    pairs = pd.DataFrame(
        {
            "a": pair_a,
            "b": pair_b,
            "bits": np.bitwise_count(values[pair_a] ^ values[pair_b]).astype(np.int64),
            "exact": np.r_[np.ones(len(exact_a), bool), np.zeros(len(cand_a), bool)],
        }
    ).sort_values(["a", "b"], ignore_index=True)
    group = np.full(n, -1, dtype=np.int64)
    if len(pairs):
        from scipy.sparse import coo_matrix  # imported here: a tabular report need not load it
        from scipy.sparse.csgraph import connected_components

        graph = coo_matrix((np.ones(len(pairs)), (pair_a, pair_b)), shape=(n, n))
        _, components = connected_components(graph, directed=False)
        joined = np.unique(np.r_[pair_a, pair_b])
        group[joined] = components[joined]
    return Duplicates(group=group, pairs=pairs)


def _pair_evidence(pairs: pd.DataFrame, tags: tuple[str, pd.Series] | None = None) -> list[dict[str, Any]]:
    """Up to `PAIRS` pairs as evidence; `tags` adds what each side is (e.g. ("labels", the labels))."""
    out = []
    for a, b, bits, exact in pairs[["a", "b", "bits", "exact"]].head(PAIRS).itertuples(index=False):
        item: dict[str, Any] = {"rows": [int(a), int(b)], "bits": int(bits), "exact": bool(exact)}
        if tags is not None:
            item[tags[0]] = [str(tags[1].iloc[a]), str(tags[1].iloc[b])]
        out.append(item)
    return out


def _differ(pairs: pd.DataFrame, values: pd.Series) -> pd.DataFrame:
    """The pairs whose two rows both have a value, and different ones."""
    known = values.notna().to_numpy()
    text = values.astype("string").fillna("").to_numpy(dtype=object)
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    return pairs[known[a] & known[b] & (text[a] != text[b])]


def _pair_rows(pairs: list[dict[str, Any]]) -> list[int]:
    """Example rows pair by pair, so that each image is shown next to its copy."""
    rows: list[int] = []
    for pair in pairs:
        rows += [r for r in pair["rows"] if r not in rows]
    return rows[:EXAMPLES]


# -- the checks, blockers first ---------------------------------------------------------------------------
def undecodable_images(ctx: Context) -> CheckResult:
    frame = ctx.frame
    bad = np.flatnonzero(~_decodable(frame))
    if not len(bad):
        return result("undecodable_images", "blocker", True, "ok", {"images": len(frame)}, images=len(frame))
    column = "original" if "original" in frame.columns else "file"
    errors = {str(frame[column].iloc[r]): str(frame["error"].iloc[r]) for r in bad[:EXAMPLES]}
    evidence = {"undecodable": len(bad), "errors": errors, "example_rows": bad[:EXAMPLES].tolist()}
    return result(
        "undecodable_images",
        "blocker",
        False,
        "fail",
        evidence,
        remedy=drop_rows(bad),
        n=len(bad),
        names=listed(list(errors)),
    )


def too_few_images(ctx: Context) -> CheckResult:
    frame = ctx.frame
    n = int(_decodable(frame).sum())
    ok = n >= MIN_ROWS
    return result("too_few_images", "blocker", ok, "ok" if ok else "fail", {"images": n}, n=n, min=MIN_ROWS)


def image_class_balance(ctx: Context) -> CheckResult:
    """Classes too few, too small or too uneven to learn from, among the decodable images only.

    Blocker: no labels, one class, or a class with fewer than `MIN_PER_CLASS` images. Warning: the smallest
    class under `IMBALANCE_RATIO` of the largest.
    """
    frame, target = ctx.frame, ctx.target
    labels = _labels(frame, target).where(_decodable(frame))
    counts = labels.value_counts()
    evidence: dict[str, Any] = {"classes": {str(k): int(v) for k, v in counts.head(50).items()}}
    if counts.empty:
        return result("image_class_balance", "blocker", False, "none", evidence)
    if len(counts) < 2:
        return result("image_class_balance", "blocker", False, "one", evidence, name=str(counts.index[0]))
    rare = rare_classes("image_class_balance", labels, counts, MIN_PER_CLASS, evidence, examples=EXAMPLES)
    if rare is not None:
        return rare
    smallest, largest = int(counts.iloc[-1]), int(counts.iloc[0])
    params: dict[str, Any] = {
        "n": len(counts),
        "name": str(counts.index[-1]),
        "smallest": smallest,
        "largest_name": str(counts.index[0]),
        "largest": largest,
        "ratio": share(smallest, largest),
    }
    if smallest < IMBALANCE_RATIO * largest:
        small = counts.index[counts < IMBALANCE_RATIO * largest]
        evidence["example_rows"] = np.flatnonzero(labels.isin(small).to_numpy(dtype=bool, na_value=False))[
            :EXAMPLES
        ].tolist()
        return result("image_class_balance", "warning", False, "imbalanced", evidence, **params)
    return result("image_class_balance", "warning", True, "ok", evidence, **params)


def unlabeled_images(ctx: Context) -> CheckResult:
    frame, target = ctx.frame, ctx.target
    rows = np.flatnonzero(_labels(frame, target).isna().to_numpy())
    if not len(rows):
        return result("unlabeled_images", "warning", True, "ok")
    evidence = {"unlabeled": len(rows), "rows": rows.tolist(), "example_rows": rows[:EXAMPLES].tolist()}
    return result(
        "unlabeled_images",
        "warning",
        False,
        "fail",
        evidence,
        remedy=remedy("review_labels"),
        n=len(rows),
        share=share(len(rows), len(frame)),
    )


def tiny_images(ctx: Context) -> CheckResult:
    """Images under `MIN_SIDE` pixels on a side among larger ones (icons, thumbnails, tracking pixels).

    They are a warning; a set that is small throughout (digits, Fashion-MNIST) is a note, not a defect.
    """
    frame = ctx.frame
    ok = _decodable(frame)
    if not ok.any():
        return result("tiny_images", "warning", True, "na")
    width = frame["width"].to_numpy(dtype="float64", na_value=np.nan)
    height = frame["height"].to_numpy(dtype="float64", na_value=np.nan)
    tiny = ok & (np.fmin(width, height) < MIN_SIDE)
    rows = np.flatnonzero(tiny)
    if not len(rows):
        return result("tiny_images", "warning", True, "ok", {"min": MIN_SIDE}, min=MIN_SIDE)
    largest = f"{int(np.nanmax(width[ok]))}×{int(np.nanmax(height[ok]))}"
    if tiny.sum() == ok.sum():
        return result("tiny_images", "info", True, "all_small", {"largest": largest}, largest=largest, min=MIN_SIDE)
    sizes = {int(r): f"{int(width[r])}×{int(height[r])}" for r in rows[:EXAMPLES]}
    evidence = {"tiny": len(rows), "sizes": sizes, "example_rows": rows[:EXAMPLES].tolist()}
    return result("tiny_images", "warning", False, "fail", evidence, remedy=drop_rows(rows), n=len(rows), min=MIN_SIDE)


def duplicate_images(ctx: Context) -> CheckResult:
    frame = ctx.frame
    found = find_duplicates(frame)
    copies = found.copies()
    if not len(copies):
        return result("duplicate_images", "warning", True, "ok")
    exact = np.isin(copies, found.pairs.loc[found.pairs["exact"], "b"].to_numpy())
    # Exact pairs first, then near ones: the gallery shows both kinds when there are both.
    shown = pd.concat([found.pairs[found.pairs["exact"]].head(PAIRS // 2), found.pairs[~found.pairs["exact"]]])
    pairs = _pair_evidence(shown)
    evidence = {
        "exact": int(exact.sum()),
        "near": int((~exact).sum()),
        "groups": int(len(np.unique(found.group[found.group >= 0]))),
        "pairs": pairs,
        "example_rows": _pair_rows(pairs),
    }
    return result(
        "duplicate_images",
        "warning",
        False,
        "fail",
        evidence,
        remedy=drop_rows(copies),
        exact=int(exact.sum()),
        near=int((~exact).sum()),
        share=share(len(copies), len(frame)),
    )


def duplicates_across_classes(ctx: Context) -> CheckResult:
    """The same (or nearly the same) image under two labels: at most one of them is right."""
    frame, target = ctx.frame, ctx.target
    found = find_duplicates(frame)
    labels = _labels(frame, target)
    grouped = np.flatnonzero((found.group >= 0) & labels.notna().to_numpy())
    per_group = pd.Series(labels.iloc[grouped].to_numpy()).groupby(found.group[grouped]).nunique()
    clashing = per_group.index[per_group > 1].to_numpy()
    rows = grouped[np.isin(found.group[grouped], clashing)]
    if not len(rows):
        return result("duplicates_across_classes", "warning", True, "ok")
    pairs = _pair_evidence(_differ(found.pairs, labels), ("labels", labels))
    evidence = {
        "images": len(rows),
        "groups": len(clashing),
        "rows": np.sort(rows).tolist(),  # every image to review, for the Labeling page
        "pairs": pairs,
        "example_rows": _pair_rows(pairs),
    }
    return result(
        "duplicates_across_classes",
        "warning",
        False,
        "fail",
        evidence,
        remedy=remedy("review_labels"),
        n=len(rows),
        groups=len(clashing),
    )


def duplicates_across_splits(ctx: Context) -> CheckResult:
    """With split folders (train/, val/, test/): an image in one split and a copy in another.

    The model is then tested on what it was trained on; the copies outside the training split are the ones to
    drop.
    """
    frame = ctx.frame
    if "split" not in frame.columns or frame["split"].nunique() < 2:
        return result("duplicates_across_splits", "warning", True, "na")
    found = find_duplicates(frame)
    split = frame["split"].astype("string").fillna("")
    grouped = np.flatnonzero(found.group >= 0)
    groups = pd.DataFrame(
        {"row": grouped, "group": found.group[grouped], "rank": split.iloc[grouped].map(SPLIT_RANK).fillna(3)}
    )
    best = groups.groupby("group")["rank"].transform("min")
    spread = groups.groupby("group")["rank"].transform("nunique")
    leaked = groups.loc[(spread > 1) & (groups["rank"] > best), "row"].to_numpy()
    if not len(leaked):
        return result("duplicates_across_splits", "warning", True, "ok")
    pairs = _pair_evidence(_differ(found.pairs, frame["split"]), ("splits", split))
    by_split = {str(k): int(v) for k, v in split.iloc[leaked].value_counts().items()}
    evidence = {"images": len(leaked), "by_split": by_split, "pairs": pairs, "example_rows": _pair_rows(pairs)}
    return result(
        "duplicates_across_splits",
        "warning",
        False,
        "fail",
        evidence,
        remedy=drop_rows(np.sort(leaked)),
        n=len(leaked),
        splits=listed(list(by_split)),
    )


def mixed_modes_sizes(ctx: Context) -> CheckResult:
    """Colour modes and sizes: informational, since the model converts every image to RGB at one size."""
    frame = ctx.frame
    ok = _decodable(frame)
    if not ok.any():
        return result("mixed_modes_sizes", "info", True, "na")
    images = frame[ok]
    modes = images["mode"].astype("string").value_counts()
    formats = images["format"].astype("string").value_counts()
    width, height = images["width"].astype("int64"), images["height"].astype("int64")
    sizes = (width.astype(str) + "×" + height.astype(str)).value_counts()
    area = (width * height).to_numpy()
    positions = np.flatnonzero(ok)
    small, large = int(np.argmin(area)), int(np.argmax(area))
    examples = [int(positions[small]), int(positions[large])]
    for mode in modes.index[1:]:  # one image of each less common mode
        examples.append(int(positions[np.argmax((images["mode"] == mode).to_numpy(dtype=bool, na_value=False))]))
    evidence = {
        "modes": {str(k): int(v) for k, v in modes.items()},
        "formats": {str(k): int(v) for k, v in formats.items()},
        "sizes": {str(k): int(v) for k, v in sizes.head(10).items()},
        "distinct_sizes": len(sizes),
        "width": {"min": int(width.min()), "median": int(width.median()), "max": int(width.max())},
        "height": {"min": int(height.min()), "median": int(height.median()), "max": int(height.max())},
        "example_rows": list(dict.fromkeys(examples))[:EXAMPLES],
    }
    params: dict[str, Any] = {
        "modes": ", ".join(f"{k} {v:,}" for k, v in modes.items()),
        "sizes": len(sizes),
        "smallest": f"{int(width.iloc[small])}×{int(height.iloc[small])}",
        "largest": f"{int(width.iloc[large])}×{int(height.iloc[large])}",
    }
    outcome = "mixed" if len(modes) > 1 or len(sizes) > 1 else "uniform"
    return result("mixed_modes_sizes", "info", True, outcome, evidence, **params)


CHECKS: list[Check] = [
    # Blockers: any failing one closes the gate.
    undecodable_images,
    too_few_images,
    image_class_balance,  # a warning when the classes are merely imbalanced
    # Warnings.
    unlabeled_images,
    tiny_images,  # a note when every image is small
    duplicate_images,
    duplicates_across_classes,
    duplicates_across_splits,
    # Notes.
    mixed_modes_sizes,
]
